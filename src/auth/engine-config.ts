import { z } from 'zod';
import { CLAIM_NAME_PATTERN, MAX_CLAIM_NAME_BYTES } from '../var-names.js';
import { ApiKeysSchema } from './apikeys/apikeys-config.js';
import { RESERVED_ISS } from './apikeys/reserved-iss.js';
import { AuthError } from './errors.js';
import { IssuerSchema } from './issuer-config.js';
import { applyProfiles, conflictingTokenProfiles, profileProblems } from './issuer-profiles.js';
import { PolicySchema } from './policy/policy-config.js';
import { VERIFIER_MODES } from './verify/verifier.js';

export const TokenSourcesSchema = z.strictObject({
  /** `Authorization: Bearer <token>` (scheme case-insensitive). */
  bearer: z.boolean().default(true),
  /** Cookie carrying the token; HAProxy passes its value as the `cookie` argument. */
  cookie: z
    .string()
    .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'a cookie name (RFC 6265 token)')
    .nullable()
    .default(null),
  /** Custom header carrying the token (raw, or `Bearer <token>`); passed as `tokenHeader`. */
  header: z
    .string()
    .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'a header name (RFC 9110 token)')
    .nullable()
    .default(null),
  /** Larger tokens are refused before any parsing. */
  maxBytes: z.number().int().min(256).max(65_536).default(8_192),
});

export const CacheSchema = z.strictObject({
  maxEntries: z.number().int().min(0).max(10_000_000).default(10_000),
  /** A verified token is re-verified at least this often, even if `exp` is later. */
  maxTtlSeconds: z.number().min(0).max(86_400).default(300),
  /** Failed verifications (401-class only) are remembered this long. 0 disables. */
  negativeTtlSeconds: z.number().min(0).max(300).default(10),
  negativeMaxEntries: z.number().int().min(0).max(10_000_000).default(10_000),
});

export const ForwardClaimSchema = z.strictObject({
  /** Becomes HAProxy variable `claim_<name>`. */
  name: z
    .string()
    .regex(CLAIM_NAME_PATTERN, 'claim variable names are [a-z0-9_]')
    .max(
      MAX_CLAIM_NAME_BYTES,
      `at most ${MAX_CLAIM_NAME_BYTES} characters so txn.<prefix>.claim_<name> fits 63 bytes`,
    ),
  /** Claim name or dotted path. */
  claim: z.string().min(1),
  maxLength: z.number().int().min(1).max(4_096).default(256),
});

const BaseAuthzConfigSchema = z
  .strictObject({
    tokens: TokenSourcesSchema.prefault({}),
    issuers: z.array(IssuerSchema).default([]),
    cache: CacheSchema.prefault({}),
    forwardClaims: z.array(ForwardClaimSchema).default([]),
    /**
     * Start although no issuer is configured, or a configured key set (jwks, jwks-file) holds no
     * key usable for its issuer's algorithms: such tokens are denied, anonymous rules still allow.
     */
    allowNoKeys: z.boolean().default(false),
    /** Directory for last-good JWKS per remote issuer (`<id>.jwks.json`), read at start. */
    jwksCacheDir: z.string().min(1).optional(),
    /** API keys and Prefect auth strings from a keys file (src/auth/apikeys/). */
    apiKeys: ApiKeysSchema.optional(),
    /**
     * `fast`: node:crypto on prepared keys where jose would decide the same (verifier.ts);
     * `jose`: every token through jose's jwtVerify and jose's own key selection.
     */
    verifier: z.enum(VERIFIER_MODES).default('fast'),
    policy: PolicySchema.prefault({}),
  })
  .superRefine((config, ctx) => {
    const ids = new Set<string>();
    const isses = new Set<string>();
    config.issuers.forEach((issuer, i) => {
      if (ids.has(issuer.id))
        ctx.addIssue({ code: 'custom', path: ['issuers', i, 'id'], message: 'duplicate id' });
      if (isses.has(issuer.issuer)) {
        ctx.addIssue({ code: 'custom', path: ['issuers', i, 'issuer'], message: 'duplicate issuer' });
      }
      ids.add(issuer.id);
      isses.add(issuer.issuer);
      issuer.issuerAliases.forEach((alias, j) => {
        if (isses.has(alias))
          ctx.addIssue({
            code: 'custom',
            path: ['issuers', i, 'issuerAliases', j],
            message: 'duplicate issuer',
          });
        isses.add(alias);
      });
      if (config.apiKeys !== undefined && RESERVED_ISS.includes(issuer.issuer)) {
        ctx.addIssue({
          code: 'custom',
          path: ['issuers', i, 'issuer'],
          message: `"${issuer.issuer}" is the iss of credentials from apiKeys.file`,
        });
      }
    });
    const names = new Set<string>();
    config.forwardClaims.forEach((claim, i) => {
      if (names.has(claim.name)) {
        ctx.addIssue({ code: 'custom', path: ['forwardClaims', i, 'name'], message: 'duplicate name' });
      }
      names.add(claim.name);
    });
  });

/**
 * The config with each issuer's profile applied first (issuer-profiles.ts): zod then checks the
 * result, so a profile can never produce what an explicit config could not.
 */
export const AuthzConfigSchema = z.preprocess((input, ctx) => {
  if (typeof input === 'object' && input !== null) {
    for (const message of conflictingTokenProfiles(input as Record<string, unknown>))
      ctx.addIssue({ code: 'custom', path: ['tokens'], message });
    for (const { path, message } of profileProblems(input)) ctx.addIssue({ code: 'custom', path, message });
  }
  return applyProfiles(input);
}, BaseAuthzConfigSchema);

type IssuerInput = z.input<typeof IssuerSchema>;
/** An issuer as written: with a profile, what the profile supplies may be left out. */
export type ProfiledIssuerInput = IssuerInput | (Partial<IssuerInput> & Pick<IssuerInput, 'id' | 'profile'>);
export type AuthzConfig = z.output<typeof BaseAuthzConfigSchema>;
export type AuthzConfigInput = Omit<z.input<typeof BaseAuthzConfigSchema>, 'issuers'> & {
  issuers?: ProfiledIssuerInput[] | undefined;
};

/** "issuers.0.algorithms.1" style path for a zod issue. */
export function issuePath(path: readonly PropertyKey[]): string {
  return path.map((p) => String(p)).join('.');
}

/** Validates with zod; throws AuthError('config_invalid') whose `issues` carry zod's paths. */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: issuePath(issue.path),
    message: issue.message,
  }));
  const summary = issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ');
  throw new AuthError('config_invalid', `invalid ${what}: ${summary}`, { cause: result.error, issues });
}

export function parseAuthzConfig(input: unknown): AuthzConfig {
  return parseWith(AuthzConfigSchema, input, 'authorization config');
}
