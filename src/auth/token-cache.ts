import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { detached } from './detached.js';
import type { Identity } from './identity.js';
import type { Reason } from './reasons.js';

/**
 * Verified tokens and recent failures.
 *
 * An entry belongs to the whole token: a lookup hits only when the presented token is the one
 * that was verified, header, payload and signature alike. The LRU is keyed by the token's
 * SHA-256 digest (32 bytes as a Latin-1 string), which stands for the whole token: finding two
 * tokens with one digest is as hard as forging a signature over SHA-256. Keeping the digest
 * instead of the token makes an entry a few hundred bytes whatever the token's size (tokens
 * are 0.3-2 kB; BENCHMARKS.md, memory).
 *
 * Hashing costs about a microsecond per lookup, so the most recent tokens are also kept whole
 * in a small direct-mapped front (FRONT_SLOTS): a token seen again is found with one string
 * comparison and no hashing (a worker or a browser polling with one token).
 *
 * Expiry is checked against the engine clock rather than lru-cache's own timer, so a fixed or
 * fake clock governs it.
 */
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

/**
 * The front: per slot, the token and identity of the last verification, or of a token found in
 * the LRU twice in a row for that slot (a token in use, not one of many taking turns: copying
 * each into the front would cost more than hashing it). The slot is chosen by the token's last
 * two characters (signature bytes). An entry evicted from the LRU may stay here until its slot
 * is reused; it is still a verified token, and expiry and the maximum TTL are checked on every
 * hit as for the LRU. Tokens here are copies (detached.ts), so 256 of them cost at most 256
 * tokens.
 */
const FRONT_SLOTS = 256;

function frontSlot(token: string): number {
  const n = token.length;
  return n < 2 ? 0 : (token.charCodeAt(n - 1) * 31 + token.charCodeAt(n - 2)) & (FRONT_SLOTS - 1);
}

/**
 * The cache key of a token: its SHA-256 as 32 Latin-1 characters. Tokens reach the cache as
 * request strings of one byte per character (and verified ones are ASCII), so their UTF-8
 * bytes, which are what is hashed, tell every two of them apart.
 */
export function tokenKey(token: string): string {
  return hash('sha256', token, 'binary');
}

export class TokenCache {
  private readonly positive: LRUCache<string, Identity> | null;
  /** Recently used tokens and their identities, by a hash of the token's last characters. */
  private readonly frontTokens: (string | null)[] = new Array<string | null>(FRONT_SLOTS).fill(null);
  private readonly frontIdentities: (Identity | null)[] = new Array<Identity | null>(FRONT_SLOTS).fill(null);
  /** Per slot, the key of the last token found in the LRU but not in the front. */
  private readonly frontCandidates: (string | null)[] = new Array<string | null>(FRONT_SLOTS).fill(null);
  private readonly negative: LRUCache<string, NegativeEntry> | null;
  private readonly maxTtlMs: number;
  private readonly negativeTtlMs: number;

  constructor(options: TokenCacheOptions) {
    this.maxTtlMs = options.maxTtlMs;
    this.negativeTtlMs = options.negativeTtlMs;
    this.positive =
      options.maxEntries > 0 && options.maxTtlMs > 0
        ? new LRUCache<string, Identity>({ max: options.maxEntries })
        : null;
    this.negative =
      options.negativeMaxEntries > 0 && options.negativeTtlMs > 0
        ? new LRUCache<string, NegativeEntry>({ max: options.negativeMaxEntries })
        : null;
  }

  /** The identity of `token` if it is in the front (no hashing): see get(). */
  getRecent(token: string, nowMs: number): Identity | typeof EXPIRED | typeof NOT_YET_VALID | undefined {
    const slot = frontSlot(token);
    if (this.frontTokens[slot] !== token) return undefined;
    const identity = this.frontIdentities[slot] as Identity;
    const state = this.validity(identity, nowMs);
    if (state === identity) return identity;
    this.frontTokens[slot] = null;
    this.frontIdentities[slot] = null;
    if (state !== NOT_YET_VALID) this.positive?.delete(tokenKey(token));
    return state;
  }

  /**
   * A cached identity still valid at `nowMs`; EXPIRED / NOT_YET_VALID when the token's own time
   * window says so (the entry is dropped for EXPIRED); undefined when absent or due for
   * re-verification. `key` is tokenKey(token). A second hit in a row in its front slot moves
   * the token into the front.
   */
  get(
    key: string,
    token: string,
    nowMs: number,
  ): Identity | typeof EXPIRED | typeof NOT_YET_VALID | undefined {
    const identity = this.positive?.get(key);
    if (identity === undefined) return undefined;
    const state = this.validity(identity, nowMs);
    if (state === identity) {
      const slot = frontSlot(token);
      if (this.frontCandidates[slot] === key) {
        this.frontTokens[slot] = detached(token);
        this.frontIdentities[slot] = identity;
        this.frontCandidates[slot] = null;
      } else {
        this.frontCandidates[slot] = key;
      }
    } else if (state !== NOT_YET_VALID) {
      this.positive?.delete(key);
    }
    return state;
  }

  private validity(
    identity: Identity,
    nowMs: number,
  ): Identity | typeof EXPIRED | typeof NOT_YET_VALID | undefined {
    if (nowMs >= identity.expiresAtMs) return EXPIRED;
    if (nowMs < identity.notBeforeMs) return NOT_YET_VALID;
    if (nowMs >= identity.cachedUntilMs) return undefined;
    return identity;
  }

  /** Caches a verified token's identity; `token` is a copy the front may keep (detached.ts). */
  set(key: string, token: string, identity: Identity, nowMs: number): void {
    if (this.positive === null) return;
    const untilMs = Math.min(identity.expiresAtMs, nowMs + this.maxTtlMs);
    if (untilMs <= nowMs) return;
    identity.cachedUntilMs = untilMs;
    this.positive.set(key, identity);
    const slot = frontSlot(token);
    this.frontTokens[slot] = token;
    this.frontIdentities[slot] = identity;
  }

  getNegative(key: string, nowMs: number): NegativeEntry | undefined {
    if (this.negative === null || this.negative.size === 0) return undefined;
    const entry = this.negative.get(key);
    if (entry === undefined) return undefined;
    if (nowMs >= entry.untilMs || nowMs < entry.untilMs - this.negativeTtlMs) {
      this.negative.delete(key);
      return undefined;
    }
    return entry;
  }

  /** Callers pass only 401-class reasons (reasons.ts NEGATIVE_CACHEABLE); never 503s. */
  setNegative(key: string, reason: Reason, iss: string | null, nowMs: number): void {
    this.negative?.set(key, { reason, iss, untilMs: nowMs + this.negativeTtlMs });
  }

  get size(): number {
    return this.positive?.size ?? 0;
  }

  get negativeSize(): number {
    return this.negative?.size ?? 0;
  }

  clear(): void {
    this.frontTokens.fill(null);
    this.frontIdentities.fill(null);
    this.frontCandidates.fill(null);
    this.positive?.clear();
    this.negative?.clear();
  }
}
