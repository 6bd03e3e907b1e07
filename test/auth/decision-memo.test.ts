/**
 * Decisions remembered per cached identity (engine.decideCached): a remembered decision must be
 * exactly what a fresh evaluation answers, for every request field the policy reads, across
 * policy reloads and token expiry.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeDecision, NO_CLAIMS } from '../../src/auth/decision.js';
import { DecisionMemo } from '../../src/auth/decision-memo.js';
import {
  type AuthzEngine,
  CompiledPolicy,
  type Decision,
  type PolicyConfigInput,
} from '../../src/auth/index.js';
import { testEngine } from './helpers/engine.js';
import { makeKey, NOW_MS, sign, type TestKey } from './helpers/keys.js';
import { type RequestOptions, request } from './helpers/request.js';

const ISS = 'https://idp.example.com';
let key: TestKey;
const tokens: string[] = [];
const ROLES = [[], ['viewer'], ['operator'], ['worker'], ['developer'], ['admin']];

// Custom rules reading host, src and query, ahead of the Prefect preset (which reads query and
// X-Prefect-UI), so every field of the request key matters to some rule.
const POLICY: PolicyConfigInput = {
  rules: [
    {
      name: 'internal-host',
      effect: 'deny',
      methods: '*',
      path: '/api/admin/**',
      hosts: ['internal.example'],
    },
    {
      name: 'office-only',
      methods: ['GET'],
      path: '/api/office/**',
      sources: ['10.0.0.0/8'],
      roles: ['viewer'],
    },
    { name: 'q', methods: ['GET'], path: '/api/q', query: { mode: 'read' }, roles: ['viewer'] },
  ],
};

function engine(clock: { now: number }, policy: PolicyConfigInput = POLICY): AuthzEngine {
  return testEngine(key, () => clock.now, { policy });
}

beforeAll(async () => {
  key = await makeKey('ES256', 'k');
  for (const roles of ROLES) {
    tokens.push(
      await sign(key, { iss: ISS, aud: 'prefect', sub: roles.join('+') || 'none', claims: { roles } }),
    );
  }
});

/** A decision without its cache outcome (explain always verifies: 'miss'). */
const answer = (d: Decision) => ({ ...d, cache: null });

const METHODS = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'];
const PATHS = [
  '/api/flows/',
  '/api/flows/filter',
  '/api/flow_runs/3fa85f64-5717-4562-b3fc-2c963f66afa6',
  '/api/flow_runs//filter',
  '/api/./flow_runs/filter',
  '/api/variables/name/x',
  '/api/block_documents/filter',
  '/api/block_documents/6a1b',
  '/api/admin/settings',
  '/api/office/report',
  '/api/q',
  '/api/health',
  '/api/%2e%2e/admin',
  '/api/work_pools/k8s/get_scheduled_flow_runs',
  '/',
];
const QUERIES = [null, '', 'include_secrets=true', 'include_secrets=false', 'mode=read', 'mode=write'];
const HOSTS = [null, 'prefect.example.com', 'internal.example', 'INTERNAL.example:8443'];
const SOURCES = [null, '10.1.2.3', '192.0.2.10'];

