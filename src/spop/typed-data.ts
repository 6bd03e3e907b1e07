/** TYPED-DATA (§1.5): decoding to {@link TypedValue}, encoding from {@link VarValue}. */
import { DATA_FLAG_TRUE, DataType } from './constants.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from './ip.js';
import { Reader } from './reader.js';
import { toInt64, writeVarint, writeVarintAny } from './varint.js';

type IntType =
  | typeof DataType.INT32
  | typeof DataType.UINT32
  | typeof DataType.INT64
  | typeof DataType.UINT64;

/**
 * A decoded value. Integers are numbers up to 2^53-1 and bigints beyond; INT32/INT64 are
 * signed (two's complement). IP addresses are in text form (`127.0.0.1`, `::1`). STRING is
 * decoded one char per byte (Latin-1: lossless, as Node's http does for headers); encoders
 * write JS strings as UTF-8, so only ASCII round-trips to the same string.
 */
export type TypedValue =
  | { readonly type: typeof DataType.NULL; readonly value: null }
  | { readonly type: typeof DataType.BOOL; readonly value: boolean }
  | { readonly type: IntType; readonly value: number | bigint }
  | { readonly type: typeof DataType.IPV4 | typeof DataType.IPV6; readonly value: string }
  | { readonly type: typeof DataType.STRING; readonly value: string }
  | { readonly type: typeof DataType.BINARY; readonly value: Uint8Array };

/** Explicitly typed value for SET-VAR / KV entries (IPs, int widths other than INT64). */
export type ExplicitValue =
  | { readonly type: typeof DataType.NULL; readonly value?: null }
  | { readonly type: typeof DataType.BOOL; readonly value: boolean }
  | { readonly type: IntType; readonly value: number | bigint }
  | { readonly type: typeof DataType.IPV4 | typeof DataType.IPV6; readonly value: string | Uint8Array }
  | { readonly type: typeof DataType.STRING; readonly value: string }
  | { readonly type: typeof DataType.BINARY; readonly value: Uint8Array };

/**
 * What an action may carry: `boolean` → BOOL, `number` (safe integer) → INT64, `bigint` →
 * INT64 (UINT64 when above 2^63-1), `string` → STRING, `Uint8Array` → BINARY, `null` → NULL
 * (HAProxy then unsets the variable), or an {@link ExplicitValue}.
 */
export type VarValue = boolean | number | bigint | string | Uint8Array | null | ExplicitValue;

const I64_MAX = (1n << 63n) - 1n;

/** Decodes a value validated by {@link Reader.typed}. */
export function decodeTyped(buf: Uint8Array, typeByte: number, start: number, end: number): TypedValue {
  const type = typeByte & 0x0f;
  switch (type) {
    case DataType.NULL:
      return { type, value: null };
    case DataType.BOOL:
      return { type, value: (typeByte & 0xf0) === DATA_FLAG_TRUE };
    case DataType.INT32:
    case DataType.INT64:
      return { type, value: toInt64(new Reader(buf, start, end).varint()) };
    case DataType.UINT32:
    case DataType.UINT64:
      return { type, value: new Reader(buf, start, end).varint() };
    case DataType.IPV4:
      return { type, value: formatIpv4(buf, start) };
    case DataType.IPV6:
      return { type, value: formatIpv6(buf, start) };
    case DataType.STRING:
      return { type, value: Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1') };
    case DataType.BINARY:
      // A copy: Buffer#slice would be a view that keeps (and exposes) the whole chunk.
      return { type, value: Uint8Array.prototype.slice.call(buf, start, end) };
    default:
      throw new RangeError(`reserved data type ${type}`);
  }
}

/** Upper bound of the encoded size of `v` (type byte included). Throws TypeError on misuse. */
export function typedSize(v: VarValue): number {
  switch (typeof v) {
    case 'boolean':
      return 1;
    case 'number':
    case 'bigint':
      return 11;
    case 'string':
      return 11 + 3 * v.length;
    case 'object':
      if (v === null) return 1;
      if (v instanceof Uint8Array) return 11 + v.length;
      switch (v.type) {
        case DataType.IPV4:
          return 5;
        case DataType.IPV6:
          return 17;
        case DataType.STRING:
          return typeof v.value === 'string' ? 11 + 3 * v.value.length : 0;
        case DataType.BINARY:
          return v.value instanceof Uint8Array ? 11 + v.value.length : 0;
        default:
          return 11;
      }
    default:
      throw new TypeError(`unsupported value type: ${typeof v}`);
  }
}

/**
 * Writes `s` as varint length + UTF-8 bytes. Room for `10 + 3 * s.length` bytes must exist.
 * Short ASCII strings are copied by hand: cheaper than a native call.
 */
export function writeStringData(buf: Buffer, off: number, s: string): number {
  const len = s.length;
  if (len < 80) {
    // <= 237 UTF-8 bytes: the length varint is one byte.
    let p = off + 1;
    let i = 0;
    if (len <= 32) {
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[p++] = c;
      }
    }
    if (i < len) p = off + 1 + buf.write(s, off + 1, 'utf8');
    buf[off] = p - off - 1;
    return p;
  }
  const n = Buffer.byteLength(s, 'utf8');
  const p = writeVarint(buf, off, n);
  return p + buf.write(s, p, n, 'utf8');
}

