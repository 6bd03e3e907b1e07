/**
 * What the token cache keeps per token is small (BENCHMARKS.md, memory): the claims set is
 * decoded again from the cached token when a rule reads it, identically for both verifiers;
 * strings that repeat across tokens are shared; remembered decisions still answer as fresh ones.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { AuthzEngine, AuthzRequest } from '../../src/auth/index.js';
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
