import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AuthzEngine } from '../../src/auth/index.js';
import { TEST_ISS, testEngine } from './helpers/engine.js';
import { makeKey, NOW_MS, sign, type TestKey } from './helpers/keys.js';
import { request } from './helpers/request.js';

const ISS = TEST_ISS;
let key: TestKey;
let engine: AuthzEngine;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  key = await makeKey('ES256', 'kid-1');
  engine = testEngine(
    key,
    () => NOW_MS,
    {
      cache: { negativeTtlSeconds: 0 },
      policy: {
        rules: [
          { name: 'lan-only-admin', effect: 'deny', path: '/api/admin/**', sources: ['203.0.113.0/24'] },
        ],
      },
    },
    { claims: ['groups'], map: { 'prefect-viewers': 'viewer', 'prefect-ops': 'operator' } },
  );
  for (const [name, groups] of Object.entries({
    viewer: ['prefect-viewers'],
    ops: ['prefect-ops'],
    none: [],
  })) {
    tokens[name] = await sign(key, { iss: ISS, aud: 'prefect', sub: name, claims: { groups } });
  }
  tokens.expired = await sign(key, { iss: ISS, aud: 'prefect', exp: -3600 });
});

describe('explain', () => {
  it('traces issuer, key, claims, roles, the rules tried and the decision', async () => {
    const { decision, trace } = await engine.explain(
      request('POST', '/api/deployments/d1/create_flow_run', { token: tokens.viewer }),
    );
    expect(decision).toMatchObject({
      allow: false,
      status: 403,
      reason: 'forbidden',
      role: 'viewer',
      cache: 'miss',
    });
    const text = trace.join('\n');
    expect(text).toContain('request: POST /api/deployments/d1/create_flow_run');
    expect(text).toContain('token: from bearer');
    expect(text).toContain('token header: alg=ES256 kid=kid-1');
    expect(text).toContain(`issuer: ${ISS} -> idp (keys: jwks)`);
    expect(text).toContain('signature: verified (alg ES256, kid kid-1)');
    expect(text).toMatch(/claims: iss, aud in \[prefect\], exp \d+, tolerance 30s: ok/);
    expect(text).toContain('roles from claims [groups]: [viewer]');
    expect(text).toContain('policy roles: held [viewer], effective [viewer]');
    expect(text).toContain(
      'rule prefect.operator.post.deployments.id.create_flow_run [allow POST /api/deployments/:id/create_flow_run; roles any operator]: no match (roles (any))',
    );
    expect(text).toMatch(/\d+ rule\(s\) skipped: method or path differ/);
    expect(text).toContain('no rule matched: default deny');
    expect(trace.at(-1)).toBe('decision: deny 403 forbidden role=viewer rule=- tag=-');
  });

  it('shows the matching rule for an allowed request', async () => {
    const { decision, trace } = await engine.explain(
      request('POST', '/api/deployments/d1/create_flow_run', { token: tokens.ops }),
    );
    expect(decision.allow).toBe(true);
    expect(trace).toContain(
      'rule prefect.operator.post.deployments.id.create_flow_run [allow POST /api/deployments/:id/create_flow_run; roles any operator]: match -> allow',
    );
  });

  it('shows why a custom deny rule matched, with the normalised path', async () => {
    const { decision, trace } = await engine.explain(
      request('GET', '//api/./admin/version', { token: tokens.ops, src: '203.0.113.5' }),
    );
    expect(decision).toMatchObject({ reason: 'forbidden', rule: 'lan-only-admin' });
    expect(trace).toContain('path: /api/admin/version (normalised from //api/./admin/version)');
    expect(trace).toContain(
      'rule lan-only-admin [deny * /api/admin/**; sources 203.0.113.0/24]: match -> deny',
    );
  });

  it('explains verification failures, refused paths and missing tokens', async () => {
    const expired = await engine.explain(request('GET', '/api/flows', { token: tokens.expired }));
    expect(expired.decision.reason).toBe('expired');
    expect(expired.trace.join('\n')).toMatch(
      /verification failed: expired \(ERR_JWT_EXPIRED: "exp" claim timestamp check failed\)/,
    );
    const bad = await engine.explain(request('GET', '/api/%2e%2e/x'));
    expect(bad.decision.reason).toBe('bad_request');
    expect(bad.trace).toContain('path: refused: encoded "." (%2E) in path');
    const anon = await engine.explain(request('GET', '/api/flows'));
    expect(anon.decision.reason).toBe('missing_token');
    expect(anon.trace).toContain('token: none');
  });

  it('lists every rule when verbose', async () => {
    const quiet = await engine.explain(request('GET', '/api/flows'));
    const verbose = await engine.explain(request('GET', '/api/flows'), { verbose: true });
    expect(verbose.decision).toEqual(quiet.decision);
    expect(verbose.trace.length).toBeGreaterThan(quiet.trace.length);
    expect(verbose.trace).toContain(
      'rule lan-only-admin [deny * /api/admin/**; sources 203.0.113.0/24]: no match (needs a token)',
    );
  });

  it('gives the same decision as decide() (cache aside)', async () => {
    const paths = [
      '/api/flows/filter',
      '/api/admin/settings',
      '/api/health',
      '/',
      '/api/events/in',
      '/api/x/../admin/version',
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'DELETE', 'HEAD'),
        fc.constantFrom(...paths),
        fc.constantFrom(null, 'viewer', 'ops', 'none', 'expired'),
        fc.constantFrom('203.0.113.5', '10.0.0.1'),
        fc.constantFrom(null, 'include_secrets=true'),
        async (method, path, who, src, query) => {
          const req = request(method, path, { token: who ? tokens[who] : null, src, query });
          const decided = await engine.decide(req);
          const { decision } = await engine.explain(req);
          expect({ ...decision, cache: null }).toEqual({ ...decided, cache: null });
        },
      ),
      { numRuns: 300 },
    );
  });
});
