/** Decision reasons: names are part of the HAProxy contract (txn.<prefix>.reason). */
export const REASONS = [
  'ok',
  'missing_token',
  'malformed_token',
  'unknown_issuer',
  'bad_algorithm',
  'bad_signature',
  'expired',
  'not_yet_valid',
  'bad_audience',
  'bad_claims',
  'unknown_key',
  'forbidden',
  'keys_unavailable',
  'bad_request',
  'body_missing',
  'body_too_large',
  'body_invalid',
  // Credentials from the keys file (src/auth/apikeys/): no match, revoked, hashing at capacity.
  'bad_credentials',
  'revoked',
  'credentials_busy',
  // A certificate-bound token (RFC 8705 cnf x5t#S256) without its client certificate.
  'cert_mismatch',
] as const;

export type Reason = (typeof REASONS)[number];
export type DecisionStatus = 200 | 401 | 403 | 503;

/**
 * HTTP status per reason. The contract only has 200/401/403/503, so an ambiguous or malformed
 * path (`bad_request`) is a 403: the request is refused whatever credentials come with it.
 * So are the body reasons (policy/body.ts): a route that needs its body judged came without it
 * (`body_missing`, an HAProxy config that does not send it), with more than the bound
 * (`body_too_large`), or with something that is not a JSON object (`body_invalid`).
 */
export const STATUS_BY_REASON: Readonly<Record<Reason, DecisionStatus>> = {
  ok: 200,
  missing_token: 401,
  malformed_token: 401,
  unknown_issuer: 401,
  bad_algorithm: 401,
  bad_signature: 401,
  expired: 401,
  not_yet_valid: 401,
  bad_audience: 401,
  bad_claims: 401,
  unknown_key: 401,
  forbidden: 403,
  keys_unavailable: 503,
  bad_request: 403,
  body_missing: 403,
  body_too_large: 403,
  body_invalid: 403,
  bad_credentials: 401,
  revoked: 401,
  credentials_busy: 503,
  cert_mismatch: 401,
};

/** Token failures worth remembering briefly: retrying them cannot succeed within seconds. */
export const NEGATIVE_CACHEABLE: ReadonlySet<Reason> = new Set<Reason>([
  'malformed_token',
  'unknown_issuer',
  'bad_algorithm',
  'bad_signature',
  'expired',
  'bad_audience',
  'bad_claims',
  'unknown_key',
]);
