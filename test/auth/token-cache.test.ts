import { beforeAll, describe, expect, it } from 'vitest';
import type { AuthzConfigInput, AuthzEngine, Decision } from '../../src/auth/index.js';
import { TEST_ISS, testEngine } from './helpers/engine.js';
import { makeKey, NOW_MS, sign, type TestKey, type TokenSpec } from './helpers/keys.js';
import { request } from './helpers/request.js';

const ISS = TEST_ISS;
let key: TestKey;
let clock = NOW_MS;

beforeAll(async () => {
  key = await makeKey('ES256', 'k');
});

function engine(cache: AuthzConfigInput['cache'] = {}): AuthzEngine {
  clock = NOW_MS;
  return testEngine(key, () => clock, { cache });
}

const token = (spec: TokenSpec = {}) =>
  sign(key, { iss: ISS, aud: 'prefect', claims: { roles: ['viewer'] }, ...spec });
const get = (e: AuthzEngine, t: string, path = '/api/flows/1') =>
  e.decide(request('GET', path, { token: t }));

describe('verified-token cache', () => {
  it('verifies once, then answers from the cache synchronously', async () => {
    const e = engine();
    const t = await token();
    const first = get(e, t);
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toMatchObject({ reason: 'ok', cache: 'miss' });
    const second = get(e, t);
    expect(second).not.toBeInstanceOf(Promise);
    expect(second).toMatchObject({ reason: 'ok', cache: 'hit', sub: 'alice', role: 'viewer' });
    expect(e.stats()).toMatchObject({ verifications: 1, cache: { hits: 1, misses: 1, entries: 1 } });
  });

  it('re-runs the policy on a hit', async () => {
    const e = engine();
    const t = await token();
    await get(e, t);
    expect(await e.decide(request('POST', '/api/flows/filter', { token: t }))).toMatchObject({
      reason: 'ok',
      cache: 'hit',
    });
    expect(await e.decide(request('DELETE', '/api/flows/1', { token: t }))).toMatchObject({
      reason: 'forbidden',
      cache: 'hit',
    });
  });

  it('respects exp on a hit, with the clock tolerance', async () => {
    const e = engine();
    const t = await token({ exp: 60 });
    expect(await get(e, t)).toMatchObject({ reason: 'ok', cache: 'miss' });
    clock = NOW_MS + 89_000;
    expect(await get(e, t)).toMatchObject({ reason: 'ok', cache: 'hit' });
    clock = NOW_MS + 90_000;
    expect(await get(e, t)).toMatchObject({ allow: false, status: 401, reason: 'expired', cache: 'hit' });
    expect(await get(e, t)).toMatchObject({ reason: 'expired', cache: 'miss' });
  });

  it('respects nbf on a hit when the clock goes back', async () => {
    const e = engine();
    const t = await token({ nbf: 20 });
    expect(await get(e, t)).toMatchObject({ reason: 'ok', cache: 'miss' });
    clock = NOW_MS - 60_000;
    expect(await get(e, t)).toMatchObject({ reason: 'not_yet_valid', cache: 'hit' });
  });

  it('re-verifies after maxTtl even if exp is later', async () => {
    const e = engine({ maxTtlSeconds: 10 });
    const t = await token({ exp: 3600 });
    await get(e, t);
    clock = NOW_MS + 9_999;
    expect(await get(e, t)).toMatchObject({ cache: 'hit' });
    clock = NOW_MS + 10_000;
    expect(await get(e, t)).toMatchObject({ reason: 'ok', cache: 'miss' });
    expect(e.stats().verifications).toBe(2);
  });

  it('keys entries by the whole token, not the signature', async () => {
    const e = engine();
    const t = await token();
    await get(e, t);
    const [h, , s] = t.split('.');
    const [, p] = (await token({ claims: { roles: ['admin'] } })).split('.');
    expect(await get(e, `${h}.${p}.${s}`)).toMatchObject({ reason: 'bad_signature', cache: 'miss' });
  });

  it('shares one verification between concurrent requests with the same token', async () => {
    const e = engine();
    const t = await token();
    const decisions = await Promise.all(Array.from({ length: 10 }, () => get(e, t)));
    expect(decisions.every((d: Decision) => d.reason === 'ok' && d.cache === 'miss')).toBe(true);
    expect(e.stats()).toMatchObject({ verifications: 1, cache: { coalesced: 9 } });
  });

  it('is bounded', async () => {
    const e = engine({ maxEntries: 2 });
    for (const sub of ['a', 'b', 'c']) await get(e, await token({ sub }));
    expect(e.stats().cache.entries).toBe(2);
  });

  it('can be disabled', async () => {
    const e = engine({ maxEntries: 0 });
    const t = await token();
    await get(e, t);
    expect(await get(e, t)).toMatchObject({ reason: 'ok', cache: 'miss' });
  });
});

describe('negative cache', () => {
  it('remembers a failed token briefly: a flood costs one verification', async () => {
    const e = engine({ negativeTtlSeconds: 10 });
    const bad = await token({ aud: 'grafana' });
    expect(await get(e, bad)).toMatchObject({ reason: 'bad_audience', cache: 'miss', iss: ISS });
    for (let i = 0; i < 100; i++) {
      expect(get(e, bad)).toMatchObject({ reason: 'bad_audience', status: 401, cache: 'negative', iss: ISS });
    }
    expect(e.stats()).toMatchObject({ verifications: 1, cache: { negativeHits: 100, negativeEntries: 1 } });
    clock = NOW_MS + 10_000;
    expect(await get(e, bad)).toMatchObject({ reason: 'bad_audience', cache: 'miss' });
    expect(e.stats().verifications).toBe(2);
  });

  it('does not remember not_yet_valid (it will become valid)', async () => {
    const e = engine({ negativeTtlSeconds: 60 });
    const early = await token({ nbf: 40 });
    expect(await get(e, early)).toMatchObject({ reason: 'not_yet_valid', cache: 'miss' });
    clock = NOW_MS + 10_000;
    expect(await get(e, early)).toMatchObject({ reason: 'ok', cache: 'miss' });
  });

  it('remembers malformed and unknown-issuer tokens too', async () => {
    const e = engine({ negativeTtlSeconds: 10 });
    await get(e, 'abcd.efgh.ijkl');
    expect(get(e, 'abcd.efgh.ijkl')).toMatchObject({ reason: 'malformed_token', cache: 'negative' });
    const foreign = await sign(key, { iss: 'https://evil.example.com', aud: 'prefect' });
    await get(e, foreign);
    expect(get(e, foreign)).toMatchObject({ reason: 'unknown_issuer', cache: 'negative' });
  });
});
