/** Config loading: sources, precedence, env overrides, and errors that name the wrong field. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { parseListenAddress } from '../../src/config/listen-address.js';
import { DEV_DEFAULT_SOURCE, loadConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'authz-config-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => i.path);
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const OIDC_YAML = `
listen: 0.0.0.0:12345
audit: all
issuers:
  - id: okta
    issuer: https://example.okta.com/oauth2/default
    audiences: [api://prefect]
    algorithms: [RS256]
    keys: { type: oidc }
    roles: { claims: [groups], map: { prefect-viewers: viewer } }
policy:
  rules:
    - name: block-admin-from-outside
      effect: deny
      path: /api/admin/**
      sources: [203.0.113.0/24]
`;

describe('loadConfig', () => {
  it('with nothing configured, runs the development default on 127.0.0.1:12345', () => {
    const c = loadConfig({ env: {} });
    expect(c.source).toBe(DEV_DEFAULT_SOURCE);
    expect(c.dev).toBe(true);
    expect(c.settings.listen).toBe('127.0.0.1:12345');
    expect(c.settings.metrics.listen).toBe('127.0.0.1:9464');
    expect(c.authz.issuers?.map((i) => i.id)).toEqual(['dev']);
  });

  it('reads YAML with defaults applied, and the dev issuer stays off', () => {
    const c = loadConfig({ path: file('ok.yaml', OIDC_YAML), env: {} });
    expect(c.dev).toBe(false);
    expect(c.settings).toMatchObject({ listen: '0.0.0.0:12345', audit: 'all', log: { level: 'info' } });
    expect(c.settings.spop).toEqual({
      maxFrameSize: 16380,
      maxConnections: 1024,
      limitPolicy: 'evict-idle',
      idleTimeoutMs: 60000,
      helloTimeoutMs: 5000,
      frameTimeoutMs: 5000,
      handlerTimeoutMs: 1000,
      socketMode: null,
    });
    expect(c.authz.issuers?.map((i) => i.id)).toEqual(['okta']);
  });

  it('reads JSON by extension', () => {
    const c = loadConfig({
      path: file('ok.json', JSON.stringify({ devIssuer: true, audit: 'off' })),
      env: {},
    });
    expect(c.dev).toBe(true);
    expect(c.settings.audit).toBe('off');
  });

  it('lets the environment override the file, and CLI overrides win over both', () => {
    const c = loadConfig({
      path: file('env.yaml', OIDC_YAML),
      env: { AUTHZ_LISTEN: '127.0.0.1:2000', AUTHZ_AUDIT: 'deny', AUTHZ_HANDLER_TIMEOUT_MS: '250' },
      overrides: { listen: '127.0.0.1:3000' },
    });
    expect(c.settings.listen).toBe('127.0.0.1:3000');
    expect(c.settings.audit).toBe('deny');
    expect(c.settings.spop.handlerTimeoutMs).toBe(250);
  });

  it('takes the connection deadlines and limit policy from the file or the environment', () => {
    const yaml =
      'devIssuer: true\nspop: { helloTimeoutMs: 2000, frameTimeoutMs: 3000, limitPolicy: refuse }\n';
    expect(loadConfig({ path: file('slots.yaml', yaml), env: {} }).settings.spop).toMatchObject({
      helloTimeoutMs: 2000,
      frameTimeoutMs: 3000,
      limitPolicy: 'refuse',
    });
    const env = {
      AUTHZ_HELLO_TIMEOUT_MS: '100',
      AUTHZ_FRAME_TIMEOUT_MS: '200',
      AUTHZ_LIMIT_POLICY: 'evict-handshaking',
    };
    expect(loadConfig({ path: file('slots.yaml', yaml), env }).settings.spop).toMatchObject({
      helloTimeoutMs: 100,
      frameTimeoutMs: 200,
      limitPolicy: 'evict-handshaking',
    });
    expect(issuesOf(() => loadConfig({ env: { AUTHZ_LIMIT_POLICY: 'lru' } }))).toEqual(['spop.limitPolicy']);
    expect(issuesOf(() => loadConfig({ env: { AUTHZ_FRAME_TIMEOUT_MS: '0' } }))).toEqual([
      'spop.frameTimeoutMs',
    ]);
  });

  it('takes the socket mode from the file or AUTHZ_SOCKET_MODE', () => {
    const yaml = 'devIssuer: true\nlisten: unix:/run/spoe-authz/agent.sock\nspop: { socketMode: "0660" }\n';
    expect(loadConfig({ path: file('sock.yaml', yaml), env: {} }).settings.spop.socketMode).toBe('0660');
    const env = { AUTHZ_SOCKET_MODE: '666' };
    expect(loadConfig({ path: file('sock.yaml', yaml), env }).settings.spop.socketMode).toBe('666');
  });

  it('configures a single OIDC issuer from the environment alone', () => {
    const c = loadConfig({
      env: {
        AUTHZ_ISSUER: 'https://sso.example.com/realms/prefect',
        AUTHZ_AUDIENCE: 'prefect, prefect-ui',
        AUTHZ_ROLE_CLAIMS: 'realm_access.roles',
        AUTHZ_ROLE_MAP: 'prefect-admins=admin,prefect-ops=operator',
        AUTHZ_TOKEN_COOKIE: 'prefect_token',
        STATE_DIRECTORY: '/var/lib/spoe-authz',
      },
    });
    expect(c.source).toBe('environment');
    expect(c.dev).toBe(false);
    expect(c.authz.jwksCacheDir).toBe('/var/lib/spoe-authz');
    expect(c.authz.tokens).toEqual({ cookie: 'prefect_token' });
    expect(c.authz.issuers).toEqual([
      {
        id: 'env',
        issuer: 'https://sso.example.com/realms/prefect',
        audiences: ['prefect', 'prefect-ui'],
        algorithms: ['RS256'],
        keys: { type: 'oidc', allowInsecureHttp: false },
        roles: {
          claims: ['realm_access.roles'],
          map: { 'prefect-admins': 'admin', 'prefect-ops': 'operator' },
        },
      },
    ]);
  });

  it('configures an HS256 edge issuer from the environment', () => {
    const c = loadConfig({
      env: {
        AUTHZ_ISSUER: 'https://edge.example.com',
        AUTHZ_AUDIENCE: 'prefect',
        AUTHZ_HS_SECRET: 'x'.repeat(32),
      },
    });
    expect(c.authz.issuers?.[0]).toMatchObject({
      algorithms: ['HS256'],
      keys: { type: 'secret', env: 'AUTHZ_HS_SECRET' },
    });
  });

  it.each([
    [
      'a bad algorithm',
      'issuers:\n  - {id: a, issuer: "https://a.example", audiences: [x], algorithms: [none], keys: {type: oidc}}\n',
      ['issuers.0.algorithms.0'],
    ],
    [
      'plain http JWKS off loopback',
      'issuers:\n  - {id: a, issuer: "https://a.example", audiences: [x], algorithms: [RS256], keys: {type: jwks-url, url: "http://idp.example/jwks"}}\n',
      ['issuers.0.keys.url'],
    ],
    ['a bad listen address', 'listen: "localhost:99999"\n', ['listen']],
    ['an unknown top-level key', 'lisen: 1\n', ['']],
    ['a bad audit mode', 'audit: sometimes\n', ['audit']],
    ['a bad spop setting', 'spop: { maxFrameSize: 100 }\n', ['spop.maxFrameSize']],
    ['a socket mode that is not octal', 'spop: { socketMode: "rw-rw----" }\n', ['spop.socketMode']],
    ['a socket mode given as a number', 'spop: { socketMode: 660 }\n', ['spop.socketMode']],
    [
      'a rule with an unknown role',
      'policy: { rules: [ { path: /api/**, roles: [superuser] } ] }\n',
      ['policy.rules.0.roles.0'],
    ],
  ])('rejects %s with the field path', (_what, yaml, paths) => {
    expect(issuesOf(() => loadConfig({ path: file('bad.yaml', yaml), env: {} }))).toEqual(paths);
  });

  it('names the environment variable when an override is malformed', () => {
    expect(issuesOf(() => loadConfig({ env: { AUTHZ_HANDLER_TIMEOUT_MS: 'soon' } }))).toEqual([
      'env.AUTHZ_HANDLER_TIMEOUT_MS',
    ]);
    expect(issuesOf(() => loadConfig({ env: { AUTHZ_ISSUER: 'https://x.example' } }))).toEqual([
      'env.AUTHZ_AUDIENCE',
    ]);
  });

  it('reports unreadable and unparsable files at the root', () => {
    expect(issuesOf(() => loadConfig({ path: join(dir, 'missing.yaml'), env: {} }))).toEqual(['']);
    expect(issuesOf(() => loadConfig({ path: file('broken.yaml', 'a: [1,\n'), env: {} }))).toEqual(['']);
    expect(issuesOf(() => loadConfig({ path: file('list.yaml', '- 1\n'), env: {} }))).toEqual(['']);
  });
});

describe('parseListenAddress', () => {
  it.each([
    ['127.0.0.1:12345', { kind: 'tcp', host: '127.0.0.1', port: 12345 }],
    ['[::1]:12345', { kind: 'tcp', host: '::1', port: 12345 }],
    [':12345', { kind: 'tcp', host: '0.0.0.0', port: 12345 }],
    ['12345', { kind: 'tcp', host: '127.0.0.1', port: 12345 }],
    ['unix:/run/spoe-authz.sock', { kind: 'unix', path: '/run/spoe-authz.sock' }],
  ])('parses %s', (input, expected) => {
    expect(parseListenAddress(input)).toEqual(expected);
  });

  it.each(['::1:12345', 'host:port', 'unix:relative.sock', '1.2.3.4:70000'])('rejects %s', (input) => {
    expect(typeof parseListenAddress(input)).toBe('string');
  });
});
