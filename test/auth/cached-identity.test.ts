/**
 * What the token cache keeps per token is small (BENCHMARKS.md, memory): of the claims set only
 * the claims the policy reads, identically for both verifiers; a policy that reads more makes
 * cached tokens verified again; remembered decisions still answer as fresh ones.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Identity } from '../../src/auth/identity.js';
import type { AuthzEngine, AuthzRequest } from '../../src/auth/index.js';
import { CompiledPolicy } from '../../src/auth/policy/compiled-policy.js';
import type { PolicyConfigInput } from '../../src/auth/policy/policy-config.js';
import { TEST_ISS as ISS, testEngine } from './helpers/engine.js';
import { makeKey, NOW_MS, sign, type TestKey } from './helpers/keys.js';
import { request } from './helpers/request.js';

let key: TestKey;

beforeAll(async () => {
  key = await makeKey('ES256', 'k1');
});

function engineWith(verifier: 'fast' | 'jose'): AuthzEngine {
  return testEngine(key, () => NOW_MS, {
    verifier,
    policy: {
      preset: 'none',
      rules: [
        {
          name: 'team-a',
          methods: ['GET'],
          path: '/api/teams/:team/**',
          claims: { team: { param: 'team' } },
        },
        { name: 'scoped', methods: ['GET'], path: '/api/reports/**', scopes: ['reports:read'] },
        { name: 'viewers', methods: ['GET'], path: '/api/flows/**', roles: ['viewer'] },
      ],
    },
  });
}

/** Like a NOTIFY's args: every string is a slice of one larger text. */
function sliced(method: string, path: string, token: string): AuthzRequest {
  const text = `${'#'.repeat(64)}${method}${path}Bearer ${token}${'#'.repeat(64)}`;
  const m = text.indexOf(method);
  const p = m + method.length;
  const a = p + path.length;
  return {
    ...request(method, path),
    method: text.slice(m, p),
    path: text.slice(p, a),
    authorization: text.slice(a, a + 7 + token.length),
  };
}

describe.each(['fast', 'jose'] as const)('cached identities (verifier: %s)', (verifier) => {
  it('rules that read claims and scopes decide the same on the miss and on every hit', async () => {
    const engine = engineWith(verifier);
    const token = await sign(key, {
      iss: ISS,
      aud: 'prefect',
      claims: { team: 'blue', scope: 'openid reports:read', roles: ['viewer'], nested: { a: [1, 2] } },
    });
    for (const round of ['miss', 'hit', 'hit'] as const) {
      const team = await engine.decide(sliced('GET', '/api/teams/blue/flows', token));
      expect([team.allow, team.rule, team.cache]).toEqual([true, 'team-a', round]);
      const other = await engine.decide(sliced('GET', '/api/teams/red/flows', token));
      expect([other.allow, other.reason, other.cache]).toEqual([false, 'forbidden', 'hit']);
      const report = await engine.decide(sliced('GET', '/api/reports/weekly', token));
      expect([report.allow, report.rule]).toEqual([true, 'scoped']);
      const flows = await engine.decide(sliced('GET', '/api/flows/abc', token));
      expect([flows.allow, flows.role, flows.sub]).toEqual([true, 'viewer', 'alice']);
    }
  });

  it('a token whose scope is missing stays denied on hits', async () => {
    const engine = engineWith(verifier);
    const token = await sign(key, { iss: ISS, aud: 'prefect', claims: { scope: 'openid', roles: [] } });
    for (const cache of ['miss', 'hit']) {
      const d = await engine.decide(sliced('GET', '/api/reports/weekly', token));
      expect([d.allow, d.reason, d.cache]).toEqual([false, 'forbidden', cache]);
    }
  });

  it('explain shows the decoded claims of a cached token as verified', async () => {
    const engine = engineWith(verifier);
    const token = await sign(key, { iss: ISS, aud: 'prefect', claims: { team: 'blue', roles: ['viewer'] } });
    await engine.decide(sliced('GET', '/api/teams/blue/x', token));
    const explained = await engine.explain(request('GET', '/api/teams/blue/x', { token }));
    expect(explained.decision.allow).toBe(true);
    expect(explained.decision.rule).toBe('team-a');
  });
});

