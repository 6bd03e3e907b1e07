import type { Claims } from './claims.js';
import type { ForwardedClaims } from './decision.js';
import type { DecisionMemo } from './decision-memo.js';

/** No claims: what a cached identity keeps for a policy that reads none. */
const NO_CLAIMS: Claims = Object.freeze({});

/**
 * What a verified token grants; the value of the token cache. Holds neither the token nor its
 * signature: a cached identity keeps only what decisions read (subject, roles, forwarded
 * claims, validity window), and of the claims set only the claims the policy's rules read
 * (keepOnly(): scope and claim conditions; most policies read none once the roles are
 * derived). A parsed claims set would otherwise be the largest part of an entry
 * (BENCHMARKS.md, memory).
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
  /** While in the token cache: clock (ms) at which it is verified again (token-cache.ts). */
  cachedUntilMs = 0;
  /** The claims set, or after keepOnly() the claims named in `kept`. */
  private kept: Claims;
  /** The top-level claim names kept, or null: the whole claims set. */
  private keptNames: readonly string[] | null = null;

  constructor(
    fields: Omit<
      Identity,
      | 'claims'
      | 'maskGeneration'
      | 'directMask'
      | 'effectiveMask'
      | 'decisions'
      | 'cachedUntilMs'
      | 'keepOnly'
      | 'holdsClaims'
    >,
    claims: Claims,
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
    this.kept = claims;
  }

  /** The verified claims set, or what keepOnly() kept of it (rules may test it; never mutated). */
  get claims(): Claims {
    return this.kept;
  }

  /**
   * Drops every claim but the top-level `names` (CompiledPolicy.claimsRead, sorted and shared
   * per policy): what the token cache keeps. A later policy that reads other claims verifies
   * the token again (holdsClaims()).
   */
  keepOnly(names: readonly string[]): void {
    if (this.keptNames !== null) return;
    const all = this.kept;
    let kept = NO_CLAIMS;
    for (const name of names) {
      if (!Object.hasOwn(all, name)) continue;
      if (kept === NO_CLAIMS) kept = Object.create(null) as Claims;
      (kept as Record<string, unknown>)[name] = all[name];
    }
    this.kept = kept;
    this.keptNames = names;
  }

  /** Whether the claims named in `names` (as for keepOnly) are all here, present or absent. */
  holdsClaims(names: readonly string[]): boolean {
    const kept = this.keptNames;
    if (kept === null || kept === names || names.length === 0) return true;
    for (const name of names) if (!kept.includes(name)) return false;
    return true;
  }
}
