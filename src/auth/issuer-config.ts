import { z } from 'zod';
import { PROFILES, TENANT_ID } from './issuer-profiles.js';
import { keyUrlProblem } from './keys/url-check.js';
import { DEFAULT_ROLE_CLAIMS, DEFAULT_SPACE_DELIMITED } from './policy/role-mapping.js';

/** Asymmetric JWS algorithms jose v6 verifies with a public key from a JWKS. */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
/** `none` is not in the list, so it cannot be configured. */
export const ALGORITHMS = [...ASYMMETRIC_ALGORITHMS, ...HMAC_ALGORITHMS] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/** RFC 7518 3.2: an HMAC key at least as long as the hash output. */
export const HMAC_MIN_BYTES: Readonly<Record<(typeof HMAC_ALGORITHMS)[number], number>> = {
  HS256: 32,
  HS384: 48,
  HS512: 64,
};

const SCALAR_VALUE = z.union([z.string(), z.number(), z.boolean()]);

export const ROLE_NAME = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,31}$/, 'role names are lower-case [a-z0-9_-], at most 32 characters');

const seconds = (max: number) => z.number().positive().max(max);

const remoteOptions = {
  /** Background refresh period while the provider answers. */
  refreshIntervalSeconds: seconds(86_400).default(300),
  /** Background retry period after a failed fetch; kid-miss fetches fail fast meanwhile. */
  retryIntervalSeconds: seconds(3_600).default(15),
  /** jose `cooldownDuration`: no kid-miss refetch within this long after a successful fetch. */
  cooldownSeconds: z.number().min(0).max(3_600).default(30),
  /** jose `timeoutDuration` for each fetch (discovery and JWKS). */
  timeoutMs: z.number().int().positive().max(60_000).default(5_000),
  /** Permit plain http to a non-loopback host. */
  allowInsecureHttp: z.boolean().default(false),
};

export const OidcKeysSchema = z.strictObject({
  type: z.literal('oidc'),
  /** Defaults to `<issuer>/.well-known/openid-configuration`. */
  discoveryUrl: z.string().optional(),
  ...remoteOptions,
});

export const JwksUrlKeysSchema = z.strictObject({
  type: z.literal('jwks-url'),
  url: z.string(),
  ...remoteOptions,
});

export const JwksFileKeysSchema = z.strictObject({
  type: z.literal('jwks-file'),
  path: z.string().min(1),
});

export const JwksInlineKeysSchema = z.strictObject({
  type: z.literal('jwks'),
  jwks: z.looseObject({ keys: z.array(z.looseObject({ kty: z.string() })).min(1) }),
});

export const SecretKeysSchema = z
  .strictObject({
    type: z.literal('secret'),
    /** The secret itself; prefer `env` or `file`. */
    value: z.string().min(1).optional(),
    /** Name of an environment variable holding the secret. */
    env: z.string().min(1).optional(),
    /** Path of a file holding the secret (trailing newline ignored). */
    file: z.string().min(1).optional(),
    encoding: z.enum(['utf8', 'base64', 'base64url', 'hex']).default('utf8'),
  })
  .refine((s) => [s.value, s.env, s.file].filter((v) => v !== undefined).length === 1, {
    message: 'exactly one of value, env, file is required',
  });

/** A PEM public key per kid from a URL template containing `{kid}` (the AWS ALB's key endpoint). */
export const PemUrlKeysSchema = z.strictObject({
  type: z.literal('pem-url'),
  url: z.string().refine((u) => u.includes('{kid}'), 'the URL must contain {kid}'),
  /** After a failed fetch of a kid, it is not asked again before this. */
  retryIntervalSeconds: seconds(3_600).default(15),
  timeoutMs: z.number().int().positive().max(60_000).default(5_000),
  allowInsecureHttp: z.boolean().default(false),
});

export const KeysSchema = z.discriminatedUnion('type', [
  OidcKeysSchema,
  JwksUrlKeysSchema,
  PemUrlKeysSchema,
  JwksFileKeysSchema,
  JwksInlineKeysSchema,
  SecretKeysSchema,
]);

export const RoleMappingSchema = z.strictObject({
  claims: z.array(z.string().min(1)).default([...DEFAULT_ROLE_CLAIMS]),
  spaceDelimited: z.array(z.string().min(1)).default([...DEFAULT_SPACE_DELIMITED]),
  map: z.record(z.string(), z.union([ROLE_NAME, z.array(ROLE_NAME)])).default({}),
  passthrough: z.boolean().default(false),
  default: z.array(ROLE_NAME).default([]),
});

