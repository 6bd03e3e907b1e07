/**
 * The token cache (token-cache.ts): the LRU keyed by digest, its direct-mapped front, tokens
 * sharing a slot, a front entry outliving its LRU entry, expiry and the maximum TTL still
 * enforced on front hits.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AuthzConfigInput, AuthzEngine } from '../../src/auth/index.js';
import { tokenKey } from '../../src/auth/token-cache.js';
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

  it('answers tokens beyond the front from the LRU, by digest', async () => {
    const e = engine();
    // More tokens than front slots: most are found in the LRU, some after sharing a slot.
    const tokens = await Promise.all(Array.from({ length: 600 }, (_, i) => mint(`u${i}`)));
    for (const t of tokens) await decide(e, t);
    for (let round = 0; round < 3; round++) {
      for (const [i, t] of tokens.entries())
        expect(decide(e, t)).toMatchObject({ reason: 'ok', sub: `u${i}`, cache: 'hit' });
    }
    expect(e.stats()).toMatchObject({ verifications: 600, cache: { entries: 600 } });
  });

  it('a token one character away from a cached one is verified again, never a hit', async () => {
    const e = engine();
    const t = await mint('alice');
    await decide(e, t);
    const at = [0, t.indexOf('.') + 5, t.lastIndexOf('.') - 1, t.length - 40, t.length - 1];
    for (const i of at) {
      const c = t[i] === 'A' ? 'B' : 'A';
      const altered = `${t.slice(0, i)}${c}${t.slice(i + 1)}`;
      // Verified as jose would: a change in the last character's unused bits still verifies.
      expect(await decide(e, altered)).toMatchObject({ cache: 'miss' });
    }
    expect(e.stats().verifications).toBe(1 + at.length);
    expect(decide(e, t)).toMatchObject({ allow: true, cache: 'hit' });
  });
});

describe('tokenKey', () => {
  it('is the SHA-256 of the whole token, 32 one-byte characters', async () => {
    const t = await mint('alice');
    const key = tokenKey(t);
    expect(key.length).toBe(32);
    expect(Buffer.from(key, 'latin1').toString('hex')).toBe(createHash('sha256').update(t).digest('hex'));
    expect(tokenKey(`${t.slice(0, -1)}${t.endsWith('A') ? 'B' : 'A'}`)).not.toBe(key);
    expect(tokenKey(`x${t.slice(1)}`)).not.toBe(key);
  });
});
