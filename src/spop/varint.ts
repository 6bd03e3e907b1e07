/**
 * Varint ("peers encoding", reference §1.4, HAProxy intops.h `encode_varint`):
 *   i < 240: one byte i; else (i & 0xff) | 0xf0, i = (i - 240) >> 4, then 7-bit groups with the
 *   continuation bit while i >= 128, each step i = (i - 128) >> 7; last byte < 128.
 * Negative integers are sent as their u64 two's complement (10 bytes).
 */
import { Reader } from './reader.js';

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);

/** Byte length of the varint of a 64-bit integer (negative: two's complement, 10 bytes). */
export function varintLength(value: number | bigint): number {
  if (typeof value === 'bigint') {
    if (value < 0n) value = BigInt.asUintN(64, value);
    if (value < 240n) return 1;
    let v = (value - 240n) >> 4n;
    let n = 2;
    while (v >= 128n) {
      v = (v - 128n) >> 7n;
      n++;
    }
    return n;
  }
  if (value < 0) return 10;
  if (value < 240) return 1;
  if (value < 2288) return 2;
  if (value < 264432) return 3;
  if (value < 33818864) return 4;
  let v = Math.floor((value - 240) / 16);
  let n = 2;
  while (v >= 128) {
    v = Math.floor((v - 128) / 128);
    n++;
  }
  return n;
}

/**
 * Writes a non-negative safe integer at `off`, returns the offset after it. The caller
 * guarantees room (at most 10 bytes). Division instead of shifts: values may exceed 2^32.
 */
export function writeVarint(buf: Uint8Array, off: number, value: number): number {
  if (value < 240) {
    buf[off] = value;
    return off + 1;
  }
  if (value < 0x80000000) {
    buf[off++] = value | 0xf0;
    let v = (value - 240) >>> 4;
    while (v >= 128) {
      buf[off++] = v | 0x80;
      v = (v - 128) >>> 7;
    }
    buf[off] = v;
    return off + 1;
  }
  buf[off++] = (value % 256) | 0xf0;
  let v = Math.floor((value - 240) / 16);
  while (v >= 128) {
    buf[off++] = (v % 256) | 0x80;
    v = Math.floor((v - 128) / 128);
  }
  buf[off] = v;
  return off + 1;
}

/** Writes a u64 given as bigint (negative: int64, sent as two's complement). */
export function writeVarintBig(buf: Uint8Array, off: number, value: bigint): number {
  if (value < I64_MIN || value > U64_MAX) throw new TypeError(`varint out of 64-bit range: ${value}`);
  let v = BigInt.asUintN(64, value);
  if (v < 240n) {
    buf[off] = Number(v);
    return off + 1;
  }
  buf[off++] = Number(v & 0xffn) | 0xf0;
  v = (v - 240n) >> 4n;
  while (v >= 128n) {
    buf[off++] = Number(v & 0xffn) | 0x80;
    v = (v - 128n) >> 7n;
  }
  buf[off] = Number(v);
  return off + 1;
}

/**
 * Writes any 64-bit integer: number (safe integer, negative as two's complement) or bigint.
 * Throws `TypeError` for non-integers or values outside [-2^63, 2^64-1].
 */
export function writeVarintAny(buf: Uint8Array, off: number, value: number | bigint): number {
  if (typeof value === 'number') {
    if (value >= 0 && Number.isSafeInteger(value)) return writeVarint(buf, off, value);
    if (!Number.isSafeInteger(value)) throw new TypeError(`not a safe integer: ${value}`);
    return writeVarintBig(buf, off, BigInt(value));
  }
  return writeVarintBig(buf, off, value);
}

/** Encodes one varint into a fresh buffer (tests, non-hot paths). */
export function encodeVarint(value: number | bigint): Buffer {
  const tmp = Buffer.allocUnsafe(10);
  const n = writeVarintAny(tmp, 0, value);
  return Buffer.from(tmp.subarray(0, n));
}

/**
 * Decodes one varint at `offset`: a number up to 2^53-1, a bigint above.
 * Throws {@link SpopError} on truncation, more than 10 bytes, or a value above 2^64-1.
 */
export function decodeVarint(bytes: Uint8Array, offset = 0): { value: number | bigint; length: number } {
  const r = new Reader(bytes, offset, bytes.length);
  const value = r.varint();
  return { value, length: r.pos - offset };
}

/** Reinterprets a decoded u64 as int64 (two's complement); number when safe. */
export function toInt64(value: number | bigint): number | bigint {
  if (typeof value === 'number') return value; // < 2^53, so the sign bit is clear
  const s = BigInt.asIntN(64, value);
  return s >= -BigInt(Number.MAX_SAFE_INTEGER) && s <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(s) : s;
}
