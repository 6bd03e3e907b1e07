import { LRUCache } from 'lru-cache';
import type { Identity } from './identity.js';
import type { Reason } from './reasons.js';

/**
 * Verified tokens and recent failures.
 *
 * An entry belongs to the whole token: it stores the token and a lookup hits only when the
 * presented token is equal to it, header, payload and signature alike. The Map key is the
 * token's last 32 characters (signature bytes) because V8 hashes a freshly received string on
 * every lookup: ~1 us for an 800-byte token, most of the cost of a cached decision, against
 * ~50 ns for 32 characters plus a string comparison. Two different tokens with the same key
 * just miss (only forgeries reusing a signature do that, and they never enter the positive
 * cache because they fail verification).
 *
 * Expiry is checked against the engine clock rather than lru-cache's own timer, so a fixed or
 * fake clock governs it.
 */
interface Positive {
  readonly token: string;
  readonly identity: Identity;
  /** Re-verify at/after this (min of token expiry and the configured max TTL). */
  readonly untilMs: number;
}

export interface NegativeEntry {
  readonly token: string;
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

const KEY_CHARS = 32;

/**
 * A direct-mapped front of the positive cache, indexed by the token's last two characters
 * (signature bytes): a token seen again is found with one string comparison, without slicing
 * its key or touching the LRU's order (~0.3 us per cached decision). An entry evicted from the
 * LRU may stay here until its slot is reused; it is still a verified token, and expiry and the
 * maximum TTL are checked on every hit as for the LRU.
 */
const FRONT_SLOTS = 256;

function frontSlot(token: string): number {
  const n = token.length;
  return n < 2 ? 0 : (token.charCodeAt(n - 1) * 31 + token.charCodeAt(n - 2)) & (FRONT_SLOTS - 1);
}

/** Lookup key for a token (see above); equality of the full token is checked on every hit. */
export function tokenKey(token: string): string {
  return token.length <= KEY_CHARS * 2 ? token : token.slice(token.length - KEY_CHARS);
}

export class TokenCache {
  private readonly positive: LRUCache<string, Positive> | null;
  /** Recently used entries by a hash of the token's last characters (see FRONT_SLOTS). */
  private readonly front: (Positive | null)[] = new Array<Positive | null>(FRONT_SLOTS).fill(null);
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
    const slot = frontSlot(token);
    let entry = this.front[slot];
    if (entry === null || entry === undefined || entry.token !== token) {
      entry = this.positive?.get(tokenKey(token));
      if (entry === undefined || entry.token !== token) return undefined;
      this.front[slot] = entry;
    }
    if (nowMs >= entry.identity.expiresAtMs) {
      this.drop(entry, slot);
      return EXPIRED;
    }
    if (nowMs < entry.identity.notBeforeMs) return NOT_YET_VALID;
    if (nowMs >= entry.untilMs) {
      this.drop(entry, slot);
      return undefined;
    }
    return entry.identity;
  }

  set(key: string, token: string, identity: Identity, nowMs: number): void {
    if (this.positive === null) return;
    const untilMs = Math.min(identity.expiresAtMs, nowMs + this.maxTtlMs);
    if (untilMs <= nowMs) return;
    const entry: Positive = { token, identity, untilMs };
    this.positive.set(key, entry);
    this.front[frontSlot(token)] = entry;
  }

  private drop(entry: Positive, slot: number): void {
    const key = tokenKey(entry.token);
    if (this.positive?.peek(key) === entry) this.positive.delete(key);
    if (this.front[slot] === entry) this.front[slot] = null;
  }

  getNegative(key: string, token: string, nowMs: number): NegativeEntry | undefined {
    if (this.negative === null || this.negative.size === 0) return undefined;
    const entry = this.negative.get(key);
    if (entry === undefined || entry.token !== token) return undefined;
    if (nowMs >= entry.untilMs || nowMs < entry.untilMs - this.negativeTtlMs) {
      this.negative.delete(key);
      return undefined;
    }
    return entry;
  }

  /** Callers pass only 401-class reasons (reasons.ts NEGATIVE_CACHEABLE); never 503s. */
  setNegative(key: string, token: string, reason: Reason, iss: string | null, nowMs: number): void {
    this.negative?.set(key, { token, reason, iss, untilMs: nowMs + this.negativeTtlMs });
  }

  get size(): number {
    return this.positive?.size ?? 0;
  }

  get negativeSize(): number {
    return this.negative?.size ?? 0;
  }

  clear(): void {
    this.front.fill(null);
    this.positive?.clear();
    this.negative?.clear();
  }
}
