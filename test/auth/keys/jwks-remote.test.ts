import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AuthError, type AuthzConfigInput, AuthzEngine } from '../../../src/auth/index.js';
import { type JwksServer, type JwksServerMode, startJwksServer } from '../../helpers/jwks-server.js';
import { jwks, makeKey, NOW_MS, sign, type TestKey } from '../helpers/keys.js';
import { request } from '../helpers/request.js';

const AUD = 'prefect';
let k1: TestKey;
let k2: TestKey;
let k3: TestKey;

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

beforeAll(async () => {
  k1 = await makeKey('RS256', 'k1');
  k2 = await makeKey('ES256', 'k2');
  k3 = await makeKey('EdDSA', 'k3');
});

async function server(...keys: TestKey[]): Promise<JwksServer> {
  const s = await startJwksServer(jwks(...keys));
  cleanup.push(() => s.close().catch(() => {}));
  return s;
}

type Keys = Record<string, unknown>;

function engine(s: JwksServer, keys: Keys = {}, extra: Partial<AuthzConfigInput> = {}): AuthzEngine {
  const e = AuthzEngine.create(
    {
      issuers: [
        {
          id: 'idp',
          issuer: s.issuer,
          audiences: [AUD],
          algorithms: ['RS256', 'ES256', 'EdDSA'],
          keys: { type: 'oidc', cooldownSeconds: 0, timeoutMs: 5_000, ...keys } as never,
        },
      ],
      cache: { maxEntries: 0, negativeTtlSeconds: 0 },
      policy: { preset: 'none', rules: [{ name: 'any-token', path: '/**' }] },
      ...extra,
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

describe('OIDC discovery and JWKS fetch', () => {
  it('discovers jwks_uri, fetches keys at start and reports ready', async () => {
    const s = await server(k1);
    const e = engine(s);
    expect(e.ready()).toBe(false);
    await e.start();
    expect(e.issuerStatus()[0]?.lastError).toBe(null);
    expect(e.ready()).toBe(true);
    expect(s.hits).toEqual({ discovery: 1, jwks: 1 });
    expect(e.issuerStatus()[0]).toMatchObject({
      id: 'idp',
      kind: 'oidc',
      ready: true,
      providerUp: true,
      origin: 'network',
      url: s.jwksUrl,
      keyCount: 1,
      fetches: 2,
      failures: 0,
      lastError: null,
    });
    expect(await reason(e, s, k1)).toBe('ok');
  });

  it('takes an explicit JWKS URL without discovery', async () => {
    const s = await server(k1);
    const e = engine(s, { type: 'jwks-url', url: s.jwksUrl });
    await e.start();
    expect(s.hits).toEqual({ discovery: 0, jwks: 1 });
    expect(await reason(e, s, k1)).toBe('ok');
  });

  it('refuses a discovery document naming another issuer', async () => {
    const s = await server(k1);
    s.setDiscovery({ issuer: 'https://other.example.com', jwks_uri: s.jwksUrl });
    const e = engine(s);
    await e.start();
    expect(e.ready()).toBe(false);
    expect(e.issuerStatus()[0]?.lastError).toMatch(/is not http:\/\/127\.0\.0\.1/);
    expect(await reason(e, s, k1)).toBe('keys_unavailable');
  });

  it('refuses a discovered plain-http jwks_uri on a non-loopback host', async () => {
    const s = await server(k1);
    s.setDiscovery({ issuer: s.issuer, jwks_uri: 'http://idp.example.com/jwks' });
    const e = engine(s);
    await e.start();
    expect(e.ready()).toBe(false);
    expect(e.issuerStatus()[0]?.lastError).toMatch(/must use https/);
  });

  it('requires https for configured URLs unless loopback or allowInsecureHttp', () => {
    const config = (keys: Keys) => ({
      issuers: [{ id: 'x', issuer: 'http://idp.example.com', audiences: [AUD], algorithms: ['RS256'], keys }],
    });
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return e as AuthError;
      }
      throw new Error('no error');
    };
    const a = err(() => AuthzEngine.create(config({ type: 'jwks-url', url: 'http://idp.example.com/jwks' })));
    expect(a.code).toBe('config_invalid');
    expect(a.issues).toEqual([{ path: 'issuers.0.keys.url', message: expect.stringMatching(/https/) }]);
    const b = err(() => AuthzEngine.create(config({ type: 'oidc' })));
    expect(b.issues[0]?.path).toBe('issuers.0.issuer');
    expect(() =>
      AuthzEngine.create(
        config({ type: 'jwks-url', url: 'http://idp.example.com/jwks', allowInsecureHttp: true }),
      ),
    ).not.toThrow();
    expect(() =>
      AuthzEngine.create(config({ type: 'jwks-url', url: 'http://localhost:8080/jwks' })),
    ).not.toThrow();
    expect(() =>
      AuthzEngine.create(config({ type: 'jwks-url', url: 'http://[::1]:8080/jwks' })),
    ).not.toThrow();
  });
});

describe('rotation', () => {
  it('accepts a new kid after refetch and keeps old tokens working while their key is published', async () => {
    const s = await server(k1);
    const e = engine(s);
    await e.start();
    expect(await reason(e, s, k2)).toBe('unknown_key');
    s.setKeys(jwks(k1, k2));
    expect(await reason(e, s, k2)).toBe('ok');
    expect(await reason(e, s, k1)).toBe('ok');
    s.setKeys(jwks(k2));
    await e.refreshKeys();
    expect(await reason(e, s, k1)).toBe('unknown_key');
    expect(await reason(e, s, k2)).toBe('ok');
  });

  it('shares one fetch between concurrent unknown-kid verifications', async () => {
    const s = await server(k1);
    const e = engine(s);
    await e.start();
    s.setKeys(jwks(k1, k2));
    s.resetHits();
    const tokens = await Promise.all(
      Array.from({ length: 20 }, (_, i) => sign(k2, { iss: s.issuer, aud: AUD, sub: `u${i}` })),
    );
    const decisions = await Promise.all(tokens.map((token) => e.decide(request('GET', '/x', { token }))));
    expect(decisions.map((d) => d.reason)).toEqual(Array(20).fill('ok'));
    expect(s.hits.jwks).toBe(1);
  });

  it('never fetches for an unknown issuer, a disallowed algorithm or an unknown crit', async () => {
    const s = await server(k1);
    const e = engine(s);
    await e.start();
    s.resetHits();
    const foreign = await sign(k2, { iss: 'https://evil.example.com', aud: AUD, header: { kid: 'new' } });
    expect((await e.decide(request('GET', '/x', { token: foreign }))).reason).toBe('unknown_issuer');
    const hs = await sign(
      { alg: 'HS256', secret: Buffer.alloc(32, 1) },
      { iss: s.issuer, aud: AUD, header: { kid: 'new' } },
    );
    expect((await e.decide(request('GET', '/x', { token: hs }))).reason).toBe('bad_algorithm');
    const crit = await sign(k2, {
      iss: s.issuer,
      aud: AUD,
      header: { kid: 'new', crit: ['x-ext'], 'x-ext': 1 },
      crit: { 'x-ext': true },
    });
    expect((await e.decide(request('GET', '/x', { token: crit }))).reason).toBe('malformed_token');
    expect(s.hits).toEqual({ discovery: 0, jwks: 0 });
  });

  it('does not refetch for an unknown kid during the cooldown', async () => {
    const s = await server(k1);
    const e = engine(s, { cooldownSeconds: 3600 });
    await e.start();
    s.setKeys(jwks(k1, k2));
    s.resetHits();
    expect(await reason(e, s, k2)).toBe('unknown_key');
    expect(s.hits.jwks).toBe(0);
  });

  it('picks up rotated keys on the background refresh', async () => {
    const s = await server(k1);
    const e = engine(s, { cooldownSeconds: 3600, refreshIntervalSeconds: 0.05 });
    await e.start();
    s.setKeys(jwks(k3));
    await vi.waitFor(() => expect(e.issuerStatus()[0]?.fetches).toBeGreaterThanOrEqual(4), { timeout: 5000 });
    expect(await reason(e, s, k3)).toBe('ok');
  });
});

describe('outage (stale-if-error)', () => {
  it('keeps verifying with cached keys when the provider dies; a new kid is 503, not 401', async () => {
    const s = await server(k1);
    const e = engine(s);
    await e.start();
    await s.close();
    expect(await reason(e, s, k1)).toBe('ok');
    const d = await e.decide(request('GET', '/x', { token: await sign(k2, { iss: s.issuer, aud: AUD }) }));
    expect(d).toMatchObject({ allow: false, status: 503, reason: 'keys_unavailable' });
    expect(e.issuerStatus()[0]).toMatchObject({ ready: true, providerUp: false });
    expect(e.issuerStatus()[0]?.lastError).toMatch(/ECONNREFUSED|fetch failed/);
    await e.refreshKeys();
    expect(await reason(e, s, k1)).toBe('ok');
  });

  it('fails kid-miss refetches fast after a failure, until a retry succeeds', async () => {
    const s = await server(k1);
    const e = engine(s, { retryIntervalSeconds: 3600 });
    await e.start();
    s.setMode('error');
    await e.refreshKeys();
    s.setMode('ok');
    s.setKeys(jwks(k1, k2));
    s.resetHits();
    expect(await reason(e, s, k2)).toBe('keys_unavailable');
    expect(s.hits.jwks).toBe(0);
    await e.refreshKeys();
    expect(e.issuerStatus()[0]?.providerUp).toBe(true);
    expect(await reason(e, s, k2)).toBe('ok');
  });

  it('retries on its own after a failure', async () => {
    const s = await server(k1);
    const e = engine(s, { retryIntervalSeconds: 0.05 });
    await e.start();
    s.setMode('error');
    await e.refreshKeys();
    expect(e.issuerStatus()[0]?.providerUp).toBe(false);
    s.setMode('ok');
    await vi.waitFor(() => expect(e.issuerStatus()[0]?.providerUp).toBe(true), { timeout: 5000 });
  });

  const modes: Array<[JwksServerMode, RegExp]> = [
    ['error', /HTTP 500/],
    ['garbage', /not JSON/],
    ['not-a-jwks', /not a JWK Set/],
    ['redirect', /HTTP 302/],
    ['hang', /timed out/],
  ];
  it.each(modes)('provider answers %s: old keys verify, new kid is keys_unavailable', async (mode, error) => {
    const s = await server(k1);
    const e = engine(s, { type: 'jwks-url', url: s.jwksUrl, timeoutMs: 200 });
    await e.start();
    s.setMode(mode);
    await e.refreshKeys();
    expect(e.issuerStatus()[0]).toMatchObject({ ready: true, providerUp: false, failures: 1 });
    expect(e.issuerStatus()[0]?.lastError).toMatch(error);
    expect(await reason(e, s, k1)).toBe('ok');
    expect(await reason(e, s, k2)).toBe('keys_unavailable');
  });

  it('times out a slow provider', async () => {
    const s = await server(k1);
    s.setDelay(1000);
    const e = engine(s, { type: 'jwks-url', url: s.jwksUrl, timeoutMs: 100 });
    await e.start();
    expect(e.ready()).toBe(false);
    expect(e.issuerStatus()[0]?.lastError).toMatch(/timed out/);
  });

  it('starts without keys when the provider is down, answers 503, recovers', async () => {
    const s = await server(k1);
    await s.close();
    const e = engine(s);
    await e.start();
    expect(e.ready()).toBe(false);
    expect(await reason(e, s, k1)).toBe('keys_unavailable');
    await s.reopen();
    await e.refreshKeys();
    expect(e.ready()).toBe(true);
    expect(await reason(e, s, k1)).toBe('ok');
  });

  it('never caches a 503 in the negative cache', async () => {
    const s = await server(k1);
    await s.close();
    const e = engine(s, {}, { cache: { negativeTtlSeconds: 60 } });
    await e.start();
    const token = await sign(k1, { iss: s.issuer, aud: AUD });
    expect((await e.decide(request('GET', '/x', { token }))).reason).toBe('keys_unavailable');
    await s.reopen();
    await e.refreshKeys();
    expect(await e.decide(request('GET', '/x', { token }))).toMatchObject({ reason: 'ok', cache: 'miss' });
    expect(e.stats().cache.negativeHits).toBe(0);
  });
});

describe('persisted JWKS', () => {
  it('writes the last good set and verifies with it after a restart while the provider is down', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'authz-jwks-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const s = await server(k1);
    const first = engine(s, {}, { jwksCacheDir: dir });
    await first.start();
    const file = join(dir, 'idp.jwks.json');
    expect(existsSync(file)).toBe(true);
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    expect(saved).toMatchObject({
      version: 1,
      iss: s.issuer,
      jwksUri: s.jwksUrl,
      jwks: { keys: [{ kid: 'k1' }] },
    });
    first.close();
    await s.close();

    const second = engine(s, {}, { jwksCacheDir: dir });
    await second.start();
    expect(second.ready()).toBe(true);
    expect(second.issuerStatus()[0]).toMatchObject({ origin: 'persisted', providerUp: false });
    expect(await reason(second, s, k1)).toBe('ok');
    expect(await reason(second, s, k2)).toBe('keys_unavailable');
  });

  it('ignores a persisted set written for another issuer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'authz-jwks-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const a = await server(k1);
    const first = engine(a, {}, { jwksCacheDir: dir });
    await first.start();
    first.close();
    const b = await server(k1);
    await b.close();
    const second = engine(b, {}, { jwksCacheDir: dir });
    await second.start();
    expect(second.ready()).toBe(false);
  });
});
