/** Config loading: sources, precedence, env overrides, and errors that name the wrong field. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEV_PUBLIC_JWKS } from '../../src/auth/index.js';
import { ConfigError } from '../../src/config/errors.js';
import { parseListenAddress } from '../../src/config/listen-address.js';
import {
  checkEngine,
  createEngine,
  DEV_DEFAULT_SOURCE,
  loadConfig,
  NOTHING_CONFIGURED,
  parseAgentConfig,
  startEngine,
} from '../../src/config/load.js';
import { AgentError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'authz-config-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
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

describe('vars: which vars the agent answers', () => {
  const ALL = ['allow', 'status', 'reason', 'sub', 'iss', 'role', 'tag', 'rule', 'cache', 'path', 'claims'];

  it('defaults to every var, as without the setting', () => {
    expect(
      loadConfig({ path: file('vars-default.yaml', 'devIssuer: true\n'), env: {} }).settings.vars,
    ).toEqual(ALL);
  });

  it('takes a list from the file, or AUTHZ_VARS (comma-separated) over it', () => {
    const f = file('vars.yaml', 'devIssuer: true\nvars: [allow, status, reason, claims]\n');
    expect(loadConfig({ path: f, env: {} }).settings.vars).toEqual(['allow', 'status', 'reason', 'claims']);
    expect(loadConfig({ path: f, env: { AUTHZ_VARS: ' status , allow ' } }).settings.vars).toEqual([
      'status',
      'allow',
    ]);
    expect(
      loadConfig({ env: { AUTHZ_DEV_ISSUER: 'true', AUTHZ_VARS: 'allow,status,sub' } }).settings.vars,
    ).toEqual(['allow', 'status', 'sub']);
  });

  it.each([
    ['without allow', 'vars: [status, reason]', ['vars'], /must include allow and status \(missing allow\)/],
    ['without status', 'vars: [allow]', ['vars'], /missing status/],
    ['empty', 'vars: []', ['vars'], /missing allow, status/],
    ['with an unknown name', 'vars: [allow, status, ptime]', ['vars.2'], /allow/],
    ['not a list', 'vars: allow', ['vars'], /array/],
  ])('refuses a list %s, naming the field', (_what, yaml, paths, message) => {
    const err = errorOf(() =>
      loadConfig({ path: file('bad-vars.yaml', `devIssuer: true\n${yaml}\n`), env: {} }),
    );
    expect(err.issues.map((i) => i.path)).toEqual(paths);
    expect(err.message).toMatch(message);
  });

  it('refuses AUTHZ_VARS without allow and status the same way', () => {
    expect(issuesOf(() => loadConfig({ env: { AUTHZ_DEV_ISSUER: 'true', AUTHZ_VARS: 'reason' } }))).toEqual([
      'vars',
    ]);
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

  it('folds a YAML syntax error into one line: what is wrong, and where', () => {
    const err = errorOf(() => loadConfig({ path: file('dup.yaml', 'audit: all\naudit: deny\n'), env: {} }));
    expect(err.issues).toEqual([
      { path: '', message: 'not valid YAML: Map keys must be unique (line 2, column 1)' },
    ]);
    const indent = errorOf(() =>
      loadConfig({ path: file('indent.yaml', 'issuers:\n  - id: a\n   issuer: x\n'), env: {} }),
    );
    expect(indent.issues[0]?.message).toMatch(/^not valid YAML: [^\n]+ \(line \d+, column \d+\)$/);
    const json = errorOf(() => loadConfig({ path: file('bad.json', '{"audit": }'), env: {} }));
    expect(json.issues[0]?.message).toMatch(/^not valid JSON: [^\n]+$/);
  });

  it('is an AgentError with the stable code config_invalid', () => {
    const err = errorOf(() => loadConfig({ env: { AUTHZ_LOG_LEVEL: 'loud' } }));
    expect(err).toBeInstanceOf(AgentError);
    expect(err.code).toBe('config_invalid');
    expect(err.name).toBe('ConfigError');
  });
});

describe('the development issuer, a default only where nobody else can connect', () => {
  it.each([
    ['the default address', {}],
    ['127.0.0.2', { AUTHZ_LISTEN: '127.0.0.2:12345' }],
    ['[::1]', { AUTHZ_LISTEN: '[::1]:12345' }],
    ['localhost', { AUTHZ_LISTEN: 'localhost:12345' }],
    ['a unix socket', { AUTHZ_LISTEN: 'unix:/run/spoe-authz/agent.sock' }],
  ])('with nothing configured, on %s', (_, env) => {
    const c = loadConfig({ env });
    expect(c).toMatchObject({ source: DEV_DEFAULT_SOURCE, dev: true });
    expect(c.settings.audit).toBe('all');
  });

  it.each([
    ['0.0.0.0 (the container image)', { AUTHZ_LISTEN: '0.0.0.0:12345' }, {}],
    ['a port alone after a colon (all interfaces)', { AUTHZ_LISTEN: ':12345' }, {}],
    ['[::]', {}, { listen: '[::]:12345' }],
    ['a routable address', { AUTHZ_LISTEN: '10.0.0.5:12345' }, {}],
  ])('with nothing configured, on %s, stops with one issue that says what to set', (_, env, overrides) => {
    const err = errorOf(() => loadConfig({ env, overrides }));
    expect(err.source).toBe(NOTHING_CONFIGURED);
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]?.path).toBe('issuers');
    expect(err.issues[0]?.message).toMatch(
      /not loopback.*set AUTHZ_ISSUER and AUTHZ_AUDIENCE, or AUTHZ_CONFIG/,
    );
    expect(err.issues[0]?.message).not.toMatch(/\n/);
  });

  it('is on anywhere when asked for explicitly, in the file or with AUTHZ_DEV_ISSUER', () => {
    const env = loadConfig({ env: { AUTHZ_LISTEN: '0.0.0.0:12345', AUTHZ_DEV_ISSUER: 'true' } });
    expect(env).toMatchObject({ source: 'environment', dev: true });
    const f = loadConfig({ path: file('dev.yaml', 'devIssuer: true\nlisten: 0.0.0.0:12345\n'), env: {} });
    expect(f.dev).toBe(true);
  });

  it('AUTHZ_DEV_ISSUER=false with nothing else leaves no issuer: stops, unless allowNoKeys', () => {
    expect(issuesOf(() => loadConfig({ env: { AUTHZ_DEV_ISSUER: 'false' } }))).toEqual(['issuers']);
    const c = loadConfig({ env: { AUTHZ_DEV_ISSUER: 'false', AUTHZ_ALLOW_NO_KEYS: 'true' } });
    expect(c.dev).toBe(false);
    expect(c.authz.issuers ?? []).toEqual([]);
    expect(issuesOf(() => loadConfig({ env: { AUTHZ_DEV_ISSUER: 'yes' } }))).toEqual([
      'env.AUTHZ_DEV_ISSUER',
    ]);
  });

  it('a config file without issuers stops with the field path, unless allowNoKeys says it is intended', () => {
    const err = errorOf(() => loadConfig({ path: file('none.yaml', 'audit: all\n'), env: {} }));
    expect(err.issues).toEqual([
      {
        path: 'issuers',
        message: expect.stringMatching(/^none configured \(and no apiKeys\.file\): .*allowNoKeys: true/),
      },
    ]);
    expect(
      loadConfig({ path: file('anon.yaml', 'allowNoKeys: true\n'), env: {} }).authz.issuers,
    ).toBeUndefined();
    // API keys are credentials too: a config with a keys file and no issuer is complete.
    const keysOnly = loadConfig({
      path: file('keys-only.yaml', 'apiKeys: { file: /etc/spoe-authz/keys.yaml }\n'),
      env: {},
    });
    expect(keysOnly.authz.issuers).toBeUndefined();
  });
});

describe('configured key sets at start-up (the engine refuses; the config names the field)', () => {
  const issuer = (keys: unknown) => ({
    id: 'files',
    issuer: 'https://files.example',
    audiences: ['prefect'],
    algorithms: ['ES256'],
    keys,
  });
  const good = { kty: 'EC', ...DEV_PUBLIC_JWKS.keys[0], kid: 'good' };
  const corrupt = { ...good, kid: 'bad', x: 'AAAA' };

  async function startIssues(config: Record<string, unknown>): Promise<ConfigError['issues']> {
    const agent = parseAgentConfig(config, 'test');
    try {
      await startEngine(createEngine(agent), agent);
    } catch (err) {
      if (err instanceof ConfigError) return err.issues;
      throw err;
    }
    return [];
  }

  it.each([
    [
      'an empty file',
      { keys: [] },
      /no key usable for ES256 among 0 entries \(allowNoKeys: true starts anyway\)$/,
    ],
    [
      'a file with keys for other algorithms only',
      { keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB' }] },
      /no key usable/,
    ],
    [
      'a file with a corrupt key',
      { keys: [good, corrupt] },
      /: entry 1 \(kid "bad"\): ES256: cannot be imported as a EC public key/,
    ],
  ])('%s: issuers.N.keys.path and what is wrong', async (_, set, message) => {
    const path = file(`set-${Math.random()}.json`, JSON.stringify(set));
    const issues = await startIssues({ issuers: [{ ...issuer({ type: 'jwks-file', path }) }] });
    expect(issues).toEqual([{ path: 'issuers.0.keys.path', message: expect.stringMatching(message) }]);
  });

  it('an inline set names the entry; allowNoKeys starts an empty file but never a corrupt key', async () => {
    expect(
      await startIssues({ issuers: [issuer({ type: 'jwks', jwks: { keys: [good, corrupt] } })] }),
    ).toEqual([
      {
        path: 'issuers.0.keys.jwks.keys.1',
        message: expect.stringMatching(/^kid "bad": ES256: cannot be imported/),
      },
    ]);
    const empty = file('empty.json', '{"keys":[]}');
    expect(
      await startIssues({ allowNoKeys: true, issuers: [issuer({ type: 'jwks-file', path: empty })] }),
    ).toEqual([]);
    const bad = file('bad-set.json', JSON.stringify({ keys: [corrupt] }));
    expect(
      (await startIssues({ allowNoKeys: true, issuers: [issuer({ type: 'jwks-file', path: bad })] }))[0]
        ?.path,
    ).toBe('issuers.0.keys.path');
  });

  it('check sees the same without fetching anything, and errors of one issuer carry its index', async () => {
    const path = file('check-empty.json', '{"keys":[]}');
    const agent = parseAgentConfig(
      {
        issuers: [
          {
            ...issuer({ type: 'jwks', jwks: { keys: [good] } }),
            id: 'first',
            issuer: 'https://first.example',
          },
          issuer({ type: 'jwks-file', path }),
        ],
      },
      'test',
    );
    await expect(checkEngine(agent)).rejects.toMatchObject({ issues: [{ path: 'issuers.1.keys.path' }] });
    const secret = parseAgentConfig(
      {
        issuers: [
          {
            id: 'edge',
            issuer: 'https://edge.example',
            audiences: ['prefect'],
            algorithms: ['HS256'],
            keys: { type: 'secret', env: 'SPOE_AUTHZ_TEST_UNSET_SECRET' },
          },
        ],
      },
      'test',
    );
    expect(issuesOf(() => createEngine(secret))).toEqual(['issuers.0.keys.env']);
  });
});