function writeBytes(buf: Buffer, off: number, bytes: Uint8Array): number {
  const p = writeVarint(buf, off, bytes.length);
  buf.set(bytes, p);
  return p + bytes.length;
}

function checkInt(v: unknown): number | bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  throw new TypeError(`integer value must be a safe integer or a bigint, got ${String(v)}`);
}

const INT_RANGES: Record<IntType, readonly [bigint, bigint]> = {
  [DataType.INT32]: [-(1n << 31n), (1n << 31n) - 1n],
  [DataType.UINT32]: [0n, (1n << 32n) - 1n],
  [DataType.INT64]: [-(1n << 63n), I64_MAX],
  [DataType.UINT64]: [0n, (1n << 64n) - 1n],
};

function writeIp(buf: Buffer, off: number, v: string | Uint8Array, size: 4 | 16): number {
  const bytes = typeof v === 'string' ? (size === 4 ? parseIpv4(v) : parseIpv6(v)) : v;
  if (!(bytes instanceof Uint8Array) || bytes.length !== size) {
    throw new TypeError(`invalid IPv${size === 4 ? 4 : 6} address: ${String(v)}`);
  }
  buf.set(bytes, off);
  return off + size;
}

function writeExplicit(buf: Buffer, off: number, v: ExplicitValue): number {
  switch (v.type) {
    case DataType.NULL:
      buf[off] = DataType.NULL;
      return off + 1;
    case DataType.BOOL:
      if (typeof v.value !== 'boolean') throw new TypeError('BOOL value must be a boolean');
      buf[off] = v.value ? DATA_FLAG_TRUE | DataType.BOOL : DataType.BOOL;
      return off + 1;
    case DataType.INT32:
    case DataType.UINT32:
    case DataType.INT64:
    case DataType.UINT64: {
      const n = checkInt(v.value);
      const [min, max] = INT_RANGES[v.type];
      const b = BigInt(n);
      if (b < min || b > max) throw new TypeError(`value ${n} out of range for data type ${v.type}`);
      buf[off] = v.type;
      return writeVarintAny(buf, off + 1, n);
    }
    case DataType.IPV4:
      buf[off] = DataType.IPV4;
      return writeIp(buf, off + 1, v.value, 4);
    case DataType.IPV6:
      buf[off] = DataType.IPV6;
      return writeIp(buf, off + 1, v.value, 16);
    case DataType.STRING:
      if (typeof v.value !== 'string') throw new TypeError('STRING value must be a string');
      buf[off] = DataType.STRING;
      return writeStringData(buf, off + 1, v.value);
    case DataType.BINARY:
      if (!(v.value instanceof Uint8Array)) throw new TypeError('BINARY value must be a Uint8Array');
      buf[off] = DataType.BINARY;
      return writeBytes(buf, off + 1, v.value);
    default:
      throw new TypeError(`unsupported data type ${String((v as { type: unknown }).type)}`);
  }
}

/** Writes TYPED-DATA for `v` at `off` (room from {@link typedSize}); returns the new offset. */
export function writeTyped(buf: Buffer, off: number, v: VarValue): number {
  switch (typeof v) {
    case 'boolean':
      buf[off] = v ? DATA_FLAG_TRUE | DataType.BOOL : DataType.BOOL;
      return off + 1;
    case 'number':
      if (!Number.isSafeInteger(v)) throw new TypeError(`number value must be a safe integer, got ${v}`);
      buf[off] = DataType.INT64;
      return v >= 0 ? writeVarint(buf, off + 1, v) : writeVarintAny(buf, off + 1, v);
    case 'bigint':
      if (v < -(1n << 63n) || v > (1n << 64n) - 1n) throw new TypeError(`bigint out of 64-bit range: ${v}`);
      buf[off] = v > I64_MAX ? DataType.UINT64 : DataType.INT64;
      return writeVarintAny(buf, off + 1, v);
    case 'string':
      buf[off] = DataType.STRING;
      return writeStringData(buf, off + 1, v);
    case 'object':
      if (v === null) {
        buf[off] = DataType.NULL;
        return off + 1;
      }
      if (v instanceof Uint8Array) {
        buf[off] = DataType.BINARY;
        return writeBytes(buf, off + 1, v);
      }
      return writeExplicit(buf, off, v);
    default:
      throw new TypeError(`unsupported value type: ${typeof v}`);
  }
}
