/**
 * Environment overrides (container-friendly). Common settings override the file; AUTHZ_ISSUER
 * and friends add a single issuer, so a container needs no config file at all.
 */
import type { ConfigIssue } from './errors.js';

/** Every variable the agent reads, with what it sets (the README lists the same). */
export const ENV_VARS = {
  AUTHZ_CONFIG: 'path of the YAML/JSON config file (same as --config)',
  AUTHZ_LISTEN: 'listen',
  AUTHZ_METRICS_LISTEN: 'metrics.listen (`off` disables)',
  AUTHZ_LOG_LEVEL: 'log.level',
  AUTHZ_AUDIT: 'audit (all, deny, off)',
  AUTHZ_VARS: 'vars (comma-separated, e.g. `allow,status,reason`)',
  AUTHZ_HANDLER_TIMEOUT_MS: 'spop.handlerTimeoutMs',
  AUTHZ_MAX_CONNECTIONS: 'spop.maxConnections',
  AUTHZ_LIMIT_POLICY: 'spop.limitPolicy (evict-idle, evict-handshaking, refuse)',
  AUTHZ_HELLO_TIMEOUT_MS: 'spop.helloTimeoutMs',
  AUTHZ_FRAME_TIMEOUT_MS: 'spop.frameTimeoutMs',
  AUTHZ_SOCKET_MODE: 'spop.socketMode (octal, with a unix: listen address)',
  AUTHZ_JWKS_CACHE_DIR: 'jwksCacheDir (default $STATE_DIRECTORY under systemd)',
  AUTHZ_TOKEN_COOKIE: 'tokens.cookie',
  AUTHZ_API_BASE_PATH: 'policy.prefect.basePath',
  AUTHZ_API_KEYS_FILE: 'apiKeys.file (API keys and auth strings; see `spoe-authz apikey`)',
  AUTHZ_VERIFIER: 'verifier (`fast` or `jose`)',
  AUTHZ_ISSUER: 'adds issuer `env` with this exact iss',
  AUTHZ_AUDIENCE: 'its audiences (comma-separated; required with AUTHZ_ISSUER)',
  AUTHZ_ALGORITHMS: 'its algorithms (comma-separated; default RS256, or HS256 with a secret)',
  AUTHZ_JWKS_URL: 'its JWKS URL (default: OIDC discovery from the issuer)',
  AUTHZ_HS_SECRET: 'its HMAC shared secret (edge-minted tokens); prefer AUTHZ_HS_SECRET_FILE',
  AUTHZ_HS_SECRET_FILE: 'file holding its HMAC shared secret',
  AUTHZ_ROLE_CLAIMS: 'its role claims (comma-separated dotted paths)',
  AUTHZ_ROLE_MAP: 'its group→role map, `group=role,group2=role2`',
  AUTHZ_ALLOW_INSECURE_HTTP: '`true`: allow a plain-http JWKS/discovery URL off loopback',
  AUTHZ_DEV_ISSUER: 'devIssuer (`true` or `false`)',
  AUTHZ_ALLOW_NO_KEYS: 'allowNoKeys (`true` or `false`)',
} as const;

type Env = Readonly<Record<string, string | undefined>>;
type Obj = Record<string, unknown>;

const list = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

function sub(obj: Obj, key: string): Obj {
  const cur = obj[key];
  if (cur !== null && typeof cur === 'object' && !Array.isArray(cur)) return cur as Obj;
  const next: Obj = {};
  obj[key] = next;
  return next;
}

function int(env: Env, name: string, issues: ConfigIssue[]): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) {
    issues.push({ path: `env.${name}`, message: `not a whole number: "${v}"` });
    return undefined;
  }
  return Number(v);
}

function bool(env: Env, name: string, issues: ConfigIssue[]): boolean | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (v === 'true' || v === 'false') return v === 'true';
  issues.push({ path: `env.${name}`, message: `expected true or false, got "${v}"` });
  return undefined;
}

/** True when the environment alone describes an issuer. */
export function hasEnvIssuer(env: Env): boolean {
  return (env.AUTHZ_ISSUER ?? '') !== '';
}

/** True when the environment says whether to trust the development issuer. */
export function hasEnvDevIssuer(env: Env): boolean {
  return (env.AUTHZ_DEV_ISSUER ?? '') !== '';
}

