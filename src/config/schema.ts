/**
 * The agent's config file: the product's own keys (listen, spop, metrics, log, audit,
 * devIssuer, vars) beside the authorization engine's keys (tokens, issuers, cache, forwardClaims,
 * jwksCacheDir, policy), all at the top level. Every default is the production default.
 */
import { z } from 'zod';
import { LIMIT_POLICIES } from '../spop/index.js';
import { REQUIRED_VARS, SELECTABLE_VARS } from '../var-names.js';
import { parseListenAddress } from './listen-address.js';

/** One audit line per decision (`all`), per deny (`deny`), or none. */
export const AUDIT_MODES = ['all', 'deny', 'off'] as const;
export type AuditMode = (typeof AUDIT_MODES)[number];

/** Loopback: the agent is reached only by an HAProxy on the same host unless told otherwise. */
export const DEFAULT_LISTEN = '127.0.0.1:12345';

const LISTEN = z.string().superRefine((value, ctx) => {
  const parsed = parseListenAddress(value);
  if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
});

export const SpopSettingsSchema = z.strictObject({
  /** Our max-frame-size; the HELLO answer is min(HAProxy's offer, this). */
  maxFrameSize: z.number().int().min(256).max(1_048_576).default(16_380),
  /** Open SPOP connections at most; what a new one does over it is `limitPolicy`. */
  maxConnections: z.number().int().min(1).max(1_000_000).default(1_024),
  /**
   * At `maxConnections`: `evict-idle` closes the oldest connection still waiting for its HELLO,
   * else the idle one whose last frame is the oldest; `evict-handshaking` only the former;
   * `refuse` closes the new connection. A connection with a NOTIFY in flight is never evicted.
   */
  limitPolicy: z.enum(LIMIT_POLICIES).default('evict-idle'),
  /** An SPOP connection silent this long is closed (0: never). */
  idleTimeoutMs: z.number().int().min(0).max(86_400_000).default(60_000),
  /** A connection that has not sent HAPROXY-HELLO this long after the accept is closed. */
  helloTimeoutMs: z.number().int().min(1).max(600_000).default(5_000),
  /** A frame not complete this long after its first byte is closed (every byte does not extend it). */
  frameTimeoutMs: z.number().int().min(1).max(600_000).default(5_000),
  /**
   * A decision not made within this gets a fail-closed ACK (allow=false, status=503).
   * Keep it below the SPOE `timeout processing` so HAProxy hears the answer.
   */
  handlerTimeoutMs: z.number().int().min(1).max(60_000).default(1_000),
  /**
   * With `listen: unix:/path`: the socket file's permission bits (octal, e.g. "0660"), set
   * right after it is created; null leaves them to the process umask. HAProxy needs write
   * permission on the socket to connect.
   */
  socketMode: z
    .string()
    .regex(/^0?[0-7]{3}$/, 'an octal mode like "0660"')
    .nullable()
    .default(null),
});

export const MetricsSettingsSchema = z.strictObject({
  /** HTTP address of /metrics, /healthz and /readyz; null disables it. */
  listen: LISTEN.nullable().default('127.0.0.1:9464'),
});

/**
 * The vars the agent answers (`claims`: every `claim_*` var of forwardClaims). HAProxy pays for
 * each SET-VAR it receives; a deployment whose haproxy.cfg reads fewer can send fewer. `allow`
 * and `status` are required: without them HAProxy cannot tell an allow from a deny.
 */
export const VarsSchema = z
  .array(z.enum(SELECTABLE_VARS))
  .superRefine((value, ctx) => {
    const missing = REQUIRED_VARS.filter((v) => !value.includes(v));
    if (missing.length > 0)
      ctx.addIssue({
        code: 'custom',
        message: `must include ${REQUIRED_VARS.join(' and ')} (missing ${missing.join(', ')}): haproxy.cfg's verdict reads them`,
      });
  })
  .default([...SELECTABLE_VARS]);

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const ProductSettingsSchema = z.strictObject({
  /** SPOP listen address. */
  listen: LISTEN.default(DEFAULT_LISTEN),
  spop: SpopSettingsSchema.prefault({}),
  metrics: MetricsSettingsSchema.prefault({}),
  log: z.strictObject({ level: z.enum(LOG_LEVELS).default('info') }).prefault({}),
  /** One audit line per decision: every decision, denials only, or none. */
  audit: z.enum(AUDIT_MODES).default('deny'),
  /**
   * Adds the built-in DEVELOPMENT issuer, whose private key ships in the repository. Never
   * in production: anyone can mint its tokens. With nothing configured it is the default on a
   * loopback or unix `listen` only (config/load.ts).
   */
  devIssuer: z.boolean().default(false),
  /** Which vars the ACKs carry (see {@link VarsSchema}); default every var. */
  vars: VarsSchema,
});

/** The top-level keys that belong to the product, not to the engine. */
export const PRODUCT_KEYS: readonly string[] = Object.keys(ProductSettingsSchema.shape);

export type ProductSettings = z.output<typeof ProductSettingsSchema>;
