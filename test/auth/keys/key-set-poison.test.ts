/**
 * Key sets that cannot poison: a provider answering 200 with a set that would fail valid tokens
 * (empty, a corrupt or private key, keys for other algorithms only) is a failed fetch. The last
 * good set keeps verifying, nothing is persisted, the status says why; a well-formed set that
 * retires a key takes effect at once. A real JWKS server on loopback, real signatures.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as jose from 'jose';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AuthzEngine } from '../../../src/auth/index.js';
import { checkKeySet, keySetRejection } from '../../../src/auth/keys/key-set-check.js';
import { parseAgentConfig } from '../../../src/config/load.js';
import { startRuntime } from '../../../src/runtime.js';
import { httpRequest } from '../../helpers/http.js';
import { type JwkSet, type JwksServer, startJwksServer } from '../../helpers/jwks-server.js';
import { jwks, makeKey, NOW_MS, sign, type TestKey } from '../helpers/keys.js';
import { request } from '../helpers/request.js';

const AUD = 'prefect';
let rsa: TestKey;
let rsa2: TestKey;
let ec: TestKey;
let privateK1: Record<string, unknown>;

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

beforeAll(async () => {
  rsa = await makeKey('RS256', 'k1');
  rsa2 = await makeKey('RS256', 'k2');
  ec = await makeKey('ES256', 'e1');
  privateK1 = { ...(await jose.exportJWK(rsa.privateKey)), kid: 'k1', alg: 'RS256' };
});

/** A JWK that claims to be k1 (RS256) but whose modulus is not base64url: jose cannot import it. */
const corruptK1 = () => ({ ...rsa.jwk, n: '!!not base64url!!' });

/** What a provider may answer 200 with, and why the agent refuses it. */
const POISON: ReadonlyArray<[string, () => JwkSet, 'no_usable_key' | 'invalid_key']> = [
  ['an empty set', () => ({ keys: [] }), 'no_usable_key'],
  [
    'a key under a known kid with a 64-bit modulus',
    () => ({ keys: [{ ...rsa.jwk, n: 'AQIDBAUGBwg' }, rsa2.jwk] }),
    'invalid_key',
  ],
  ['keys for other algorithms only (ES256 for an RS256 issuer)', () => jwks(ec), 'no_usable_key'],
  [
    'signing keys marked for encryption only',
    () => ({ keys: [{ ...rsa.jwk, use: 'enc' }] }),
    'no_usable_key',
  ],
  [
    'a corrupt key under a known kid, beside a good one',
    () => ({ keys: [corruptK1(), rsa2.jwk] }),
    'invalid_key',
  ],
  ['a private key under a known kid', () => ({ keys: [privateK1, rsa2.jwk] }), 'invalid_key'],
  [
    'a public key whose key_ops WebCrypto refuses (sign on a public key)',
    () => ({ keys: [{ ...rsa.jwk, key_ops: ['verify', 'sign'] }, rsa2.jwk] }),
    'invalid_key',
  ],
];

async function server(...keys: TestKey[]): Promise<JwksServer> {
  const s = await startJwksServer(jwks(...keys));
  cleanup.push(() => s.close().catch(() => {}));
  return s;
}

function engine(s: JwksServer, algorithms: string[], dir?: string): AuthzEngine {
  const e = AuthzEngine.create(
    {
      issuers: [
        {
          id: 'idp',
          issuer: s.issuer,
          audiences: [AUD],
          algorithms: algorithms as never,
          keys: { type: 'jwks-url', url: s.jwksUrl, cooldownSeconds: 0, timeoutMs: 5_000 },
        },
      ],
      cache: { maxEntries: 0, negativeTtlSeconds: 0 },
      policy: { preset: 'none', rules: [{ name: 'any-token', path: '/**' }] },
      ...(dir === undefined ? {} : { jwksCacheDir: dir }),
    },
    { now: () => NOW_MS },
  );
  cleanup.push(() => e.close());
  return e;
}

