import type { ClientCertificate } from './client-cert.js';
import { type DecisionStatus, type Reason, STATUS_BY_REASON } from './reasons.js';

/** What HAProxy tells us about a request (names map 1:1 to SPOE message arguments). */
export interface AuthzRequest {
  method: string;
  /** Path without the query string, as HAProxy's `path` fetch returns it (not yet normalised). */
  path: string;
  query: string | null;
  host: string | null;
  /** The Authorization header value. */
  authorization: string | null;
  /** Value of the configured token cookie (HAProxy extracts it with req.cook(name)). */
  cookie: string | null;
  /** Value of the configured custom token header, if that source is enabled. */
  tokenHeader?: string | null;
  /** Client IP in text form (v4 or v6). */
  src: string | null;
  /** The client certificate HAProxy verified on this connection (SPOE args ssl_c_*), or null. */
  clientCert?: ClientCertificate | null;
  /** `X-Prefect-UI: true` was sent. */
  prefectUi?: boolean;
  /** HAProxy unique-id, for logs only. */
  id?: string | null;
  /**
   * The request body as HAProxy buffered it (`req.body`), sent only for the routes whose meaning
   * is in the body; null or absent otherwise. At most the configured bound (HAProxy cuts it).
   */
  body?: Uint8Array | null;
  /** The body length the client declared (`req.body_size`), to tell a cut body from a whole one. */
  bodySize?: number | null;
}

export type ClaimValue = string | number | boolean;
export type ForwardedClaims = ReadonlyArray<readonly [string, ClaimValue]>;
export type CacheOutcome = 'hit' | 'miss' | 'negative';

/** The answer, mapped 1:1 to HAProxy variables (txn.<prefix>.<field>, claim_<name>). */
export interface Decision {
  allow: boolean;
  status: DecisionStatus;
  reason: Reason;
  sub: string | null;
  iss: string | null;
  role: string | null;
  tag: string | null;
  rule: string | null;
  /** null when no token was verified (no token, or rejected before verification). */
  cache: CacheOutcome | null;
  claims: ForwardedClaims;
}

export const NO_CLAIMS: ForwardedClaims = Object.freeze([]);

/** Every Decision is built here so all of them share one object shape. */
export function makeDecision(
  reason: Reason,
  sub: string | null,
  iss: string | null,
  role: string | null,
  tag: string | null,
  rule: string | null,
  cache: CacheOutcome | null,
  claims: ForwardedClaims,
): Decision {
  return {
    allow: reason === 'ok',
    status: STATUS_BY_REASON[reason],
    reason,
    sub,
    iss,
    role,
    tag,
    rule,
    cache,
    claims,
  };
}
