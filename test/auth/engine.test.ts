import { beforeAll, describe, expect, it } from 'vitest';
import { AuthError, type AuthzConfigInput, AuthzEngine, REASONS } from '../../src/auth/index.js';
import { TEST_ISS, testEngine } from './helpers/engine.js';
import { makeKey, NOW_MS, sign, type TestKey } from './helpers/keys.js';
import { request } from './helpers/request.js';

const ISS = TEST_ISS;
let key: TestKey;

beforeAll(async () => {
  key = await makeKey('ES256', 'k');
});

const engine = (extra: Omit<AuthzConfigInput, 'issuers'> = {}) => testEngine(key, () => NOW_MS, extra);

const token = (claims: Record<string, unknown> = {}, sub = 'alice') =>
  sign(key, { iss: ISS, aud: 'prefect', sub, claims: { roles: ['viewer'], ...claims } });

const CONTRACT_KEYS = ['allow', 'status', 'reason', 'sub', 'iss', 'role', 'tag', 'rule', 'cache', 'claims'];

describe('AuthzEngine contract', () => {
  it('every decision has exactly the contract fields, whatever the path through the engine', async () => {
    const e = engine();
    const t = await token();
    const decisions = [
      await e.decide(request('GET', '/api/health')),
      await e.decide(request('GET', '/api/flows')),
      await e.decide(request('GET', '/api/%2F')),
      await e.decide(request('GET', '/api/flows', { token: 'x'.repeat(9000) })),
      await e.decide(request('GET', '/api/flows', { token: 'abcd.efgh.ijkl' })),
      await e.decide(request('GET', '/api/flows/1', { token: t })),
      await e.decide(request('GET', '/api/flows/1', { token: t })),
      await e.decide(request('DELETE', '/api/flows/1', { token: t })),
    ];
    for (const d of decisions) {
      expect(Object.keys(d)).toEqual(CONTRACT_KEYS);
      expect([200, 401, 403, 503]).toContain(d.status);
      expect(REASONS).toContain(d.reason);
      expect(d.allow).toBe(d.reason === 'ok');
    }
    expect(decisions.map((d) => [d.reason, d.status, d.cache])).toEqual([
      ['ok', 200, null],
      ['missing_token', 401, null],
      ['bad_request', 403, null],
      ['malformed_token', 401, null],
      ['malformed_token', 401, 'miss'],
      ['ok', 200, 'miss'],
      ['ok', 200, 'hit'],
      ['forbidden', 403, 'hit'],
    ]);
  });

  it('answers synchronously when no signature must be checked', async () => {
    const e = engine();
    expect(e.decide(request('GET', '/api/health'))).not.toBeInstanceOf(Promise);
    expect(e.decide(request('GET', '/api/flows'))).not.toBeInstanceOf(Promise);
    expect(e.decide(request('GET', '/api\\x'))).not.toBeInstanceOf(Promise);
    expect(e.decide(request('GET', '/api/flows', { token: await token() }))).toBeInstanceOf(Promise);
  });

  it('forwards configured claims: scalars only, bounded, no control characters', async () => {
    const e = engine({
      forwardClaims: [
        { name: 'email', claim: 'email' },
        { name: 'tenant', claim: 'org.tenant' },
        { name: 'level', claim: 'level' },
        { name: 'verified', claim: 'email_verified' },
        { name: 'groups', claim: 'groups' },
        { name: 'nick', claim: 'nick', maxLength: 5 },
        { name: 'bio', claim: 'bio' },
        { name: 'ns', claim: 'https://example.com/team' },
        { name: 'absent', claim: 'nope' },
      ],
    });
    const t = await token({
      email: 'alice@example.com',
      org: { tenant: 'acme' },
      level: 3,
      email_verified: true,
      groups: ['a', 'b'],
      nick: 'alice-the-great',
      bio: 'line\nbreak',
      'https://example.com/team': 'data',
    });
    const d = await e.decide(request('GET', '/api/flows/1', { token: t }));
    expect(d.claims).toEqual([
      ['email', 'alice@example.com'],
      ['tenant', 'acme'],
      ['level', 3],
      ['verified', true],
      ['ns', 'data'],
    ]);
    const denied = await e.decide(request('DELETE', '/api/flows/1', { token: t }));
    expect(denied.claims).toEqual(d.claims);
  });

  it('reports the highest role held when denied, and the granting role when allowed', async () => {
    const e = engine();
    const t = await token({ roles: ['viewer', 'worker'] });
    expect(
      await e.decide(request('POST', '/api/work_pools/p/get_scheduled_flow_runs', { token: t })),
    ).toMatchObject({
      allow: true,
      role: 'worker',
    });
    expect(await e.decide(request('POST', '/api/flows/filter', { token: t }))).toMatchObject({
      allow: true,
      role: 'viewer',
    });
    expect(await e.decide(request('DELETE', '/api/flows/1', { token: t }))).toMatchObject({
      allow: false,
      role: 'worker',
    });
    const none = await token({ roles: [] });
    expect(await e.decide(request('DELETE', '/api/flows/1', { token: none }))).toMatchObject({ role: null });
  });

  it('reloads the policy atomically; cached identities follow the new policy', async () => {
    const e = engine();
    const t = await token();
    expect(await e.decide(request('GET', '/api/flows/1', { token: t }))).toMatchObject({ allow: true });
    e.reloadPolicy({ rules: [{ name: 'freeze', effect: 'deny', path: '/api/**', tag: 'maintenance' }] });
    expect(await e.decide(request('GET', '/api/flows/1', { token: t }))).toMatchObject({
      allow: false,
      rule: 'freeze',
      tag: 'maintenance',
      cache: 'hit',
    });
    e.reloadPolicy({
      roles: { auditor: { implies: ['viewer'] } },
      rules: [{ name: 'aud', path: '/audit', roles: ['auditor'] }],
    });
    const auditor = await token({ roles: ['auditor'] });
    expect(await e.decide(request('GET', '/audit', { token: auditor }))).toMatchObject({
      allow: true,
      role: 'auditor',
    });
    expect(await e.decide(request('GET', '/api/flows/1', { token: auditor }))).toMatchObject({ allow: true });
    expect(e.stats().policyGeneration).toBeGreaterThan(1);
  });

  it('keeps the old policy when the new one is invalid', async () => {
    const e = engine();
    const before = e.stats().policyGeneration;
    expect(() => e.reloadPolicy({ rules: [{ path: 'no-slash' }] })).toThrow(AuthError);
    expect(() => e.reloadPolicy({ rules: [{ path: '/x', roles: ['nobody'] }] })).toThrow(
      /policy.*rules\.0\.roles\.0/,
    );
    expect(e.stats().policyGeneration).toBe(before);
    expect(await e.decide(request('GET', '/api/health'))).toMatchObject({ allow: true });
  });

  it('refuses a policy reload that strands an issuer role mapping', () => {
    const e = testEngine(
      key,
      () => NOW_MS,
      { policy: { roles: { auditor: {} } } },
      { map: { auditors: 'auditor' } },
    );
    expect(() => e.reloadPolicy({})).toThrow(/issuers\.0\.roles\.map\.auditors: unknown role "auditor"/);
  });

  it('counts decisions by reason and cache outcome', async () => {
    const e = engine();
    const t = await token();
    await e.decide(request('GET', '/api/health'));
    await e.decide(request('GET', '/api/flows'));
    await e.decide(request('GET', '/api/flows/1', { token: t }));
    await e.decide(request('GET', '/api/flows/1', { token: t }));
    await e.decide(request('DELETE', '/api/flows/1', { token: t }));
    const s = e.stats();
    expect(s.decisions).toMatchObject({ ok: 3, missing_token: 1, forbidden: 1, expired: 0 });
    expect(s).toMatchObject({ allowed: 3, denied: 2, verifications: 1, cache: { hits: 2, misses: 1 } });
    expect(s.issuers).toEqual([expect.objectContaining({ id: 'idp', iss: ISS, kind: 'jwks', ready: true })]);
  });

  it('is ready without issuers, and refuses to work after close', async () => {
    const empty = AuthzEngine.create({});
    expect(empty.ready()).toBe(true);
    await empty.start();
    empty.close();
    empty.close();
    expect(() => empty.decide(request('GET', '/'))).toThrow(expect.objectContaining({ code: 'closed' }));
    await expect(AuthzEngine.create({}).start()).resolves.toBeUndefined();
  });
});
