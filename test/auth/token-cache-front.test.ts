/**
 * The token cache's direct-mapped front (token-cache.ts): tokens sharing a slot, a front entry
 * outliving its LRU entry, expiry and the maximum TTL still enforced on front hits.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { AuthzConfigInput, AuthzEngine } from '../../src/auth/index.js';
import { testEngine } from './helpers/engine.js';
import { makeKey, NOW_MS, sign, type TestKey } from './helpers/keys.js';
import { request } from './helpers/request.js';

const ISS = 'https://idp.example.com';
let key: TestKey;
const clock = { now: NOW_MS };

beforeAll(async () => {
  key = await makeKey('ES256', 'k');
});

function engine(cache: AuthzConfigInput['cache'] = {}): AuthzEngine {
  clock.now = NOW_MS;
  return testEngine(key, () => clock.now, { cache });
}

const mint = (sub: string, exp = 3600) =>
  sign(key, { iss: ISS, aud: 'prefect', sub, exp, claims: { roles: ['viewer'] } });
const slotOf = (t: string) => (t.charCodeAt(t.length - 1) * 31 + t.charCodeAt(t.length - 2)) & 255;
const decide = (e: AuthzEngine, t: string) => e.decide(request('GET', '/api/flows/', { token: t }));

describe('token cache front', () => {
  it('tells apart tokens sharing a front slot', async () => {
    const bySlot = new Map<number, string>();
    let pair: [string, string] | null = null;
    for (let i = 0; pair === null && i < 400; i++) {
      const t = await mint(`user-${i}`);
      const other = bySlot.get(slotOf(t));
      if (other !== undefined) pair = [other, t];
      else bySlot.set(slotOf(t), t);
    }
    expect(pair).not.toBeNull();
    const [a, b] = pair as [string, string];
    const e = engine();
    const subA = (await decide(e, a)).sub;
    const subB = (await decide(e, b)).sub;
    expect(subA).not.toBe(subB);
    for (let i = 0; i < 4; i++) {
      expect(await decide(e, a)).toMatchObject({ sub: subA, cache: 'hit' });
      expect(await decide(e, b)).toMatchObject({ sub: subB, cache: 'hit' });
    }
    expect(e.stats().verifications).toBe(2);
  });

  it('stays correct when the LRU is smaller than the working set', async () => {
    const e = engine({ maxEntries: 2 });
    const tokens = await Promise.all(Array.from({ length: 12 }, (_, i) => mint(`u${i}`)));
    for (let round = 0; round < 3; round++) {
      for (const [i, t] of tokens.entries())
        expect(await decide(e, t)).toMatchObject({ reason: 'ok', sub: `u${i}` });
    }
    expect(e.stats().cache.entries).toBeLessThanOrEqual(2);
  });

  it('enforces expiry and the maximum TTL on front hits', async () => {
    const e = engine({ maxTtlSeconds: 60 });
    const t = await mint('alice', 600);
    await decide(e, t);
    expect(await decide(e, t)).toMatchObject({ cache: 'hit' });
    clock.now += 61_000; // past the max TTL: verified again
    expect(await decide(e, t)).toMatchObject({ reason: 'ok', cache: 'miss' });
    expect(e.stats().verifications).toBe(2);
    clock.now = NOW_MS + 600_000 + 31_000; // past exp + tolerance
    expect(await decide(e, t)).toMatchObject({ reason: 'expired', allow: false });
    expect(await decide(e, t)).toMatchObject({ reason: 'expired', allow: false });
  });

  it('is disabled with the cache', async () => {
    const e = engine({ maxEntries: 0 });
    const t = await mint('alice');
    await decide(e, t);
    expect(await decide(e, t)).toMatchObject({ reason: 'ok', cache: 'miss' });
    expect(e.stats().verifications).toBe(2);
  });
});
