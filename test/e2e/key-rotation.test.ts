// An OIDC provider on loopback (discovery + JWKS) rotates its signing key; the agent, started
// from a YAML config that names only the issuer, follows it. Through the shipped HAProxy config.
import { randomUUID } from 'node:crypto';
import * as jose from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AgentProcess, startAgent } from '../helpers/agent-process.js';
import { type HaproxyInstance, requireHaproxy } from '../helpers/haproxy.js';
import { httpRequest } from '../helpers/http.js';
import { type JwksServer, startJwksServer } from '../helpers/jwks-server.js';
import { type PrefectStub, startPrefectStub } from '../helpers/prefect-stub.js';
import { send, startShippedHaproxy } from './stack.js';

const { describeHaproxy } = requireHaproxy();

interface SigningKey {
  kid: string;
  privateKey: jose.CryptoKey;
  jwk: jose.JWK;
}

async function rsaKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await jose.generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await jose.exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

describeHaproxy('key rotation at the OIDC provider', () => {
  let idp: JwksServer;
  let stub: PrefectStub;
  let agent: AgentProcess;
  let hap: HaproxyInstance;
  let oldKey: SigningKey;
  let newKey: SigningKey;

  /** A fresh token (never seen by the agent's cache) from the provider, signed with `key`. */
  const tokenFrom = (key: SigningKey, sub: string) =>
    new jose.SignJWT({ groups: ['prefect-viewers'], jti: randomUUID() })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
      .setIssuer(idp.issuer)
      .setSubject(sub)
      .setAudience('prefect')
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(key.privateKey);

  /** How many keys the agent holds for the issuer, from its /readyz detail. */
  const agentKeyCount = async (): Promise<number> => {
    const res = await httpRequest(`http://127.0.0.1:${agent.metricsPort}/readyz`);
    const body = JSON.parse(res.body) as { issuers: Array<{ id: string; keyCount: number }> };
    return body.issuers.find((i) => i.id === 'idp')?.keyCount ?? -1;
  };

  const listFlows = (token: string) => send(hap, 'POST', '/api/flows/filter', { token, body: '{}' });

  beforeAll(async () => {
    [oldKey, newKey] = await Promise.all([rsaKey('2026-old'), rsaKey('2026-new')]);
    idp = await startJwksServer({ keys: [oldKey.jwk] });
    stub = await startPrefectStub();
    agent = await startAgent({
      config: {
        audit: 'all',
        issuers: [
          {
            id: 'idp',
            issuer: idp.issuer,
            audiences: ['prefect'],
            algorithms: ['RS256'],
            // Loopback http needs no allowInsecureHttp. No cooldown: a kid miss refetches at once.
            // A short refresh period, so a retired key is dropped within the test.
            keys: { type: 'oidc', cooldownSeconds: 0, refreshIntervalSeconds: 2 },
            roles: { claims: ['groups'], map: { 'prefect-viewers': 'viewer' } },
          },
        ],
      },
    });
    hap = await startShippedHaproxy({ agent: agent.spopAddress, backend: stub.address });
  });
  afterAll(async () => {
    await hap?.stop();
    await agent?.dispose();
    await stub?.close();
    await idp?.close();
  });

  it('accepts a new kid after the provider rotates, and old tokens while the old key is published', async () => {
    expect(idp.hits.discovery).toBeGreaterThan(0);
    expect(await agentKeyCount()).toBe(1);
    const before = await listFlows(await tokenFrom(oldKey, 'olga-old'));
    expect(before.status).toBe(200);
    expect(stub.withHeader('x-test-id', before.testId)[0]?.headers['x-prefect-role']).toBe('viewer');

    // The provider publishes the new key beside the old one and starts signing with it.
    const fetchesBefore = idp.hits.jwks;
    idp.setKeys({ keys: [newKey.jwk, oldKey.jwk] });
    const rotated = await listFlows(await tokenFrom(newKey, 'nina-new'));
    expect(rotated.status).toBe(200);
    expect(stub.withHeader('x-test-id', rotated.testId)[0]?.headers['x-forwarded-user']).toBe('nina-new');
    expect(idp.hits.jwks).toBeGreaterThan(fetchesBefore);

    // A token signed with the old key (not cached: new jti) still verifies while it is published.
    expect((await listFlows(await tokenFrom(oldKey, 'olga-old'))).status).toBe(200);

    // The provider retires the old key; once the agent's next refresh holds only the new one,
    // tokens signed with the old key are refused...
    idp.setKeys({ keys: [newKey.jwk] });
    await until(async () => (await agentKeyCount()) === 1);
    const retired = await listFlows(await tokenFrom(oldKey, 'olga-old'));
    expect(retired.status).toBe(401);
    expect(retired.headers['www-authenticate']).toMatch(/^Bearer realm="prefect", error="invalid_token"/);
    expect(stub.withHeader('x-test-id', retired.testId)).toEqual([]);
    // ...and the new key keeps working.
    expect((await listFlows(await tokenFrom(newKey, 'nina-new'))).status).toBe(200);
  });
});

async function until(cond: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
