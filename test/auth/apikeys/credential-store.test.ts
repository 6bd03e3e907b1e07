import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { hashPassword, KdfLimiter } from '../../../src/auth/apikeys/auth-string-hash.js';
import { apiKeyId, hashApiKey, newApiKey, newKeyId } from '../../../src/auth/apikeys/key-format.js';
import type { KeyEntry } from '../../../src/auth/apikeys/keys-file.js';
import { type AuthzConfigInput, AuthzEngine, type Decision, isAuthError } from '../../../src/auth/index.js';
import { request } from '../helpers/request.js';

const NOW = Date.parse('2026-12-03T12:00:00Z');
/** Cheap scrypt for tests (the stored cost is per entry). */
const TEST_COST = { logN: 10, r: 8, p: 1 } as const;
const POLL = '/api/work_pools/prod/get_scheduled_flow_runs';

type EntryInput = Partial<KeyEntry> & Pick<KeyEntry, 'type' | 'sub' | 'hash'>;

function entry(e: EntryInput): Record<string, unknown> {
  return {
    id: e.id ?? newKeyId(),
    roles: ['worker'],
    createdAt: '2026-12-01T00:00:00Z',
    ...e,
  };
}

const basic = (s: string) => `Basic ${Buffer.from(s, 'utf8').toString('base64')}`;

