/**
 * API keys: how one looks, how it is made, and the only form of it the agent ever stores.
 *
 * A key is `spoe_<id>_<secret>`: the prefix makes a leaked key recognizable (log scrubbers,
 * secret scanners); `<id>` is 12 base62 characters (71 bits) naming the entry in the keys
 * file, shown by `apikey list` and in logs; `<secret>` is 43 base62 characters (256 bits).
 * The keys file holds `sha256:<base64url of SHA-256(key)>`: with 256 bits of randomness a
 * fast hash is enough (nothing to brute-force), and checking costs about a microsecond.
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

export const API_KEY_PREFIX = 'spoe_';
export const KEY_ID_LENGTH = 12;
export const KEY_SECRET_LENGTH = 43;
/** `spoe_` + id + `_` + secret. */
export const API_KEY_LENGTH = API_KEY_PREFIX.length + KEY_ID_LENGTH + 1 + KEY_SECRET_LENGTH;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_ID = /^[0-9A-Za-z]{12}$/;
const KEY_SHAPE = /^spoe_[0-9A-Za-z]{12}_[0-9A-Za-z]{43}$/;
export const SHA256_HASH = /^sha256:[A-Za-z0-9_-]{43}$/;

/** `n` characters from crypto randomness, uniform over base62 (bytes >= 248 are redrawn). */
export function randomBase62(n: number): string {
  let out = '';
  while (out.length < n) {
    for (const b of randomBytes(n * 2)) {
      if (b >= 248) continue;
      out += BASE62[b % 62];
      if (out.length === n) break;
    }
  }
  return out;
}

export function newKeyId(): string {
  return randomBase62(KEY_ID_LENGTH);
}

export function isKeyId(value: string): boolean {
  return KEY_ID.test(value);
}

/** A fresh key for entry `id`. */
export function newApiKey(id: string = newKeyId()): { readonly id: string; readonly key: string } {
  if (!isKeyId(id)) throw new TypeError(`not a key id: ${id}`);
  return { id, key: `${API_KEY_PREFIX}${id}_${randomBase62(KEY_SECRET_LENGTH)}` };
}

/** True for anything that claims to be one of our keys (the prefix); it may still be malformed. */
export function looksLikeApiKey(token: string): boolean {
  return token.startsWith(API_KEY_PREFIX);
}

/** The entry id of a well-formed key, or null. */
export function apiKeyId(token: string): string | null {
  return token.length === API_KEY_LENGTH && KEY_SHAPE.test(token)
    ? token.slice(API_KEY_PREFIX.length, API_KEY_PREFIX.length + KEY_ID_LENGTH)
    : null;
}

/** One-shot `crypto.hash` (Node 20.12+): about half the cost of createHash() for short input. */
export function sha256Digest(value: string): Buffer {
  return hash('sha256', value, 'buffer');
}

/** What the keys file stores for a key. */
export function hashApiKey(key: string): string {
  return `sha256:${sha256Digest(key).toString('base64url')}`;
}

/** The digest in a stored `sha256:` hash (checked by SHA256_HASH beforehand). */
export function storedDigest(hash: string): Buffer {
  return Buffer.from(hash.slice('sha256:'.length), 'base64url');
}

/** Constant-time comparison of two digests of equal length. */
export function digestsEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
