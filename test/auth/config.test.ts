import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AuthError, AuthzConfigSchema, AuthzEngine, parseAuthzConfig } from '../../src/auth/index.js';
import { jwks, makeKey } from './helpers/keys.js';

/** The example from the report: one OIDC issuer, one HS256 edge issuer, one custom rule. */
const EXAMPLE = `
tokens:
  bearer: true
  cookie: prefect_token
issuers:
  - id: keycloak
    issuer: https://sso.example.com/realms/ops
    audiences: [prefect]
    algorithms: [RS256, ES256]
    keys: { type: oidc }
    typ: at+jwt
    roles:
      claims: [realm_access.roles, groups]
      map:
        prefect-admins: admin
        prefect-devs: developer
        prefect-viewers: viewer
        ci-runners: [worker, operator]
  - id: edge
    issuer: https://edge.example.com
    audiences: [prefect]
    algorithms: [HS256]
    keys: { type: secret, env: EDGE_JWT_SECRET, encoding: base64 }
    clockToleranceSeconds: 5
    roles: { claims: [roles], passthrough: true }
forwardClaims:
  - { name: email, claim: email }
  - { name: tenant, claim: org.tenant }
jwksCacheDir: /var/lib/spoe-authz
policy:
  preset: prefect
  prefect: { basePath: /api }
  rules:
    - name: k8s-workers-only-from-cluster
      methods: [POST]
      path: /api/work_pools/:pool/get_scheduled_flow_runs
      sources: [10.42.0.0/16]
      roles: [worker]
      claims: { prefect_work_pools: { param: pool } }
      tag: k8s-worker
`;

const errorOf = (fn: () => unknown): AuthError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof AuthError) return err;
    throw err;
  }
  throw new Error('expected an AuthError');
};

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const minimal = (issuer: Record<string, unknown>) => ({
  issuers: [
    {
      id: 'x',
      issuer: 'https://idp.example.com',
      audiences: ['prefect'],
      algorithms: ['RS256'],
      keys: { type: 'oidc' },
      ...issuer,
    },
  ],
});

