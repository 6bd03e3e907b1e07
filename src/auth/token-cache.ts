import { LRUCache } from 'lru-cache';
import type { Identity } from './identity.js';
import type { Reason } from './reasons.js';

/**
 * Verified tokens and recent failures, keyed by the full token string (the key must cover the
 * whole token: header and payload as well as the signature). Expiry is checked here against
 * the engine clock rather than lru-cache's own timer, so a fixed or fake clock governs it.
 */
interface Positive {
  readonly identity: Identity;
  /** Re-verify at/after this (min of token expiry and the configured max TTL). */
  readonly untilMs: number;
}

export interface NegativeEntry {
  readonly reason: Reason;
  readonly iss: string | null;
  readonly untilMs: number;
}

export const EXPIRED = 'expired' as const;
export const NOT_YET_VALID = 'not_yet_valid' as const;

export interface TokenCacheOptions {
  readonly maxEntries: number;
  readonly maxTtlMs: number;
  readonly negativeTtlMs: number;
  readonly negativeMaxEntries: number;
}

export class TokenCache {
  private readonly positive: LRUCache<string, Positive> | null;
  private readonly negative: LRUCache<string, NegativeEntry> | null;
  private readonly maxTtlMs: number;
  private readonly negativeTtlMs: number;

  constructor(options: TokenCacheOptions) {
    this.maxTtlMs = options.maxTtlMs;
    this.negativeTtlMs = options.negativeTtlMs;
    this.positive =
      options.maxEntries > 0 && options.maxTtlMs > 0
        ? new LRUCache<string, Positive>({ max: options.maxEntries })
        : null;
    this.negative =
      options.negativeMaxEntries > 0 && options.negativeTtlMs > 0
        ? new LRUCache<string, NegativeEntry>({ max: options.negativeMaxEntries })
        : null;
  }

  /**
   * A cached identity still valid at `nowMs`; EXPIRED / NOT_YET_VALID when the token's own time
   * window says so (the entry is dropped for EXPIRED); undefined when absent or due for
   * re-verification.
   */
  get(token: string, nowMs: number): Identity | typeof EXPIRED | typeof NOT_YET_VALID | undefined {
    const entry = this.positive?.get(token);
    if (entry === undefined) return undefined;
    if (nowMs >= entry.identity.expiresAtMs) {
      this.positive?.delete(token);
      return EXPIRED;
    }
    if (nowMs < entry.identity.notBeforeMs) return NOT_YET_VALID;
    if (nowMs >= entry.untilMs) {
      this.positive?.delete(token);
      return undefined;
    }
    return entry.identity;
  }

  set(token: string, identity: Identity, nowMs: number): void {
    if (this.positive === null) return;
    const untilMs = Math.min(identity.expiresAtMs, nowMs + this.maxTtlMs);
    if (untilMs > nowMs) this.positive.set(token, { identity, untilMs });
  }

  getNegative(token: string, nowMs: number): NegativeEntry | undefined {
    const entry = this.negative?.get(token);
    if (entry === undefined) return undefined;
    if (nowMs >= entry.untilMs || nowMs < entry.untilMs - this.negativeTtlMs) {
      this.negative?.delete(token);
      return undefined;
    }
    return entry;
  }

  /** Callers pass only 401-class reasons (reasons.ts NEGATIVE_CACHEABLE); never 503s. */
  setNegative(token: string, reason: Reason, iss: string | null, nowMs: number): void {
    this.negative?.set(token, { reason, iss, untilMs: nowMs + this.negativeTtlMs });
  }

  get size(): number {
    return this.positive?.size ?? 0;
  }

  get negativeSize(): number {
    return this.negative?.size ?? 0;
  }

  clear(): void {
    this.positive?.clear();
    this.negative?.clear();
  }
}
