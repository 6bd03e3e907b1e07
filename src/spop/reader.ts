import { DataType, MAX_VARINT_BYTES, Status } from './constants.js';
import { invalid, SpopError, SpopErrorCode, truncated } from './errors.js';

const U64_MAX = (1n << 64n) - 1n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Bounds-checked cursor over `buf[pos, end)`. Every read checks `end` and throws a
 * {@link SpopError} (status 4) instead of returning `undefined` or clamping. One instance per
 * connection is reused (`reset`), so the hot path allocates nothing.
 */
export class Reader {
  buf: Uint8Array;
  pos: number;
  end: number;
  /** Set by {@link typed}: the type byte (type in the low nibble, flags in the high one). */
  typeByte: number;
  /** Set by {@link typed}: payload bounds (the string bytes without their length varint). */
  dataStart: number;
  dataEnd: number;

  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.typeByte = 0;
    this.dataStart = 0;
    this.dataEnd = 0;
  }

  reset(buf: Uint8Array, pos: number, end: number): this {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    return this;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  u8(): number {
    if (this.pos >= this.end) throw truncated('byte');
    return this.buf[this.pos++]!;
  }

  u32(): number {
    const p = this.pos;
    if (p + 4 > this.end) throw truncated('u32');
    const b = this.buf;
    this.pos = p + 4;
    return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }

  /** Advances over `n` bytes, returning the start offset. */
  skip(n: number): number {
    const p = this.pos;
    if (n > this.end - p) throw truncated('bytes');
    this.pos = p + n;
    return p;
  }

  /**
   * Varint of §1.4: `v = b0; if b0 < 240 done; v += b << shift (4, 11, 18, ...) while b >= 128`.
   * Returns a number up to 2^53-1 and a bigint above; at most 10 bytes, at most 2^64-1.
   */
  varint(): number | bigint {
    const buf = this.buf;
    const end = this.end;
    const start = this.pos;
    if (start >= end) throw truncated('varint');
    let b = buf[start]!;
    if (b < 240) {
      this.pos = start + 1;
      return b;
    }
    // Up to 7 bytes the sum stays below 2^48: exact in a double.
    let v = b;
    let mul = 16;
    let p = start + 1;
    const fastEnd = start + 7;
    while (p < fastEnd) {
      if (p >= end) throw truncated('varint');
      b = buf[p++]!;
      v += b * mul;
      if (b < 128) {
        this.pos = p;
        return v;
      }
      mul *= 128;
    }
    return this.varintSlow(start);
  }

  private varintSlow(start: number): number | bigint {
    const buf = this.buf;
    let p = start;
    let v = BigInt(buf[p++]!);
    let shift = 4n;
    for (let i = 1; ; i++) {
      if (i >= MAX_VARINT_BYTES) {
        throw new SpopError(SpopErrorCode.VARINT, Status.INVALID, 'varint longer than 10 bytes');
      }
      if (p >= this.end) throw truncated('varint');
      const b = buf[p++]!;
      v += BigInt(b) << shift;
      shift += 7n;
      if (b < 128) break;
    }
    if (v > U64_MAX) throw new SpopError(SpopErrorCode.VARINT, Status.INVALID, 'varint above 2^64-1');
    this.pos = p;
    return v <= MAX_SAFE ? Number(v) : v;
  }

  /** A varint used as a byte count: must be a number and fit in what is left. */
  length(): number {
    const n = this.varint();
    if (typeof n !== 'number' || n > this.end - this.pos) throw truncated('length');
    return n;
  }

  /**
   * Validates one TYPED-DATA (§1.5) and records its type byte and payload bounds in
   * `typeByte`, `dataStart`, `dataEnd`. Integers keep their varint bytes as payload.
   */
  typed(): void {
    const t = this.u8();
    this.typeByte = t;
    switch (t & 0x0f) {
      case DataType.NULL:
      case DataType.BOOL:
        this.dataStart = this.dataEnd = this.pos;
        return;
      case DataType.INT32:
      case DataType.UINT32:
      case DataType.INT64:
      case DataType.UINT64:
        this.dataStart = this.pos;
        this.varint();
        this.dataEnd = this.pos;
        return;
      case DataType.IPV4:
        this.dataStart = this.skip(4);
        this.dataEnd = this.pos;
        return;
      case DataType.IPV6:
        this.dataStart = this.skip(16);
        this.dataEnd = this.pos;
        return;
      case DataType.STRING:
      case DataType.BINARY: {
        const n = this.length();
        this.dataStart = this.skip(n);
        this.dataEnd = this.pos;
        return;
      }
      default:
        throw invalid(`reserved data type ${t & 0x0f}`);
    }
  }
}