describe('API keys and auth strings (keys file)', () => {
  let dir: string;
  let file: string;
  let now: number;
  let engines: AuthzEngine[];

  const write = (keys: Record<string, unknown>[], text?: string) => {
    // As the CLI does: a whole new file renamed over the old one.
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, text ?? JSON.stringify({ version: 1, keys }));
    renameSync(tmp, file);
  };
  const engine = (config: Partial<AuthzConfigInput> = {}) => {
    const e = AuthzEngine.create({ apiKeys: { file, pollSeconds: 0.2 }, ...config }, { now: () => now });
    engines.push(e);
    return e;
  };
  const decide = async (
    e: AuthzEngine,
    method: string,
    path: string,
    authorization: string,
  ): Promise<Decision> => e.decide(request(method, path, { authorization }));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'apikeys-'));
    file = join(dir, 'api-keys.json');
    now = NOW;
    engines = [];
  });
  afterEach(() => {
    for (const e of engines) e.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes keys with the prefix, an id and 256 bits of base62, and stores only their hash', () => {
    const { id, key } = newApiKey();
    expect(key).toMatch(/^spoe_[0-9A-Za-z]{12}_[0-9A-Za-z]{43}$/);
    expect(apiKeyId(key)).toBe(id);
    expect(hashApiKey(key)).toMatch(/^sha256:[A-Za-z0-9_-]{43}$/);
    expect(hashApiKey(key)).not.toContain(key.slice(18));
    expect(newApiKey().key).not.toBe(key);
  });

  it('an API key as Authorization: Bearer gets the same variables as a JWT would', async () => {
    const { id, key } = newApiKey();
    write([entry({ id, type: 'api-key', sub: 'worker-a', hash: hashApiKey(key) })]);
    const e = engine();
    const d = await decide(e, 'POST', POLL, `Bearer ${key}`);
    expect(d).toMatchObject({ allow: true, status: 200, reason: 'ok', sub: 'worker-a', iss: 'api-key' });
    expect(d.role).toBe('worker');
    expect(d.rule).toMatch(/^prefect\.worker\./);
    // A route the worker role does not have: 403, with the subject known.
    const admin = await decide(e, 'GET', '/api/admin/settings', `Bearer ${key}`);
    expect(admin).toMatchObject({ allow: false, status: 403, reason: 'forbidden' });
  });

  it.each([
    ['a wrong secret', (key: string) => `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`],
    ['an unknown id', (key: string) => `spoe_${'0'.repeat(12)}${key.slice(17)}`],
    ['a truncated key', (key: string) => key.slice(0, -3)],
    ['the bare prefix', () => 'spoe_'],
    ['a key with a dot (never a JWT)', (key: string) => `${key}.x.y`],
  ])('%s is bad_credentials (401), not a malformed JWT', async (_, mangle) => {
    const { id, key } = newApiKey();
    write([entry({ id, type: 'api-key', sub: 'worker-a', hash: hashApiKey(key) })]);
    const d = await decide(engine(), 'POST', POLL, `Bearer ${mangle(key)}`);
    expect(d).toMatchObject({
      allow: false,
      status: 401,
      reason: 'bad_credentials',
      iss: 'api-key',
      sub: null,
    });
  });

  it('a key once proven is compared directly after; any other secret for its id still fails', async () => {
    const { id, key } = newApiKey();
    write([entry({ id, type: 'api-key', sub: 'worker-a', hash: hashApiKey(key) })]);
    const e = engine();
    const other = `${key.slice(0, 18)}${newApiKey().key.slice(18)}`;
    expect((await decide(e, 'POST', POLL, `Bearer ${key}`)).reason).toBe('ok');
    expect((await decide(e, 'POST', POLL, `Bearer ${other}`)).reason).toBe('bad_credentials');
    expect((await decide(e, 'POST', POLL, `Bearer ${key}`)).reason).toBe('ok');
    expect((await decide(e, 'POST', POLL, `Bearer ${key.slice(0, -1)}\u0141`)).reason).toBe(
      'bad_credentials',
    );
  });

  it('without apiKeys configured, a key is still bad_credentials', async () => {
    const e = AuthzEngine.create({}, { now: () => now });
    engines.push(e);
    const d = await decide(e, 'POST', POLL, `Bearer ${newApiKey().key}`);
    expect(d.reason).toBe('bad_credentials');
  });

  it('honours expiry on the engine clock and revocation', async () => {
    const a = newApiKey();
    const b = newApiKey();
    write([
      entry({
        id: a.id,
        type: 'api-key',
        sub: 'a',
        hash: hashApiKey(a.key),
        expiresAt: '2026-12-03T12:00:10Z',
      }),
      entry({
        id: b.id,
        type: 'api-key',
        sub: 'b',
        hash: hashApiKey(b.key),
        revokedAt: '2026-12-02T00:00:00Z',
      }),
    ]);
    const e = engine();
    expect((await decide(e, 'POST', POLL, `Bearer ${a.key}`)).reason).toBe('ok');
    now += 10_000;
    expect(await decide(e, 'POST', POLL, `Bearer ${a.key}`)).toMatchObject({
      status: 401,
      reason: 'expired',
    });
    expect(await decide(e, 'POST', POLL, `Bearer ${b.key}`)).toMatchObject({
      status: 401,
      reason: 'revoked',
    });
    // A revoked key only says so to whoever holds its secret.
    const wrong = `${b.key.slice(0, -1)}${b.key.endsWith('x') ? 'y' : 'x'}`;
    expect((await decide(e, 'POST', POLL, `Bearer ${wrong}`)).reason).toBe('bad_credentials');
  });

  it('work pools become the policy work-pool claim', async () => {
    const { id, key } = newApiKey();
    write([entry({ id, type: 'api-key', sub: 'w', hash: hashApiKey(key), workPools: ['prod'] })]);
    const e = engine({ policy: { prefect: { workPoolClaim: 'prefect_work_pools' } } });
    expect((await decide(e, 'POST', POLL, `Bearer ${key}`)).reason).toBe('ok');
    const other = await decide(e, 'POST', '/api/work_pools/staging/get_scheduled_flow_runs', `Bearer ${key}`);
    expect(other).toMatchObject({ allow: false, reason: 'forbidden' });
  });

  it('an auth string (Basic) is checked with scrypt once, then remembered', async () => {
    write([
      entry({
        type: 'auth-string',
        user: 'worker',
        sub: 'worker-basic',
        hash: await hashPassword('s3cret:with:colons', TEST_COST),
      }),
    ]);
    const e = engine();
    const first = await decide(e, 'POST', POLL, basic('worker:s3cret:with:colons'));
    expect(first).toMatchObject({
      allow: true,
      reason: 'ok',
      sub: 'worker-basic',
      iss: 'auth-string',
      cache: 'miss',
    });
    const second = await decide(e, 'POST', POLL, basic('worker:s3cret:with:colons'));
    expect(second).toMatchObject({ allow: true, cache: 'hit' });
    expect(e.stats().credentials?.hashes).toBe(1);
  });

  it('wrong passwords and unknown users are bad_credentials, and a failure is never remembered', async () => {
    write([
      entry({ type: 'auth-string', user: 'worker', sub: 'w', hash: await hashPassword('right', TEST_COST) }),
    ]);
    const e = engine();
    for (const header of [
      basic('worker:wrong'),
      basic('worker:wrong'),
      basic('nobody:right'),
      'Basic !!!!',
      'Basic ',
    ]) {
      const d = await decide(e, 'POST', POLL, header);
      expect(d.allow).toBe(false);
      expect(d.status).toBe(401);
    }
    expect(e.stats().credentials?.hashes).toBe(3);
    expect((await decide(e, 'POST', POLL, basic('worker:right'))).allow).toBe(true);
  });

  it('bounds the hashing: over the bound, credentials_busy (503) at once; the same header shares one hash', async () => {
    write([
      entry({ type: 'auth-string', user: 'worker', sub: 'w', hash: await hashPassword('right', TEST_COST) }),
    ]);
    const e = engine({ apiKeys: { file, maxConcurrentHashes: 1, maxQueuedHashes: 1 } });
    const pending = [
      e.decide(request('POST', POLL, { authorization: basic('worker:right') })),
      e.decide(request('POST', POLL, { authorization: basic('worker:right') })),
      e.decide(request('POST', POLL, { authorization: basic('worker:wrong1') })),
      e.decide(request('POST', POLL, { authorization: basic('worker:wrong2') })),
    ];
    // The fourth finds one hash running and one waiting: refused without waiting.
    expect(pending[3]).not.toBeInstanceOf(Promise);
    expect(pending[3]).toMatchObject({ status: 503, reason: 'credentials_busy' });
    const [a, b, c] = await Promise.all(pending.slice(0, 3));
    expect([a?.reason, b?.reason, c?.reason]).toEqual(['ok', 'ok', 'bad_credentials']);
    expect(e.stats().credentials).toMatchObject({ hashes: 2, hashesRefused: 1 });
  });

  it('a flood of wrong passwords is refused at the bound while keys and remembered auth strings answer at once', async () => {
    const { id, key } = newApiKey();
    write([
      entry({ id, type: 'api-key', sub: 'k', hash: hashApiKey(key) }),
      entry({ type: 'auth-string', user: 'worker', sub: 'w', hash: await hashPassword('right', TEST_COST) }),
    ]);
    const e = engine({ apiKeys: { file, maxConcurrentHashes: 2, maxQueuedHashes: 4 } });
    expect((await decide(e, 'POST', POLL, basic('worker:right'))).reason).toBe('ok');
    const flood = Array.from({ length: 200 }, (_, i) =>
      e.decide(request('POST', POLL, { authorization: basic(`worker:guess-${i}`) })),
    );
    // Only the bound's worth is pending; the rest got their answer without waiting.
    const pending = flood.filter((d) => d instanceof Promise);
    expect(pending).toHaveLength(6);
    expect(flood.filter((d) => !(d instanceof Promise) && d.reason === 'credentials_busy')).toHaveLength(194);
    // Meanwhile, a key and the remembered auth string are decided synchronously.
    const k = e.decide(request('POST', POLL, { authorization: `Bearer ${key}` }));
    const w = e.decide(request('POST', POLL, { authorization: basic('worker:right') }));
    expect(k).toMatchObject({ allow: true, sub: 'k' });
    expect(w).toMatchObject({ allow: true, sub: 'w', cache: 'hit' });
    expect((await Promise.all(pending)).every((d) => d.reason === 'bad_credentials')).toBe(true);
    expect(e.stats().credentials).toMatchObject({ hashes: 7, hashesRefused: 194 });
  });

  it('start-up: a keys file problem is config_invalid on apiKeys.file, naming the field in the file', () => {
    const { id, key } = newApiKey();
    write([entry({ id, type: 'api-key', sub: 'w', hash: hashApiKey(key), roles: ['wroker'] })]);
    const problem = (config: Partial<AuthzConfigInput> = {}) => {
      try {
        engine(config);
      } catch (err) {
        if (isAuthError(err, 'config_invalid')) return err.issues;
        throw err;
      }
      return [];
    };
    expect(problem()).toEqual([
      { path: 'apiKeys.file', message: `${file}: keys.0.roles.0: unknown role "wroker"` },
    ]);
    write([entry({ id, type: 'api-key', sub: 'w', hash: 'sha256:short' })]);
    expect(problem()[0]?.message).toContain('keys.0.hash');
    write([entry({ id, type: 'api-key', sub: 'w', hash: hashApiKey(key), workPools: ['prod'] })]);
    expect(problem()[0]?.message).toContain('keys.0.workPools: set policy.prefect.workPoolClaim');
    write([], '{"version": 1, "keys": [');
    expect(problem()[0]?.message).toContain('not valid JSON');
    rmSync(file);
    expect(problem()[0]?.message).toContain('cannot read');
  });

  it('reloads on reload(); a broken version keeps the last good set', async () => {
    const { id, key } = newApiKey();
    const good = entry({ id, type: 'api-key', sub: 'w', hash: hashApiKey(key) });
    write([good]);
    const e = engine();
    write([], '{ broken');
    await e.refreshKeys();
    expect(e.stats().credentials).toMatchObject({ reloadFailures: 1, apiKeys: 1 });
    expect((await decide(e, 'POST', POLL, `Bearer ${key}`)).reason).toBe('ok');
    write([{ ...good, revokedAt: '2026-12-03T12:00:00Z' }]);
    await e.refreshKeys();
    expect((await decide(e, 'POST', POLL, `Bearer ${key}`)).reason).toBe('revoked');
  });

  it('follows the file on its own (watch and poll): a revocation applies without a signal', async () => {
    const { id, key } = newApiKey();
    const good = entry({ id, type: 'api-key', sub: 'w', hash: hashApiKey(key) });
    write([good]);
    const e = engine();
    await e.start();
    expect((await decide(e, 'POST', POLL, `Bearer ${key}`)).reason).toBe('ok');
    write([{ ...good, revokedAt: '2026-12-03T12:00:00Z' }]);
    await vi.waitFor(
      async () => expect((await decide(e, 'POST', POLL, `Bearer ${key}`)).reason).toBe('revoked'),
      {
        timeout: 5_000,
        interval: 50,
      },
    );
  });

  it('a remembered auth string is forgotten when the file changes', async () => {
    const e1 = entry({
      type: 'auth-string',
      user: 'worker',
      sub: 'w',
      hash: await hashPassword('pw', TEST_COST),
    });
    write([e1]);
    const e = engine();
    expect((await decide(e, 'POST', POLL, basic('worker:pw'))).reason).toBe('ok');
    write([{ ...e1, revokedAt: '2026-12-03T12:00:00Z' }]);
    await e.refreshKeys();
    expect((await decide(e, 'POST', POLL, basic('worker:pw'))).reason).toBe('revoked');
  });

  it('a policy reload that drops a role a key holds is refused', () => {
    const { id, key } = newApiKey();
    write([entry({ id, type: 'api-key', sub: 'w', hash: hashApiKey(key), roles: ['deployer'] })]);
    const e = engine({ policy: { roles: { deployer: { implies: ['developer'] } } } });
    expect(() => e.reloadPolicy({})).toThrow(/keys\.0\.roles\.0: unknown role "deployer"/);
  });

  it('JWT handling is unchanged: a Bearer that is not a key still goes to the JWT path', async () => {
    write([]);
    const d = await decide(engine(), 'GET', '/api/flows/x', 'Bearer not-a-jwt');
    expect(d.reason).toBe('malformed_token');
  });

  it('explain says which credential decided, never printing it', async () => {
    const { id, key } = newApiKey();
    write([
      entry({ id, type: 'api-key', sub: 'w', hash: hashApiKey(key) }),
      entry({ type: 'auth-string', user: 'ci', sub: 'ci', hash: await hashPassword('pw', TEST_COST) }),
    ]);
    const e = engine();
    const k = await e.explain(request('POST', POLL, { authorization: `Bearer ${key}` }));
    expect(k.decision.reason).toBe('ok');
    expect(k.trace).toContain('token: from bearer, an API key');
    expect(k.trace.some((l) => l.includes(`keys file: entry ${id}, subject w, roles [worker]`))).toBe(true);
    expect(k.trace.join('\n')).not.toContain(key);
    const b = await e.explain(request('POST', POLL, { authorization: basic('ci:nope') }));
    expect(b.decision).toMatchObject({ reason: 'bad_credentials', iss: 'auth-string' });
    expect(b.trace).toContain('token: from basic, an auth string');
  });
});

describe('KdfLimiter', () => {
  it('never runs more than its bound, also when a new run arrives as one finishes', async () => {
    const limiter = new KdfLimiter(2, 3);
    let running = 0;
    let peak = 0;
    const gates: Array<() => void> = [];
    const work = () =>
      new Promise<number>((resolve) => {
        running++;
        peak = Math.max(peak, running);
        gates.push(() => {
          running--;
          resolve(1);
        });
      });
    const runs = [0, 1, 2, 3, 4].map(() => limiter.run(work));
    expect(runs.map((r) => r === null)).toEqual([false, false, false, false, false]);
    expect(limiter.run(work)).toBeNull(); // 2 running + 3 waiting
    expect(limiter.refused).toBe(1);
    let late = 3;
    while (gates.length > 0) {
      gates.shift()?.();
      // A newcomer right after a finish must wait for the slot handed to the first waiter.
      if (late-- > 0) {
        const r = limiter.run(work);
        if (r !== null) runs.push(r);
      }
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(runs);
    expect(peak).toBe(2);
    expect(limiter.inFlight).toBe(0);
  });
});
