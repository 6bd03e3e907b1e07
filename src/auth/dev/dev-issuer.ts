import { importJWK, type JWTPayload, SignJWT } from 'jose';
import type { IssuerConfigInput } from '../issuer-config.js';
import { DEV_PRIVATE_JWK, DEV_PUBLIC_JWK } from './dev-keys.js';

/**
 * DEVELOPMENT ONLY: a built-in issuer whose private key ships in the repository, so anyone can
 * mint tokens for it. For laptops, demos and tests; the product must enable it only on request
 * and say so loudly in its logs.
 */
export const DEV_ISSUER = 'urn:spoe-authz:dev';
export const DEV_ISSUER_ID = 'dev';
export const DEV_AUDIENCE = 'prefect';
export const DEV_ALGORITHM = 'ES256';
export const DEV_PUBLIC_JWKS = Object.freeze({ keys: [DEV_PUBLIC_JWK] });

/** Issuer config for the dev issuer: inline public JWKS, roles taken as-is from the `roles` claim. */
export function devIssuerConfig(overrides: Partial<IssuerConfigInput> = {}): IssuerConfigInput {
  return {
    id: DEV_ISSUER_ID,
    issuer: DEV_ISSUER,
    audiences: [DEV_AUDIENCE],
    algorithms: [DEV_ALGORITHM],
    keys: { type: 'jwks', jwks: { keys: [{ ...DEV_PUBLIC_JWK }] } },
    roles: { claims: ['roles'], passthrough: true },
    ...overrides,
  };
}

export function isDevIssuer(iss: string): boolean {
  return iss === DEV_ISSUER;
}

export interface MintDevTokenOptions {
  readonly sub: string;
  /** Our role names (viewer, operator, worker, developer, admin, or custom). */
  readonly roles?: readonly string[];
  /** Lifetime in seconds (default 3600). */
  readonly ttlSeconds?: number;
  readonly audience?: string | readonly string[];
  /** Space-delimited OAuth scopes. */
  readonly scope?: string;
  /** Extra claims (cannot override iss, sub, aud, iat, exp). */
  readonly claims?: Readonly<Record<string, unknown>>;
  /** Issue time, ms since epoch (default Date.now()). */
  readonly now?: number;
  /** Not-before offset in seconds from `now` (may be positive for tests). */
  readonly notBeforeSeconds?: number;
}

let privateKey: ReturnType<typeof importJWK> | undefined;

/** Signs a dev token (ES256, kid of the dev key). DEVELOPMENT ONLY. */
export async function mintDevToken(options: MintDevTokenOptions): Promise<string> {
  privateKey ??= importJWK({ ...DEV_PRIVATE_JWK }, DEV_ALGORITHM);
  const iat = Math.floor((options.now ?? Date.now()) / 1000);
  const payload: JWTPayload = { ...options.claims };
  if (options.roles !== undefined) payload.roles = [...options.roles];
  if (options.scope !== undefined) payload.scope = options.scope;
  if (options.notBeforeSeconds !== undefined) payload.nbf = iat + options.notBeforeSeconds;
  const audience = options.audience ?? DEV_AUDIENCE;
  return new SignJWT(payload)
    .setProtectedHeader({ alg: DEV_ALGORITHM, kid: DEV_PUBLIC_JWK.kid, typ: 'JWT' })
    .setIssuer(DEV_ISSUER)
    .setSubject(options.sub)
    .setAudience(typeof audience === 'string' ? audience : [...audience])
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.ttlSeconds ?? 3600))
    .sign(await privateKey);
}
