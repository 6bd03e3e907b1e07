import type { Claims } from './claims.js';
import type { ForwardedClaims } from './decision.js';
import type { DecisionMemo } from './decision-memo.js';
import { decodeVerifiedPayload } from './verify/segments.js';

/**
 * What a verified token grants; the value of the token cache. Holds no signature: a cached
 * identity keeps only what decisions read (subject, roles, forwarded claims, validity window).
 *
 * The claims set itself is decoded again from the token's payload segment when a rule first
 * reads it (scope and claim conditions), not kept from verification: most policies never read
 * claims after the roles are derived, and a parsed claims set is the largest part of an entry
 * (BENCHMARKS.md, memory). The segment is a slice of the cached token, so it costs no copy.
 * Identities whose claims are not one token's payload (API keys, ALB tokens) hold them.
 */
export class Identity {
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
  readonly forwarded: ForwardedClaims;
  /** `cnf.x5t#S256` (RFC 8705): the token is valid only with this client certificate. */
  readonly certThumbprint: string | null;
  /** Role masks memoised for one policy generation (see CompiledPolicy.generation). */
  maskGeneration = 0;
  directMask = 0;
  effectiveMask = 0;
  /**
   * Decisions already made for this identity, by request shape (engine.ts), valid for the
   * policy generation in maskGeneration; null until the first one.
   */
  decisions: DecisionMemo | null = null;
  /** The claims, or the verified payload segment they are decoded from when first read. */
  private claimsSource: Claims | string;

  constructor(
    fields: Omit<Identity, 'claims' | 'maskGeneration' | 'directMask' | 'effectiveMask' | 'decisions'>,
    claims: Claims | string,
  ) {
    this.issuerId = fields.issuerId;
    this.iss = fields.iss;
    this.sub = fields.sub;
    this.kid = fields.kid;
    this.alg = fields.alg;
    this.expiresAtMs = fields.expiresAtMs;
    this.notBeforeMs = fields.notBeforeMs;
    this.roles = fields.roles;
    this.forwarded = fields.forwarded;
    this.certThumbprint = fields.certThumbprint;
    this.claimsSource = claims;
  }

  /** The verified claims set (rules may test it; never mutated). */
  get claims(): Claims {
    const source = this.claimsSource;
    if (typeof source !== 'string') return source;
    const decoded = decodeVerifiedPayload(source);
    this.claimsSource = decoded;
    return decoded;
  }
}
