import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { type AuthzEngine, CompiledPolicy, type RuleConfigInput } from '../../../src/auth/index.js';
import { newMatchContext } from '../../../src/auth/policy/rule.js';
import { TEST_ISS, testEngine } from '../helpers/engine.js';
import { makeKey, NOW_MS, sign, type TestKey } from '../helpers/keys.js';
import { type RequestOptions, request } from '../helpers/request.js';

const ISS = TEST_ISS;
let key: TestKey;

beforeAll(async () => {
  key = await makeKey('ES256', 'k');
});

function engine(rules: RuleConfigInput[], roles: Record<string, { implies?: string[] }> = {}): AuthzEngine {
  return testEngine(
    key,
    () => NOW_MS,
    { policy: { preset: 'none', roles, rules } },
    { claims: ['roles'], passthrough: true, map: { 'ops-team': 'operator' } },
  );
}

const token = (claims: Record<string, unknown>) => sign(key, { iss: ISS, aud: 'prefect', claims });

async function run(e: AuthzEngine, method: string, path: string, opts: RequestOptions = {}) {
  const d = await e.decide(request(method, path, opts));
  return d.allow ? (d.rule ?? 'allow') : d.reason;
}

describe('custom rules', () => {
  it('match methods (GET implies HEAD), patterns with named segments, alternation and wildcards', async () => {
    const e = engine([
      { name: 'get', methods: ['GET'], path: '/a/:id', anonymous: true },
      { name: 'alt', methods: ['POST', 'PUT'], path: '/b/(x|y)/*', anonymous: true },
      { name: 'rest', path: '/c/**', anonymous: true },
    ]);
    expect(await run(e, 'GET', '/a/1')).toBe('get');
    expect(await run(e, 'HEAD', '/a/1')).toBe('get');
    expect(await run(e, 'POST', '/a/1')).toBe('missing_token');
    expect(await run(e, 'GET', '/a/1/2')).toBe('missing_token');
    expect(await run(e, 'GET', '/a')).toBe('missing_token');
    expect(await run(e, 'PUT', '/b/y/anything')).toBe('alt');
    expect(await run(e, 'PUT', '/b/z/anything')).toBe('missing_token');
    expect(await run(e, 'DELETE', '/c')).toBe('rest');
    expect(await run(e, 'DELETE', '/c/d/e/f/g')).toBe('rest');
    // Methods are case-sensitive to some servers and not to others: refused.
    expect(await run(e, 'get', '/a/1')).toBe('bad_request');
  });

  it('first match wins, default deny; deny rules carry name and tag', async () => {
    const e = engine([
      { name: 'block', effect: 'deny', path: '/x/secret', tag: 'blocked' },
      { name: 'open', path: '/x/**' },
    ]);
    const t = await token({});
    const d = await e.decide(request('GET', '/x/secret', { token: t }));
    expect(d).toMatchObject({
      allow: false,
      status: 403,
      reason: 'forbidden',
      rule: 'block',
      tag: 'blocked',
    });
    expect(await run(e, 'GET', '/x/public', { token: t })).toBe('open');
    expect(await e.decide(request('GET', '/y', { token: t }))).toMatchObject({
      reason: 'forbidden',
      rule: null,
    });
    expect(await run(e, 'GET', '/y')).toBe('missing_token');
  });

  it('anonymous deny rules answer 403 without a token; token-only deny rules let the 401 through', async () => {
    const e = engine([
      { name: 'ban', effect: 'deny', path: '/**', sources: ['203.0.113.0/24'], anonymous: true },
      { name: 'authed-deny', effect: 'deny', path: '/z' },
    ]);
    expect(await run(e, 'GET', '/z', { src: '203.0.113.9' })).toBe('forbidden');
    expect(await run(e, 'GET', '/z', { src: '198.51.100.1' })).toBe('missing_token');
  });

  it('query conditions: equals, present, truthy', async () => {
    const e = engine([
      { name: 'eq', path: '/q', query: { mode: 'fast' }, anonymous: true },
      { name: 'present', path: '/q', query: { debug: { present: true } }, anonymous: true },
      { name: 'not-secret', path: '/s', query: { include_secrets: { truthy: false } }, anonymous: true },
    ]);
    expect(await run(e, 'GET', '/q', { query: 'mode=fast' })).toBe('eq');
    // A parameter a rule reads, given twice with different values: servers pick differently.
    expect(await run(e, 'GET', '/q', { query: 'mode=slow&mode=fast' })).toBe('bad_request');
    expect(await run(e, 'GET', '/q', { query: 'mode=fast&mode=fast' })).toBe('eq');
    expect(await run(e, 'GET', '/q', { query: 'mode=Fast' })).toBe('missing_token');
    expect(await run(e, 'GET', '/q', { query: 'debug' })).toBe('present');
    expect(await run(e, 'GET', '/q', { query: 'm%6Fde=f%61st' })).toBe('eq');
    expect(await run(e, 'GET', '/s')).toBe('not-secret');
    expect(await run(e, 'GET', '/s', { query: 'include_secrets=false' })).toBe('not-secret');
    expect(await run(e, 'GET', '/s', { query: 'include_secrets=TRUE' })).toBe('missing_token');
  });

  it('hosts: exact or *.suffix, case-insensitive, port ignored', async () => {
    const e = engine([
      { name: 'h', path: '/**', hosts: ['Prefect.Example.com', '*.internal'], anonymous: true },
    ]);
    expect(await run(e, 'GET', '/', { host: 'prefect.example.com:4200' })).toBe('h');
    expect(await run(e, 'GET', '/', { host: 'a.b.internal' })).toBe('h');
    expect(await run(e, 'GET', '/', { host: 'internal' })).toBe('missing_token');
    expect(await run(e, 'GET', '/', { host: 'evil-prefect.example.com' })).toBe('missing_token');
    expect(await run(e, 'GET', '/', { host: null })).toBe('missing_token');
  });

  it('client CIDRs, IPv4 and IPv6, IPv4-mapped IPv6 treated as IPv4', async () => {
    const e = engine([
      { name: 'lan', path: '/**', sources: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'], anonymous: true },
    ]);
    expect(await run(e, 'GET', '/', { src: '10.1.2.3' })).toBe('lan');
    expect(await run(e, 'GET', '/', { src: '::ffff:10.1.2.3' })).toBe('lan');
    expect(await run(e, 'GET', '/', { src: '2001:db8:1::5' })).toBe('lan');
    expect(await run(e, 'GET', '/', { src: '192.0.2.7' })).toBe('lan');
    expect(await run(e, 'GET', '/', { src: '192.0.2.8' })).toBe('missing_token');
    expect(await run(e, 'GET', '/', { src: '11.0.0.1' })).toBe('missing_token');
    expect(await run(e, 'GET', '/', { src: 'garbage' })).toBe('missing_token');
    expect(await run(e, 'GET', '/', { src: null })).toBe('missing_token');
  });

  it('roles any/all, with implied roles and group mapping', async () => {
    const e = engine(
      [
        { name: 'any', path: '/any', roles: ['auditor', 'operator'] },
        { name: 'all', path: '/all', roles: { all: ['viewer', 'auditor'] } },
      ],
      { auditor: { implies: ['viewer'] } },
    );
    const auditor = await token({ roles: ['auditor'] });
    const ops = await token({ roles: ['ops-team'] });
    const admin = await token({ roles: ['admin'] });
    const viewer = await token({ roles: ['viewer'] });
    expect(await run(e, 'GET', '/any', { token: auditor })).toBe('any');
    expect(await run(e, 'GET', '/any', { token: ops })).toBe('any');
    expect(await run(e, 'GET', '/any', { token: admin })).toBe('any');
    expect(await run(e, 'GET', '/any', { token: viewer })).toBe('forbidden');
    expect(await run(e, 'GET', '/all', { token: auditor })).toBe('all');
    expect(await run(e, 'GET', '/all', { token: viewer })).toBe('forbidden');
    expect(await e.decide(request('GET', '/any', { token: ops }))).toMatchObject({ role: 'operator' });
    expect(await e.decide(request('GET', '/any', { token: admin }))).toMatchObject({ role: 'admin' });
  });

  it('scopes and claim values, including a path parameter', async () => {
    const e = engine([
      { name: 'scoped', path: '/s', scopes: ['prefect:read', 'prefect:write'] },
      { name: 'team', path: '/t', claims: { 'org.team': ['data', 'ml'], email_verified: true } },
      {
        name: 'pool',
        methods: ['POST'],
        path: '/api/work_pools/:pool/get_scheduled_flow_runs',
        claims: { pools: { param: 'pool' } },
      },
    ]);
    expect(
      await run(e, 'GET', '/s', { token: await token({ scope: 'openid prefect:write prefect:read' }) }),
    ).toBe('scoped');
    expect(
      await run(e, 'GET', '/s', { token: await token({ scp: ['prefect:read', 'prefect:write'] }) }),
    ).toBe('scoped');
    expect(await run(e, 'GET', '/s', { token: await token({ scope: 'prefect:read' }) })).toBe('forbidden');
    const ml = await token({ org: { team: 'ml' }, email_verified: true });
    expect(await run(e, 'GET', '/t', { token: ml })).toBe('team');
    expect(
      await run(e, 'GET', '/t', { token: await token({ org: { team: 'ml' }, email_verified: 'true' }) }),
    ).toBe('forbidden');
    const worker = await token({ pools: ['k8s-prod', 'gpu pool'] });
    expect(await run(e, 'POST', '/api/work_pools/k8s-prod/get_scheduled_flow_runs', { token: worker })).toBe(
      'pool',
    );
    expect(
      await run(e, 'POST', '/api/work_pools/gpu%20pool/get_scheduled_flow_runs', { token: worker }),
    ).toBe('pool');
    expect(await run(e, 'POST', '/api/work_pools/k8s-dev/get_scheduled_flow_runs', { token: worker })).toBe(
      'forbidden',
    );
  });

  it('X-Prefect-UI condition', async () => {
    const e = engine([{ name: 'ui', path: '/u', prefectUi: true, anonymous: true }]);
    expect(await run(e, 'GET', '/u', { prefectUi: true })).toBe('ui');
    expect(await run(e, 'GET', '/u')).toBe('missing_token');
  });

  it('a present but invalid token is refused even on an anonymous route', async () => {
    const e = engine([{ name: 'health', path: '/health', anonymous: true }]);
    const expired = await sign(key, { iss: ISS, aud: 'prefect', exp: -3600 });
    expect(await run(e, 'GET', '/health')).toBe('health');
    expect(await run(e, 'GET', '/health', { token: expired })).toBe('expired');
    expect(
      await e.decide(request('GET', '/health', { token: await token({ roles: ['viewer'] }) })),
    ).toMatchObject({
      allow: true,
      role: 'viewer',
      sub: 'alice',
    });
  });
});

describe('rule index', () => {
  const segs = [
    'api',
    'flows',
    'flow_runs',
    'filter',
    'admin',
    'settings',
    'x',
    'work_pools',
    'events',
    'in',
    'ui',
  ];
  const methods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'BREW'];

  it('gives the same first match as trying every rule in order', () => {
    const policy = CompiledPolicy.compile({
      rules: [
        { path: '/api/:a/filter', roles: ['viewer'] },
        { methods: ['BREW'], path: '/**', anonymous: true },
        { path: '/*/x/**', effect: 'deny' },
        { methods: ['GET'], path: '/', anonymous: true },
      ],
    });
    const masks = [0, 1, 2, 4, 8, 16, 31];
    fc.assert(
      fc.property(
        fc.constantFrom(...methods),
        fc.array(fc.constantFrom(...segs), { maxLength: 6 }),
        fc.constantFrom(...masks),
        fc.boolean(),
        fc.constantFrom(null, 'include_secrets=1', 'a=b'),
        (method, path, mask, withToken, query) => {
          const ctx = () =>
            newMatchContext(
              method,
              path,
              query,
              null,
              null,
              false,
              withToken ? { claims: { scope: 'a b' } } : null,
              mask,
            );
          const indexed = policy.match(ctx());
          const linear = policy.matchTraced(ctx(), []);
          expect(indexed?.name ?? null).toBe(linear?.name ?? null);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