async function reason(e: AuthzEngine, s: JwksServer, key: TestKey): Promise<string> {
  const token = await sign(key, { iss: s.issuer, aud: AUD });
  return (await e.decide(request('GET', '/api/flows', { token }))).reason;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'authz-poison-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('a fetched key set that would fail valid tokens is a failed fetch', () => {
  it.each(POISON)(
    '%s: the last good set stays, nothing is persisted, the status says why',
    async (_, set, why) => {
      const dir = tempDir();
      const s = await server(rsa, rsa2);
      const e = engine(s, ['RS256'], dir);
      await e.start();
      const file = join(dir, 'idp.jwks.json');
      const persisted = readFileSync(file, 'utf8');

      s.setKeys(set());
      await e.refreshKeys();
      expect(s.hits.jwks).toBe(2);
      expect(await reason(e, s, rsa)).toBe('ok');
      expect(await reason(e, s, rsa2)).toBe('ok');
      expect(e.ready()).toBe(true);
      const status = e.issuerStatus()[0]!;
      expect(status).toMatchObject({
        providerUp: false,
        failures: 1,
        keyCount: 2,
        lastRejection: { reason: why },
      });
      expect(status.rejections[why]).toBe(1);
      expect(status.lastError).toMatch(
        why === 'invalid_key' ? /entry 0 \(kid "k1"\): RS256: / : /no key usable for RS256/,
      );
      await new Promise((r) => setTimeout(r, 150)); // the persist delay after a good fetch
      expect(readFileSync(file, 'utf8')).toBe(persisted);

      // The provider fixes its set: accepted at once on the next fetch, the rejection forgotten.
      s.setKeys(jwks(rsa2));
      await e.refreshKeys();
      expect(e.issuerStatus()[0]).toMatchObject({ providerUp: true, keyCount: 1, lastRejection: null });
      expect(await reason(e, s, rsa2)).toBe('ok');
    },
  );

  it('a kid-miss refetch that finds a poisoned set answers 503, never 401, and keeps the set', async () => {
    const s = await server(rsa);
    const e = engine(s, ['RS256']);
    await e.start();
    s.setKeys({ keys: [{ ...rsa2.jwk, n: 'AA==' }] });
    expect(await reason(e, s, rsa2)).toBe('keys_unavailable');
    expect(await reason(e, s, rsa)).toBe('ok');
  });

  it('a well-formed set that retires a key takes effect at once', async () => {
    const s = await server(rsa, rsa2);
    const e = engine(s, ['RS256']);
    await e.start();
    expect(await reason(e, s, rsa)).toBe('ok');
    s.setKeys(jwks(rsa2));
    await e.refreshKeys();
    expect(await reason(e, s, rsa)).toBe('unknown_key');
    expect(await reason(e, s, rsa2)).toBe('ok');
    expect(e.issuerStatus()[0]).toMatchObject({ providerUp: true, lastRejection: null, keyCount: 1 });
  });

  it('keys for other algorithms beside a usable one are ignored, not refused', async () => {
    const s = await server(rsa);
    const e = engine(s, ['RS256']);
    await e.start();
    s.setKeys({
      keys: [rsa.jwk, ec.jwk, { kty: 'oct', kid: 'h', k: 'c2VjcmV0' }, { kty: 'unknown', kid: 'x' }],
    });
    await e.refreshKeys();
    expect(e.issuerStatus()[0]).toMatchObject({ providerUp: true, keyCount: 4, lastRejection: null });
    expect(await reason(e, s, rsa)).toBe('ok');
  });

  it('with nothing good yet, a poisoned first set leaves the issuer not ready (503), and says why', async () => {
    const s = await server();
    s.setKeys({ keys: [] });
    const e = engine(s, ['RS256']);
    await e.start();
    expect(e.ready()).toBe(false);
    expect(e.issuerStatus()[0]).toMatchObject({ origin: 'none', lastRejection: { reason: 'no_usable_key' } });
    expect(await reason(e, s, rsa)).toBe('keys_unavailable');
  });

  it('a restart during an outage verifies with the persisted good set, not the poisoned one', async () => {
    const dir = tempDir();
    const s = await server(rsa);
    const first = engine(s, ['RS256'], dir);
    await first.start();
    s.setKeys({ keys: [corruptK1()] });
    await first.refreshKeys();
    expect(first.issuerStatus()[0]).toMatchObject({ lastRejection: { reason: 'invalid_key' } });
    first.close();
    await s.close();

    const second = engine(s, ['RS256'], dir);
    await second.start();
    expect(second.ready()).toBe(true);
    expect(second.issuerStatus()[0]).toMatchObject({ origin: 'persisted', providerUp: false });
    expect(await reason(second, s, rsa)).toBe('ok');
  });

  it('a persisted set that is itself poisoned (an older version wrote it) is ignored', async () => {
    const dir = tempDir();
    const s = await server(rsa);
    const first = engine(s, ['RS256'], dir);
    await first.start();
    first.close();
    const file = join(dir, 'idp.jwks.json');
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...saved, jwks: { keys: [] } }));
    await s.close();
    const second = engine(s, ['RS256'], dir);
    await second.start();
    expect(second.ready()).toBe(false);
  });
});

