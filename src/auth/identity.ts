import type { Claims } from './claims.js';
import type { ForwardedClaims } from './decision.js';
import type { DecisionMemo } from './decision-memo.js';

/** What a verified token grants; the value of the token cache. Never holds the token itself. */
export interface Identity {
  readonly issuerId: string;
  readonly iss: string;
  readonly sub: string | null;
  readonly kid: string | null;
  readonly alg: string;
  /** Clock (ms) at and after which the token is expired: exp (and iat + maxTokenAge) + tolerance. */
  readonly expiresAtMs: number;
  /** Clock (ms) before which the token is not yet valid: nbf - tolerance, or -Infinity. */
  readonly notBeforeMs: number;
  /** Our role names from the issuer's mapping (not yet filtered by the policy's roles). */
  readonly roles: readonly string[];
  /** Verified claims (rules may test them; never mutated). */
  readonly claims: Claims;
  readonly forwarded: ForwardedClaims;
  /** `cnf.x5t#S256` (RFC 8705): the token is valid only with this client certificate. */
  readonly certThumbprint: string | null;
  /** Role masks memoised for one policy generation (see CompiledPolicy.generation). */
  maskGeneration: number;
  directMask: number;
  effectiveMask: number;
  /**
   * Decisions already made for this identity, by request shape (engine.ts), valid for the
   * policy generation in maskGeneration; null until the first one.
   */
  decisions: DecisionMemo | null;
}
