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
  DEV_ISSUER,
  DEV_ISSUER_ID,
  devIssuerConfig,
  isAuthError,
} from '../auth/index.js';
import { applyEnv, hasEnvIssuer } from './env.js';
import { ConfigError, type ConfigIssue, zodIssues } from './errors.js';
import { PRODUCT_KEYS, type ProductSettings, ProductSettingsSchema } from './schema.js';

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
  if (path !== undefined) {
    source = `file:${path}`;
    raw = readConfigFile(path, source);
  } else if (hasEnvIssuer(env)) {
    source = 'environment';
    raw = {};
  } else {
    // Nothing configured: a working agent for laptops and demos, loudly marked as such.
    source = DEV_DEFAULT_SOURCE;
    raw = { devIssuer: true, audit: 'all' };
  }
  const issues: ConfigIssue[] = applyEnv(raw, env);
  Object.assign(raw, options.overrides ?? {});
  return validate(raw, source, issues);
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

function engineConfigError(err: unknown, config: AgentConfig): unknown {
  if (!isAuthError(err, 'config_invalid')) return err;
  let issues: ConfigIssue[] = err.issues.map((i) => ({ path: i.path, message: i.message }));
  if (issues.length === 0) {
    // Key-source errors name the issuer by id ("issuer edge: ...").
    const id = /^issuer ([^:\s]+):/.exec(err.message)?.[1];
    const index = id === undefined ? -1 : (config.authz.issuers ?? []).findIndex((i) => i.id === id);
    issues = [{ path: index < 0 ? '' : `issuers.${index}.keys`, message: err.message }];
  }
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
    throw new ConfigError(source, [{ path: '', message: `not valid YAML/JSON: ${(err as Error).message}` }], {
      cause: err,
    });
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(source, [{ path: '', message: 'expected a mapping of settings' }]);
  }
  return data as Record<string, unknown>;
}