describe('configuration', () => {
  it('parses the example and builds an engine from it', () => {
    const config = parseAuthzConfig(parse(EXAMPLE));
    expect(config.issuers[0]).toMatchObject({
      clockToleranceSeconds: 30,
      keys: { cooldownSeconds: 30, timeoutMs: 5000 },
    });
    expect(config.tokens).toEqual({ bearer: true, cookie: 'prefect_token', header: null, maxBytes: 8192 });
    expect(config.cache).toEqual({
      maxEntries: 10000,
      maxTtlSeconds: 300,
      negativeTtlSeconds: 10,
      negativeMaxEntries: 10000,
    });
    process.env.EDGE_JWT_SECRET = Buffer.alloc(32, 1).toString('base64');
    try {
      const e = AuthzEngine.create(parse(EXAMPLE));
      expect(e.issuerStatus().map((i) => i.kind)).toEqual(['oidc', 'secret']);
      e.close();
    } finally {
      delete process.env.EDGE_JWT_SECRET;
    }
  });

  it('applies defaults to an empty config (Prefect preset, no issuers)', () => {
    const config = parseAuthzConfig({});
    expect(config.policy).toMatchObject({
      preset: 'prefect',
      prefect: { basePath: '/api', ui: 'anonymous' },
      rules: [],
    });
    expect(config.issuers).toEqual([]);
  });

  it('reports problems with the path to the field (zod paths)', () => {
    const cases: Array<[unknown, string, RegExp]> = [
      [minimal({ algorithms: ['none'] }), 'issuers.0.algorithms.0', /Invalid option/],
      [minimal({ algorithms: [] }), 'issuers.0.algorithms', /at least 1|>=1/],
      [minimal({ algorithms: ['HS256'] }), 'issuers.0.algorithms.0', /shared secret/],
      [minimal({ keys: { type: 'secret', value: 'x'.repeat(40) } }), 'issuers.0.algorithms.0', /public key/],
      [
        minimal({ keys: { type: 'secret', value: 'a', env: 'B' }, algorithms: ['HS256'] }),
        'issuers.0.keys',
        /exactly one/,
      ],
      [minimal({ audiences: [] }), 'issuers.0.audiences', /at least 1|>=1/],
      [minimal({ audience: ['prefect'] }), 'issuers.0', /Unrecognized key/],
      [
        minimal({ keys: { type: 'jwks-url', url: 'ftp://x/jwks' } }),
        'issuers.0.keys.url',
        /unsupported scheme/,
      ],
      [minimal({ id: 'has space' }), 'issuers.0.id', /id/],
      [minimal({ roles: { map: { g: 'Admin' } } }), 'issuers.0.roles.map.g', /lower-case/],
      [
        { ...minimal({}), forwardClaims: [{ name: 'a'.repeat(45), claim: 'x' }] },
        'forwardClaims.0.name',
        /at most 44/,
      ],
      [
        { ...minimal({}), forwardClaims: [{ name: 'E-mail', claim: 'x' }] },
        'forwardClaims.0.name',
        /\[a-z0-9_\]/,
      ],
      [{ tokens: { cookie: 'bad cookie' } }, 'tokens.cookie', /cookie name/],
      [{ policy: { rules: [{ path: 'api' }] } }, 'policy.rules.0.path', /must start with/],
      [{ policy: { rules: [{ path: '/api/**/x' }] } }, 'policy.rules.0.path', /must be the last/],
      [{ policy: { rules: [{ path: '/api/../x' }] } }, 'policy.rules.0.path', /invalid segment/],
      [
        { policy: { rules: [{ path: '/x', roles: ['root'] }] } },
        'policy.rules.0.roles.0',
        /unknown role "root"/,
      ],
      [
        { policy: { rules: [{ path: '/x', roles: { all: ['viewer', 'x'] } }] } },
        'policy.rules.0.roles.all.1',
        /unknown role/,
      ],
      [{ policy: { rules: [{ path: '/x', sources: ['10.0.0.0/33'] }] } }, 'policy.rules.0.sources.0', /CIDR/],
      [{ policy: { rules: [{ path: '/x', methods: ['get'] }] } }, 'policy.rules.0.methods.0', /upper-case/],
      [
        { policy: { rules: [{ path: '/x', anonymous: true, roles: ['viewer'] }] } },
        'policy.rules.0.anonymous',
        /anonymous/,
      ],
      [
        { policy: { rules: [{ path: '/p/:pool', claims: { pools: { param: 'poo' } } }] } },
        'policy.rules.0.claims.pools.param',
        /no parameter "poo"/,
      ],
      [
        {
          policy: {
            rules: [
              { name: 'a', path: '/x' },
              { name: 'a', path: '/y' },
            ],
          },
        },
        'policy.rules.1.name',
        /duplicate/,
      ],
      [{ policy: { roles: { anonymous: {} } } }, 'policy.roles.anonymous', /reserved/],
      [{ policy: { prefect: { basePath: '/api/' } } }, 'policy.prefect.basePath', /trailing slash/],
      [{ issuers: [minimal({}).issuers[0], minimal({}).issuers[0]] }, 'issuers.1.id', /duplicate/],
    ];
    for (const [input, path, message] of cases) {
      const err = errorOf(() => parseAuthzConfig(input));
      expect(err.code).toBe('config_invalid');
      const issue = err.issues.find((i) => i.path === path);
      expect(issue, `${path} in ${JSON.stringify(err.issues)}`).toBeDefined();
      expect(issue?.message).toMatch(message);
    }
  });

  it('exports schemas a product config can embed', () => {
    const result = AuthzConfigSchema.safeParse({ issuers: [{ id: 'x' }] });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path.join('.'))).toContain('issuers.0.issuer');
  });

  it('loads secrets from env or file, and refuses short ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'authz-secret-'));
    dirs.push(dir);
    const file = join(dir, 'secret');
    writeFileSync(file, `${'s'.repeat(48)}\n`);
    const edge = (keys: Record<string, unknown>, algorithms = ['HS256']) =>
      minimal({ issuer: 'https://edge.example.com', algorithms, keys: { type: 'secret', ...keys } });
    expect(() => AuthzEngine.create(edge({ file }, ['HS256', 'HS384']))).not.toThrow();
    expect(errorOf(() => AuthzEngine.create(edge({ file }, ['HS512']))).message).toMatch(
      /HS512 needs a secret of at least 64 bytes/,
    );
    expect(errorOf(() => AuthzEngine.create(edge({ value: 'short' }))).message).toMatch(/at least 32 bytes/);
    expect(errorOf(() => AuthzEngine.create(edge({ env: 'AUTHZ_TEST_UNSET_VAR' }))).message).toMatch(
      /is not set/,
    );
    expect(errorOf(() => AuthzEngine.create(edge({ file: join(dir, 'missing') }))).message).toMatch(
      /cannot read/,
    );
  });

  it('reads a JWKS file once at creation', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'authz-jwks-file-'));
    dirs.push(dir);
    const path = join(dir, 'jwks.json');
    writeFileSync(path, JSON.stringify(jwks(await makeKey('RS256', 'f'))));
    const e = AuthzEngine.create(minimal({ keys: { type: 'jwks-file', path } }));
    expect(e.issuerStatus()[0]).toMatchObject({ kind: 'jwks-file', ready: true, keyCount: 1 });
    writeFileSync(path, '{"nope": 1}');
    expect(errorOf(() => AuthzEngine.create(minimal({ keys: { type: 'jwks-file', path } }))).message).toMatch(
      /not a JWK Set/,
    );
  });
});
