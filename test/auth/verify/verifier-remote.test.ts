/**
 * Both verifier settings against a real JWKS server on loopback (OIDC discovery): the same
 * verdicts for a known key, a rotated-in key (refetch on unknown kid), an unknown kid, and an
 * unknown kid while the provider is down. `verifier: jose` goes through jose's remote key set
 * (KeySource.joseKeys), without the key index.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthzEngine } from '../../../src/auth/index.js';
import { VERIFIER_MODES } from '../../../src/auth/verify/verifier.js';
import { type JwksServer, startJwksServer } from '../../helpers/jwks-server.js';
import { jwks, makeKey, NOW_MS, sign, type TestKey } from '../helpers/keys.js';
import { request } from '../helpers/request.js';

const AUD = 'prefect';

describe.each(VERIFIER_MODES)('verifier: %s with a remote key set', (verifier) => {
  let server: JwksServer;
  let engine: AuthzEngine;
  let k1: TestKey;
  let k2: TestKey;
  let stranger: TestKey;

  beforeAll(async () => {
    k1 = await makeKey('RS256', 'k1');
    k2 = await makeKey('ES256', 'k2');
    stranger = await makeKey('ES256', 'k-stranger');
    server = await startJwksServer(jwks(k1));
    engine = AuthzEngine.create(
      {
        verifier,
        issuers: [
          {
            id: 'idp',
            issuer: server.issuer,
            audiences: [AUD],
            algorithms: ['RS256', 'ES256'],
            // A generous fetch timeout: a loopback fetch can take long on a busy machine, and a timed-out
            // fetch would make the next kid miss fail fast (keys_unavailable) for the retry interval.
            keys: { type: 'oidc', cooldownSeconds: 0, timeoutMs: 10_000, retryIntervalSeconds: 3600 },
          },
        ],
        cache: { maxEntries: 0, negativeTtlSeconds: 0 },
        policy: { preset: 'none', rules: [{ name: 'any-token', path: '/**' }] },
      },
      { now: () => NOW_MS },
    );
    await engine.start();
  });
  afterAll(async () => {
    engine?.close();
    await server?.close().catch(() => {});
  });

  const reason = async (key: TestKey) =>
    (
      await engine.decide(
        request('GET', '/api/flows', { token: await sign(key, { iss: server.issuer, aud: AUD }) }),
      )
    ).reason;

  it('verifies, follows a rotation, refuses an unknown kid, and says 503 when the provider is down', async () => {
    expect(await reason(k1), 'known key').toBe('ok');
    expect(await reason(k2), 'kid not published yet').toBe('unknown_key');
    server.setKeys(jwks(k1, k2));
    expect(await reason(k2), 'kid published').toBe('ok');
    await server.close();
    expect(await reason(stranger), 'unknown kid, provider down').toBe('keys_unavailable');
    expect(await reason(k1), 'known key, provider down').toBe('ok');
    const { verifiers } = engine.stats();
    if (verifier === 'jose') expect(verifiers.fastSync + verifiers.fastPool).toBe(0);
    else expect(verifiers.fastSync + verifiers.fastPool).toBeGreaterThan(0);
  });
});