describe('remembered decisions for cached tokens', () => {
  it('equal a fresh evaluation for every mix of method, path, query, host, src and X-Prefect-UI', async () => {
    const clock = { now: NOW_MS };
    const e = engine(clock);
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            token: fc.integer({ min: 0, max: ROLES.length - 1 }),
            method: fc.constantFrom(...METHODS),
            path: fc.constantFrom(...PATHS),
            query: fc.constantFrom(...QUERIES),
            host: fc.constantFrom(...HOSTS),
            src: fc.constantFrom(...SOURCES),
            prefectUi: fc.boolean(),
          }),
          { minLength: 1, maxLength: 60 },
        ),
        async (reqs) => {
          for (const r of reqs) {
            const opts: RequestOptions = {
              token: tokens[r.token] ?? null,
              query: r.query,
              host: r.host,
              src: r.src,
              prefectUi: r.prefectUi,
            };
            const req = request(r.method, r.path, opts);
            const expected = (await e.explain(req)).decision;
            // Twice: the first may verify or compute, the second is remembered.
            const first = await e.decide(req);
            const second = await e.decide(request(r.method, r.path, opts));
            expect(answer(first)).toEqual(answer(expected));
            expect(answer(second)).toEqual(answer(expected));
          }
        },
      ),
      { numRuns: 60 },
    );
    // The property ran on remembered decisions, not just on fresh ones.
    expect(e.stats().cache.hits).toBeGreaterThan(e.stats().cache.misses);
  });

  it('are the same object on a repeat, and each request field the policy reads changes the answer', async () => {
    const clock = { now: NOW_MS };
    const e = engine(clock);
    const viewer = tokens[1] as string;
    const q = () => request('GET', '/api/q', { token: viewer, query: 'mode=read' });
    const miss = await e.decide(q()); // verifies
    const d1 = await e.decide(q()); // cached identity, decided and remembered
    const d2 = await e.decide(q()); // remembered
    expect([miss.cache, d1.cache, d2.cache]).toEqual(['miss', 'hit', 'hit']);
    expect(d1.allow).toBe(true);
    expect(d2).toBe(d1);
    const rule = async (path: string, opts: RequestOptions) =>
      (await e.decide(request('GET', path, opts))).rule;
    expect(await rule('/api/q', { token: viewer, query: 'mode=write' })).not.toBe('q');
    expect(await rule('/api/q', { token: viewer, query: null })).not.toBe('q');
    expect(await rule('/api/q', { token: viewer, query: 'mode=read' })).toBe('q');
    expect(await rule('/api/office/r', { token: viewer, src: '10.9.9.9' })).toBe('office-only');
    expect(await rule('/api/office/r', { token: viewer, src: '192.0.2.1' })).not.toBe('office-only');
    expect(await rule('/api/office/r', { token: viewer, src: null })).not.toBe('office-only');
    const admin = tokens[5] as string;
    expect(await rule('/api/admin/x', { token: admin })).not.toBe('internal-host');
    expect(await rule('/api/admin/x', { token: admin, host: 'internal.example' })).toBe('internal-host');
    expect(await rule('/api/admin/x', { token: admin })).not.toBe('internal-host');
  });

  it('are forgotten when the policy is reloaded', async () => {
    const clock = { now: NOW_MS };
    const e = engine(clock);
    const viewer = tokens[1] as string;
    const req = () => request('GET', '/api/flows/', { token: viewer });
    expect((await e.decide(req())).allow).toBe(true);
    expect((await e.decide(req())).allow).toBe(true);
    e.reloadPolicy({
      preset: 'none',
      rules: [{ name: 'admins', methods: '*', path: '/**', roles: ['admin'] }],
    });
    const after = await e.decide(req());
    expect(after.allow).toBe(false);
    expect(after.reason).toBe('forbidden');
    e.reloadPolicy(POLICY);
    expect((await e.decide(req())).allow).toBe(true);
  });

  it('never outlive the token: expiry is checked before the memo', async () => {
    const clock = { now: NOW_MS };
    const e = engine(clock);
    const viewer = tokens[1] as string;
    const req = () => request('GET', '/api/flows/', { token: viewer });
    expect((await e.decide(req())).allow).toBe(true);
    expect((await e.decide(req())).cache).toBe('hit');
    clock.now = NOW_MS + 3600_000 + 31_000; // exp + the 30 s default tolerance
    const d = await e.decide(req());
    expect(d.allow).toBe(false);
    expect(d.reason).toBe('expired');
  });

  it('do not cover refused paths, before or after a remembered valid one', async () => {
    const clock = { now: NOW_MS };
    const e = engine(clock);
    const viewer = tokens[1] as string;
    expect((await e.decide(request('GET', '/api/flows/', { token: viewer }))).allow).toBe(true);
    for (let i = 0; i < 3; i++) {
      const d = await e.decide(request('GET', '/api/%2e%2e/flows/', { token: viewer }));
      expect(d.reason).toBe('bad_request');
    }
  });

  it('stay correct past the per-identity limit (the memo starts over)', async () => {
    const clock = { now: NOW_MS };
    const e = engine(clock);
    const viewer = tokens[1] as string;
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 100; i++) {
        const read = await e.decide(request('GET', `/api/flow_runs/${i}`, { token: viewer }));
        const write = await e.decide(request('DELETE', `/api/flow_runs/${i}`, { token: viewer }));
        expect([read.allow, write.allow]).toEqual([true, false]);
      }
    }
  });
});

describe('DecisionMemo', () => {
  const policy = CompiledPolicy.compile(POLICY);
  const base = request('GET', '/api/q');
  const allowed = makeDecision('ok', 'alice', ISS, 'viewer', null, 'r', 'hit', NO_CLAIMS);
  // Pairs of requests that differ in a field some rule reads: b must not get a's decision.
  const distinct: Array<[string, Partial<typeof base>, Partial<typeof base>]> = [
    ['method', { method: 'GET' }, { method: 'HEAD' }],
    ['path', { path: '/a' }, { path: '/b' }],
    ['path vs query boundary', { path: '/a', query: 'bc' }, { path: '/ab', query: 'c' }],
    ['null vs empty query', { query: null }, { query: '' }],
    ['host', { host: 'a.example' }, { host: 'b.example' }],
    ['null vs empty host', { host: null }, { host: '' }],
    ['src', { src: '10.0.0.1' }, { src: '10.0.0.2' }],
    ['X-Prefect-UI', { prefectUi: true }, { prefectUi: false }],
  ];
  it.each(distinct)('separates requests differing in %s', (_name, a, b) => {
    const memo = new DecisionMemo(policy.reads, 32);
    memo.set({ ...base, ...a }, allowed);
    expect(memo.get({ ...base, ...a })).toBe(allowed);
    expect(memo.get({ ...base, ...b })).toBeUndefined();
  });

  it('ignores fields no rule reads', () => {
    const noHosts = CompiledPolicy.compile({
      preset: 'none',
      rules: [{ methods: '*', path: '/**', roles: ['viewer'] }],
    });
    expect(noHosts.reads).toEqual({
      query: false,
      host: false,
      src: false,
      prefectUi: false,
      body: false,
      cert: false,
    });
    const memo = new DecisionMemo(noHosts.reads, 32);
    memo.set({ ...base, host: 'a', id: 'x', query: 'q=1' }, allowed);
    expect(memo.get({ ...base, host: 'b', id: 'y', query: 'q=2' })).toBe(allowed);
  });

  it('keeps several entries per path and starts over when full', () => {
    const memo = new DecisionMemo(policy.reads, 3);
    const other = makeDecision('forbidden', 'alice', ISS, 'viewer', null, null, 'hit', NO_CLAIMS);
    memo.set({ ...base, method: 'GET' }, allowed);
    memo.set({ ...base, method: 'DELETE' }, other);
    expect(memo.get({ ...base, method: 'GET' })).toBe(allowed);
    expect(memo.get({ ...base, method: 'DELETE' })).toBe(other);
    memo.set({ ...base, path: '/x' }, allowed);
    expect(memo.size).toBe(3);
    memo.set({ ...base, path: '/y' }, other);
    expect(memo.size).toBe(1);
    expect(memo.get({ ...base, method: 'GET' })).toBeUndefined();
    expect(memo.get({ ...base, path: '/y' })).toBe(other);
  });
});