/** Applies the overrides to a raw (not yet validated) config object, in place. */
export function applyEnv(raw: Obj, env: Env): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const set = (name: string, apply: (v: string) => void) => {
    const v = env[name];
    if (v !== undefined && v !== '') apply(v);
  };
  set('AUTHZ_LISTEN', (v) => {
    raw.listen = v;
  });
  set('AUTHZ_METRICS_LISTEN', (v) => {
    sub(raw, 'metrics').listen = v === 'off' ? null : v;
  });
  set('AUTHZ_LOG_LEVEL', (v) => {
    sub(raw, 'log').level = v;
  });
  set('AUTHZ_AUDIT', (v) => {
    raw.audit = v;
  });
  set('AUTHZ_VARS', (v) => {
    raw.vars = list(v);
  });
  const timeout = int(env, 'AUTHZ_HANDLER_TIMEOUT_MS', issues);
  if (timeout !== undefined) sub(raw, 'spop').handlerTimeoutMs = timeout;
  const maxConn = int(env, 'AUTHZ_MAX_CONNECTIONS', issues);
  if (maxConn !== undefined) sub(raw, 'spop').maxConnections = maxConn;
  set('AUTHZ_LIMIT_POLICY', (v) => {
    sub(raw, 'spop').limitPolicy = v;
  });
  const helloTimeout = int(env, 'AUTHZ_HELLO_TIMEOUT_MS', issues);
  if (helloTimeout !== undefined) sub(raw, 'spop').helloTimeoutMs = helloTimeout;
  const frameTimeout = int(env, 'AUTHZ_FRAME_TIMEOUT_MS', issues);
  if (frameTimeout !== undefined) sub(raw, 'spop').frameTimeoutMs = frameTimeout;
  set('AUTHZ_SOCKET_MODE', (v) => {
    sub(raw, 'spop').socketMode = v;
  });
  const cacheDir = env.AUTHZ_JWKS_CACHE_DIR || (raw.jwksCacheDir === undefined ? env.STATE_DIRECTORY : '');
  if (cacheDir) raw.jwksCacheDir = cacheDir;
  set('AUTHZ_TOKEN_COOKIE', (v) => {
    sub(raw, 'tokens').cookie = v;
  });
  set('AUTHZ_API_BASE_PATH', (v) => {
    sub(sub(raw, 'policy'), 'prefect').basePath = v;
  });
  set('AUTHZ_API_KEYS_FILE', (v) => {
    sub(raw, 'apiKeys').file = v;
  });
  set('AUTHZ_VERIFIER', (v) => {
    raw.verifier = v;
  });
  const dev = bool(env, 'AUTHZ_DEV_ISSUER', issues);
  if (dev !== undefined) raw.devIssuer = dev;
  const noKeys = bool(env, 'AUTHZ_ALLOW_NO_KEYS', issues);
  if (noKeys !== undefined) raw.allowNoKeys = noKeys;
  if (hasEnvIssuer(env)) {
    const issuer = envIssuer(env, issues);
    if (issuer !== null) {
      const issuers = Array.isArray(raw.issuers) ? raw.issuers : [];
      raw.issuers = [...issuers, issuer];
    }
  }
  return issues;
}

function envIssuer(env: Env, issues: ConfigIssue[]): Obj | null {
  const iss = env.AUTHZ_ISSUER!;
  const audiences = list(env.AUTHZ_AUDIENCE ?? '');
  if (audiences.length === 0) {
    issues.push({ path: 'env.AUTHZ_AUDIENCE', message: 'required with AUTHZ_ISSUER' });
    return null;
  }
  const secret = env.AUTHZ_HS_SECRET;
  const secretFile = env.AUTHZ_HS_SECRET_FILE;
  const insecure = env.AUTHZ_ALLOW_INSECURE_HTTP === 'true';
  let keys: Obj;
  if (secret || secretFile) {
    keys = secretFile ? { type: 'secret', file: secretFile } : { type: 'secret', env: 'AUTHZ_HS_SECRET' };
  } else if (env.AUTHZ_JWKS_URL) {
    keys = { type: 'jwks-url', url: env.AUTHZ_JWKS_URL, allowInsecureHttp: insecure };
  } else {
    keys = { type: 'oidc', allowInsecureHttp: insecure };
  }
  const algorithms = list(env.AUTHZ_ALGORITHMS ?? '');
  const roles: Obj = {};
  if (env.AUTHZ_ROLE_CLAIMS) roles.claims = list(env.AUTHZ_ROLE_CLAIMS);
  if (env.AUTHZ_ROLE_MAP) {
    const map: Record<string, string> = {};
    for (const pair of list(env.AUTHZ_ROLE_MAP)) {
      const i = pair.indexOf('=');
      if (i <= 0 || i === pair.length - 1) {
        issues.push({ path: 'env.AUTHZ_ROLE_MAP', message: `expected group=role, got "${pair}"` });
        continue;
      }
      map[pair.slice(0, i)] = pair.slice(i + 1);
    }
    roles.map = map;
  }
  return {
    id: 'env',
    issuer: iss,
    audiences,
    algorithms: algorithms.length > 0 ? algorithms : [keys.type === 'secret' ? 'HS256' : 'RS256'],
    keys,
    roles,
  };
}