export const IssuerSchema = z
  .strictObject({
    /** Short name for logs, metrics and the persisted JWKS file name. */
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/, 'id: [A-Za-z0-9_.-], at most 32 characters'),
    /** Exact `iss` value; tokens are routed to this issuer by it. */
    issuer: z.string().min(1),
    /** Accepted `aud` values (any one must be present in the token). */
    audiences: z.array(z.string().min(1)).min(1),
    /** Required allow-list. */
    algorithms: z.array(z.enum(ALGORITHMS)).min(1),
    keys: KeysSchema,
    clockToleranceSeconds: z.number().min(0).max(300).default(30),
    maxTokenAgeSeconds: z.number().positive().optional(),
    /** Required JOSE header `typ`, e.g. `at+jwt` (RFC 9068). */
    typ: z.string().min(1).optional(),
    /** Claims that must be present, in addition to `exp` (always required). */
    requiredClaims: z.array(z.string().min(1)).default([]),
    /** Extension header parameters we accept in `crit`; any other `crit` entry is refused. */
    critical: z.array(z.string().min(1)).default([]),
    roles: RoleMappingSchema.prefault({}),
    /** Provider profile (issuer-profiles.ts): fills in what the provider documents. */
    profile: z.enum(PROFILES).default('generic'),
    /** More exact `iss` values routed to this issuer (Entra's v1 and v2 issuers, Google's two). */
    issuerAliases: z.array(z.string().min(1)).default([]),
    /** Claims the subject is taken from: the first with a non-empty value. */
    subjectClaims: z.array(z.string().min(1)).min(1).default(['sub']),
    /** The claim `audiences` are checked against; `aud` unless the provider uses another (Cognito: client_id). */
    audienceClaim: z.string().min(1).default('aud'),
    /** Claims that must hold one of the given values (`token_use: access`). */
    claimValues: z
      .record(z.string().min(1), z.union([SCALAR_VALUE, z.array(SCALAR_VALUE).min(1)]))
      .default({}),
    /** Microsoft Entra ID: the tenants whose tokens are accepted. */
    entra: z
      .strictObject({ tenants: z.array(z.string().regex(TENANT_ID, 'a tenant id (GUID)')).min(1) })
      .optional(),
    /** AWS ALB: the load balancers (ARNs in the header's `signer`) whose tokens are accepted. */
    alb: z
      .strictObject({
        signers: z.array(z.string().min(1)).min(1),
        /** Region of the key endpoint; default: from the first signer's ARN. */
        region: z
          .string()
          .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'an AWS region')
          .optional(),
      })
      .optional(),
  })
  .superRefine((issuer, ctx) => {
    const secret = issuer.keys.type === 'secret';
    issuer.algorithms.forEach((alg, i) => {
      const hmac = alg.startsWith('HS');
      if (hmac !== secret) {
        ctx.addIssue({
          code: 'custom',
          path: ['algorithms', i],
          message: secret
            ? `${alg} needs a public key; a shared secret only verifies HS256/384/512`
            : `${alg} needs a shared secret (keys.type "secret"); a JWKS never verifies HMAC`,
        });
      }
    });
    const keys = issuer.keys;
    if (keys.type === 'pem-url') {
      const problem = keyUrlProblem(keys.url, keys.allowInsecureHttp);
      if (problem) ctx.addIssue({ code: 'custom', path: ['keys', 'url'], message: problem });
      if (issuer.algorithms.length !== 1)
        ctx.addIssue({
          code: 'custom',
          path: ['algorithms'],
          message: 'pem-url keys verify exactly one algorithm',
        });
    }
    if (issuer.profile === 'aws-alb' && keys.type !== 'pem-url')
      ctx.addIssue({ code: 'custom', path: ['keys'], message: 'profile aws-alb needs pem-url keys' });
    if (issuer.issuerAliases.includes(issuer.issuer))
      ctx.addIssue({ code: 'custom', path: ['issuerAliases'], message: 'repeats issuer' });
    if (keys.type === 'jwks-url') {
      const problem = keyUrlProblem(keys.url, keys.allowInsecureHttp);
      if (problem) ctx.addIssue({ code: 'custom', path: ['keys', 'url'], message: problem });
    }
    if (keys.type === 'oidc') {
      const url = keys.discoveryUrl ?? issuer.issuer;
      const problem = keyUrlProblem(url, keys.allowInsecureHttp);
      const path = keys.discoveryUrl === undefined ? ['issuer'] : ['keys', 'discoveryUrl'];
      if (problem) ctx.addIssue({ code: 'custom', path, message: `OIDC discovery: ${problem}` });
    }
  });

export type IssuerConfig = z.output<typeof IssuerSchema>;
export type IssuerConfigInput = z.input<typeof IssuerSchema>;
export type KeysConfig = z.output<typeof KeysSchema>;
export type RoleMappingConfig = z.output<typeof RoleMappingSchema>;

export function discoveryUrlFor(issuer: string, explicit: string | undefined): string {
  return explicit ?? `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}