describe('claims a cached identity keeps', () => {
  const policyReading = (rules: PolicyConfigInput['rules']) =>
    CompiledPolicy.compile({ preset: 'none', rules }).claimsRead;

  it.each([
    ['no claim or scope condition', [{ name: 'r', path: '/a', roles: ['viewer'] }], []],
    ['a scope condition', [{ name: 'r', path: '/a', scopes: ['x'] }], ['scope', 'scp']],
    ['a claim', [{ name: 'r', path: '/a', claims: { team: 'blue' } }], ['team']],
    [
      'a dotted claim: the name as it is and its first part',
      [{ name: 'r', path: '/a', claims: { 'realm_access.roles': 'x' } }],
      ['realm_access', 'realm_access.roles'],
    ],
    [
      'several rules, sorted, once each',
      [
        { name: 'r1', path: '/a', claims: { team: 'blue' }, scopes: ['x'] },
        { name: 'r2', path: '/b/:team', claims: { team: { param: 'team' } } },
      ],
      ['scope', 'scp', 'team'],
    ],
  ])('a policy with %s reads %j', (_, rules, names) => {
    expect(policyReading(rules)).toEqual(names);
  });

  const identity = (claims: Record<string, unknown>) =>
    new Identity(
      {
        issuerId: 'i',
        iss: ISS,
        sub: 'alice',
        kid: null,
        alg: 'ES256',
        expiresAtMs: NOW_MS + 60_000,
        notBeforeMs: Number.NEGATIVE_INFINITY,
        roles: [],
        forwarded: [],
        certThumbprint: null,
      },
      claims,
    );

  it('keepOnly keeps the named claims, present or not, and nothing else', () => {
    const id = identity({ team: 'blue', scope: 'a b', email: 'a@example.com', big: 'x'.repeat(1000) });
    const names = Object.freeze(['scope', 'scp', 'team']);
    id.keepOnly(names);
    expect({ ...id.claims }).toEqual({ team: 'blue', scope: 'a b' });
    expect(id.holdsClaims(names)).toBe(true);
    expect(id.holdsClaims(['team'])).toBe(true);
    expect(id.holdsClaims([])).toBe(true);
    expect(id.holdsClaims(['email'])).toBe(false);
    expect(id.holdsClaims(['team', 'groups'])).toBe(false);
  });

  it('keeps nothing for a policy that reads no claims, and a claim named __proto__ stays data', () => {
    const none = identity({ team: 'blue' });
    none.keepOnly([]);
    expect(Object.keys(none.claims)).toEqual([]);
    const proto = identity(JSON.parse('{"__proto__": {"polluted": true}, "team": "x"}'));
    proto.keepOnly(['__proto__']);
    expect(Object.hasOwn(proto.claims, '__proto__')).toBe(true);
    expect((proto.claims as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('an identity not from the token cache holds every claim', () => {
    const id = identity({ team: 'blue', email: 'a@example.com' });
    expect(id.holdsClaims(['email', 'team', 'anything'])).toBe(true);
  });

  describe.each(['fast', 'jose'] as const)('through the engine (verifier: %s)', (verifier) => {
    it('a reload that reads more claims verifies cached tokens again; one that reads fewer does not', async () => {
      const engine = testEngine(key, () => NOW_MS, {
        verifier,
        policy: {
          preset: 'none',
          rules: [{ name: 'viewers', methods: ['GET'], path: '/api/teams/**', roles: ['viewer'] }],
        },
      });
      const token = await sign(key, {
        iss: ISS,
        aud: 'prefect',
        claims: { team: 'blue', roles: ['viewer'] },
      });
      const get = (path: string) => engine.decide(sliced('GET', path, token));
      expect((await get('/api/teams/blue/x')).cache).toBe('miss');
      expect((await get('/api/teams/blue/x')).cache).toBe('hit');
      const byTeam = {
        preset: 'none' as const,
        rules: [
          {
            name: 'team',
            methods: ['GET'],
            path: '/api/teams/:team/**',
            claims: { team: { param: 'team' } },
          },
        ],
      };
      engine.reloadPolicy(byTeam);
      const again = await get('/api/teams/blue/x');
      expect([again.allow, again.rule, again.cache]).toEqual([true, 'team', 'miss']);
      expect(engine.stats().verifications).toBe(2);
      for (const [path, allow] of [
        ['/api/teams/blue/x', true],
        ['/api/teams/red/x', false],
      ] as const) {
        const d = await get(path);
        expect([d.allow, d.cache]).toEqual([allow, 'hit']);
      }
      engine.reloadPolicy({
        preset: 'none',
        rules: [{ name: 'viewers', methods: ['GET'], path: '/api/teams/**', roles: ['viewer'] }],
      });
      expect((await get('/api/teams/red/x')).cache).toBe('hit');
      engine.reloadPolicy(byTeam);
      const d = await get('/api/teams/red/x');
      expect([d.allow, d.cache]).toEqual([false, 'hit']);
      expect(engine.stats().verifications).toBe(2);
    });
  });
});
