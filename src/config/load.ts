/**
 * Finds, reads and validates the agent's config. Precedence: built-in defaults < file <
 * environment < CLI flags. Any problem is a ConfigError naming the wrong field's path; the
 * process stops with it before it listens.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  type AuthzConfigInput,
  AuthzConfigSchema,
  AuthzEngine,
  type AuthzEngineDeps,
  type AuthzStats,
  DEV_ISSUER,
  DEV_ISSUER_ID,
  devIssuerConfig,
  isAuthError,
} from '../auth/index.js';
import { applyEnv, hasEnvDevIssuer, hasEnvIssuer } from './env.js';
import { ConfigError, type ConfigIssue, zodIssues } from './errors.js';
import { formatListenAddress, isLocalListen, parseListenAddress } from './listen-address.js';
import { DEFAULT_LISTEN, PRODUCT_KEYS, type ProductSettings, ProductSettingsSchema } from './schema.js';

export interface AgentConfig {
  readonly settings: ProductSettings;
  /** The engine's part, as given (AuthzEngine.create validates and applies its defaults). */
  readonly authz: AuthzConfigInput;
  /** `file:/etc/...`, `environment`, or `built-in development default`. */
  readonly source: string;
  /** The development issuer is enabled (explicitly or by the built-in default). */
  readonly dev: boolean;
}

export const DEV_DEFAULT_SOURCE = 'built-in development default';
/** The source when no file, no AUTHZ_ISSUER and no AUTHZ_DEV_ISSUER say anything. */
export const NOTHING_CONFIGURED = 'no config file, no AUTHZ_ISSUER';

export interface LoadOptions {
  /** Config file (YAML or JSON); else $AUTHZ_CONFIG; else environment-only or the built-in default. */
  readonly path?: string | undefined;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** CLI overrides applied last (e.g. --listen). */
  readonly overrides?: Readonly<Record<string, unknown>>;
}

export function loadConfig(options: LoadOptions = {}): AgentConfig {
  const env = options.env ?? process.env;
  const path = options.path ?? (env.AUTHZ_CONFIG || undefined);
  let raw: Record<string, unknown>;
  let source: string;
  const nothing = path === undefined && !hasEnvIssuer(env) && !hasEnvDevIssuer(env);
  if (path !== undefined) {
    source = `file:${path}`;
    raw = readConfigFile(path, source);
  } else {
    source = nothing ? NOTHING_CONFIGURED : 'environment';
    raw = {};
  }
  const issues: ConfigIssue[] = applyEnv(raw, env);
  Object.assign(raw, options.overrides ?? {});
  if (nothing) source = devDefault(raw, issues);
  return validate(raw, source, issues);
}

/**
 * Nothing configured: the development issuer, whose private key is public, is a default only
 * where nobody else can connect (a laptop, a demo on loopback or a unix socket). Anywhere else
 * the agent stops and says what to set, so a container started bare never trusts it.
 */
function devDefault(raw: Record<string, unknown>, issues: ConfigIssue[]): string {
  const listen = parseListenAddress(typeof raw.listen === 'string' ? raw.listen : DEFAULT_LISTEN);
  if (typeof listen === 'string') return NOTHING_CONFIGURED; // validate() names the field
  if (!isLocalListen(listen)) {
    issues.push({
      path: 'issuers',
      message:
        `none configured, and the agent listens on ${formatListenAddress(listen)} (not loopback), where the ` +
        'development issuer is never a default: set AUTHZ_ISSUER and AUTHZ_AUDIENCE, or AUTHZ_CONFIG to a ' +
        'config file with issuers (AUTHZ_DEV_ISSUER=true only for a demo: anyone can mint its tokens)',
    });
    return NOTHING_CONFIGURED;
  }
  raw.devIssuer = true;
  raw.audit ??= 'all';
  return DEV_DEFAULT_SOURCE;
}

/** Validates an already-read config object (tests, `check`). */
export function parseAgentConfig(input: unknown, source = 'inline'): AgentConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError(source, [{ path: '', message: 'expected a mapping of settings' }]);
  }
  return validate({ ...(input as Record<string, unknown>) }, source, []);
}

