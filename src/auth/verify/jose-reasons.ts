import { isAuthError } from '../errors.js';
import type { Reason } from '../reasons.js';

/**
 * jose failure -> reason, by `err.code` (jose util/errors.ts), never by message text.
 * Infrastructure failures are 503-class: our fetch wrapper turns every network problem into
 * AuthError('keys_unavailable'); jose's own JWKS fetch errors are mapped too in case one
 * slips through. Anything else unrecognised is a key the token cannot use: unknown_key.
 * The fast path (verify.ts) feeds it the jose-shaped failures of claims-check.ts, so both paths
 * share this one mapping.
 */
export function reasonForJoseError(err: unknown): Reason {
  if (isAuthError(err, 'keys_unavailable')) return 'keys_unavailable';
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const { claim, reason } = err as { claim?: string; reason?: string };
      if (claim === 'nbf' && reason === 'check_failed') return 'not_yet_valid';
      if (claim === 'aud') return 'bad_audience';
      if (claim === 'iss') return 'unknown_issuer';
      return 'bad_claims';
    }
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad_signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'bad_algorithm';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'malformed_token';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'unknown_key';
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
    case 'ERR_JOSE_GENERIC':
      return 'keys_unavailable';
    default:
      return 'unknown_key';
  }
}