describe('checkKeySet (the rule every key source shares)', () => {
  it('counts usable entries and names each entry jose would pick but cannot import', async () => {
    const check = await checkKeySet(
      {
        keys: [
          rsa.jwk,
          corruptK1(),
          ec.jwk,
          { ...rsa2.jwk, alg: 'PS256' },
          { ...rsa2.jwk, key_ops: ['verify', 'sign'] },
        ],
      },
      ['RS256', 'ES256'],
    );
    expect(check.usable).toBe(2);
    expect(check.entries).toBe(5);
    expect(check.problems).toEqual([
      { index: 1, kid: 'k1', message: 'RS256: RSA member "n" is not base64url' },
      {
        index: 4,
        kid: 'k2',
        message: expect.stringMatching(/^RS256: cannot be imported as a RSA public key \(/),
      },
    ]);
    expect(keySetRejection(check, ['RS256', 'ES256'], 'x')?.rejection).toBe('invalid_key');
    const ok = await checkKeySet(jwks(rsa, ec), ['RS256']);
    expect(ok).toEqual({ usable: 1, entries: 2, problems: [] });
    expect(keySetRejection(ok, ['RS256'], 'x')).toBeNull();
  });
});

describe('what an operator sees of a refused set (the agent in process)', () => {
  it('a warning, jwks_rejections_total{reason} and /readyz, which stays 200 on the last good set', async () => {
    const s = await server(rsa);
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const config = parseAgentConfig({
      listen: '127.0.0.1:0',
      metrics: { listen: '127.0.0.1:0' },
      issuers: [
        {
          id: 'idp',
          issuer: s.issuer,
          audiences: [AUD],
          algorithms: ['RS256'],
          keys: { type: 'jwks-url', url: s.jwksUrl },
        },
      ],
    });
    const runtime = await startRuntime(config, logger);
    cleanup.push(() => runtime.close(0));
    s.setKeys({ keys: [] });
    await runtime.engine().refreshKeys();

    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 40,
        issuer: 'idp',
        reason: 'no_usable_key',
        msg: 'fetched key set rejected; verifying with the last good set',
      }),
    );
    const base = `http://${runtime.endpointsAddress}`;
    const ready = await httpRequest(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body).issuers[0]).toMatchObject({
      id: 'idp',
      ready: true,
      providerUp: false,
      lastRejection: { reason: 'no_usable_key', message: expect.stringContaining('no key usable for RS256') },
    });
    const metrics = (await httpRequest(`${base}/metrics`)).body;
    expect(metrics).toContain('spoe_authz_jwks_rejections_total{issuer="idp",reason="no_usable_key"} 1');
    expect(metrics).toContain('spoe_authz_jwks_rejections_total{issuer="idp",reason="invalid_key"} 0');
    expect(metrics).toContain('spoe_authz_jwks_fetch_failures_total{issuer="idp"} 1');
  });
});

describe('a jwks-file read again (SIGHUP: engine.refreshKeys) follows the same rules', () => {
  it('takes a rotated file at once, keeps the keys read before when the new file is refused', async () => {
    const dir = tempDir();
    const path = join(dir, 'keys.json');
    writeFileSync(path, JSON.stringify(jwks(rsa)));
    const e = AuthzEngine.create(
      {
        issuers: [
          {
            id: 'file',
            issuer: 'https://file.example',
            audiences: [AUD],
            algorithms: ['RS256'],
            keys: { type: 'jwks-file', path },
          },
        ],
        cache: { maxEntries: 0, negativeTtlSeconds: 0 },
        policy: { preset: 'none', rules: [{ name: 'any-token', path: '/**' }] },
      },
      { now: () => NOW_MS },
    );
    cleanup.push(() => e.close());
    await e.start();
    const decide = async (key: TestKey) =>
      (
        await e.decide(
          request('GET', '/x', { token: await sign(key, { iss: 'https://file.example', aud: AUD }) }),
        )
      ).reason;
    expect(await decide(rsa)).toBe('ok');
    expect(await decide(rsa2)).toBe('unknown_key');

    writeFileSync(path, JSON.stringify(jwks(rsa2)));
    await e.refreshKeys();
    expect(await decide(rsa2)).toBe('ok');
    expect(await decide(rsa)).toBe('unknown_key');

    for (const [set, why] of [
      [{ keys: [] }, 'no_usable_key'],
      [{ keys: [{ ...rsa2.jwk, n: 'AQAB' }] }, 'invalid_key'],
    ] as const) {
      writeFileSync(path, JSON.stringify(set));
      await e.refreshKeys();
      expect(await decide(rsa2)).toBe('ok');
      expect(e.issuerStatus()[0]).toMatchObject({ lastRejection: { reason: why } });
    }
    writeFileSync(path, 'not json');
    await e.refreshKeys();
    expect(await decide(rsa2)).toBe('ok');
    expect(e.issuerStatus()[0]).toMatchObject({
      failures: 3,
      rejections: { no_usable_key: 1, invalid_key: 1 },
    });
  });
});