function validate(raw: Record<string, unknown>, source: string, issues: ConfigIssue[]): AgentConfig {
  const product: Record<string, unknown> = {};
  const authz: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) (PRODUCT_KEYS.includes(k) ? product : authz)[k] = v;

  const settings = ProductSettingsSchema.safeParse(product);
  if (!settings.success) issues.push(...zodIssues(settings.error));
  const dev = settings.success && settings.data.devIssuer;
  // Appended, not prepended: the file's issuers keep their indices in error paths.
  let devIndex = -1;
  if (dev) {
    const issuers = Array.isArray(authz.issuers) ? authz.issuers : [];
    devIndex = issuers.length;
    authz.issuers = [...issuers, devIssuerConfig()];
  }
  const checked = AuthzConfigSchema.safeParse(authz);
  if (!checked.success) issues.push(...zodIssues(checked.error).map((i) => devIssuerIssue(i, devIndex)));
  else if (
    checked.data.issuers.length === 0 &&
    checked.data.apiKeys === undefined &&
    !checked.data.allowNoKeys &&
    issues.length === 0
  ) {
    issues.push({
      path: 'issuers',
      message:
        'none configured (and no apiKeys.file): no credential can be verified, only anonymous rules ' +
        'can allow; add an issuer (or AUTHZ_ISSUER), or set allowNoKeys: true (AUTHZ_ALLOW_NO_KEYS=true) ' +
        'if that is intended',
    });
  }
  if (issues.length > 0 || !settings.success) throw new ConfigError(source, issues);
  return { settings: settings.data, authz: authz as AuthzConfigInput, source, dev };
}

/** An issue located in the appended development issuer belongs to the `devIssuer` switch. */
function devIssuerIssue(issue: ConfigIssue, devIndex: number): ConfigIssue {
  const at = `issuers.${devIndex}`;
  if (devIndex < 0 || (issue.path !== at && !issue.path.startsWith(`${at}.`))) return issue;
  return {
    path: 'devIssuer',
    message: `the development issuer (id "${DEV_ISSUER_ID}", iss ${DEV_ISSUER}) conflicts with a configured issuer: ${issue.message}`,
  };
}

/**
 * Builds the engine for a loaded config. What only the engine can check (a role map naming a
 * role the policy does not know, a secret or key file that cannot be read, a too-short HMAC
 * secret) becomes a ConfigError with the field path, like every other config problem.
 */
export function createEngine(config: AgentConfig, deps?: AuthzEngineDeps): AuthzEngine {
  try {
    return AuthzEngine.create(config.authz, deps);
  } catch (err) {
    throw engineConfigError(err, config);
  }
}

/** Swaps in the config's policy (see createEngine for the errors). */
export function reloadEnginePolicy(engine: AuthzEngine, config: AgentConfig): void {
  try {
    engine.reloadPolicy(config.authz.policy ?? {});
  } catch (err) {
    throw engineConfigError(err, config);
  }
}

/**
 * Starts the engine (keys fetched or loaded, see AuthzEngine.start). A configured key set the
 * engine refuses is a ConfigError with the field path; the engine is closed first.
 */
export async function startEngine(engine: AuthzEngine, config: AgentConfig): Promise<void> {
  try {
    await engine.start();
  } catch (err) {
    engine.close();
    throw engineConfigError(err, config);
  }
}

/**
 * What `check` can see without the network: the engine built, and its configured key sets.
 * Resolves with the engine's figures (e.g. the keys file's counts).
 */
export async function checkEngine(config: AgentConfig): Promise<AuthzStats> {
  const engine = createEngine(config);
  try {
    await engine.checkConfiguredKeys();
    return engine.stats();
  } catch (err) {
    throw engineConfigError(err, config);
  } finally {
    engine.close();
  }
}

function engineConfigError(err: unknown, config: AgentConfig): unknown {
  if (!isAuthError(err, 'config_invalid')) return err;
  // An error about one issuer has paths relative to it; the file's path has its index.
  const at =
    err.issuer === undefined ? -1 : (config.authz.issuers ?? []).findIndex((i) => i.id === err.issuer);
  const prefix = at < 0 ? '' : `issuers.${at}.`;
  const issues: ConfigIssue[] =
    err.issues.length > 0
      ? err.issues.map((i) => ({ path: `${prefix}${i.path}`, message: i.message }))
      : [{ path: prefix.slice(0, -1), message: err.message }];
  return new ConfigError(config.source, issues, { cause: err });
}

function readConfigFile(path: string, source: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(source, [{ path: '', message: `cannot read: ${(err as Error).message}` }], {
      cause: err,
    });
  }
  let data: unknown;
  try {
    data = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(source, [{ path: '', message: `not valid ${syntaxError(err)}` }], { cause: err });
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(source, [{ path: '', message: 'expected a mapping of settings' }]);
  }
  return data as Record<string, unknown>;
}

/** One line for a YAML or JSON syntax error: what is wrong and where, without the excerpt. */
function syntaxError(err: unknown): string {
  if (err instanceof SyntaxError) return `JSON: ${err.message}`;
  const e = err as { message?: unknown; linePos?: ReadonlyArray<{ line: number; col: number }> };
  const what = String(e.message ?? err)
    .split('\n')[0]!
    .replace(/ at line \d+, column \d+:?$/, '');
  const at = e.linePos?.[0];
  return `YAML: ${what}${at === undefined ? '' : ` (line ${at.line}, column ${at.col})`}`;
}
