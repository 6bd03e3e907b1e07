/**
 * One error family for the auth engine. `code` is stable and safe to switch on; `message` is for
 * humans. Token verification failures are not errors: they are Decisions with a Reason.
 */
import { AgentError } from '../errors.js';

export const AUTH_ERROR_CODES = [
  /** Configuration rejected (zod issues in `issues`, or a secret/file that cannot be loaded). */
  'config_invalid',
  /** A key set could not be obtained: network failure, timeout, non-200, junk body, redirect. */
  'keys_unavailable',
  /** OIDC discovery document missing, invalid, or naming another issuer. */
  'discovery_failed',
  /** A JWKS/discovery URL that is neither https nor loopback without `allowInsecureHttp`. */
  'insecure_url',
  /** The engine was used after close(). */
  'closed',
] as const;

export type AuthErrorCode = (typeof AUTH_ERROR_CODES)[number];

export interface AuthErrorIssue {
  readonly path: string;
  readonly message: string;
}

/** The engine's errors: part of the project's family (src/errors.ts), with auth's own codes. */
export class AuthError extends AgentError {
  declare readonly code: AuthErrorCode;
  /**
   * Wrong fields. Paths are from the engine config's root (`issuers.0.algorithms.1`), or, when
   * `issuer` is set, from that issuer's config (`keys.path`).
   */
  readonly issues: readonly AuthErrorIssue[];
  /** Id of the issuer the error is about, if it is about one. */
  readonly issuer: string | undefined;

  constructor(
    code: AuthErrorCode,
    message: string,
    options?: { cause?: unknown; issues?: AuthErrorIssue[]; issuer?: string },
  ) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.issues = options?.issues ?? [];
    this.issuer = options?.issuer;
  }
}

export function isAuthError(err: unknown, code?: AuthErrorCode): err is AuthError {
  return err instanceof AuthError && (code === undefined || err.code === code);
}
