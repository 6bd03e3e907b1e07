/**
 * Reads an agent frame header and, for an ACK, its LIST-OF-ACTIONS (reference §1.9), keeping
 * only what the load script checks: `allow`, `status`, `reason` and `cache` (names as the
 * agent sends them, without HAProxy's var-prefix). Every other action is still validated
 * (scope, name, typed data), so a malformed ACK is an error, not a silent pass. Nothing is
 * allocated per frame except the reason and cache strings.
 */

/** Why a frame could not be read. */
export class AckFormatError extends Error {
  override name = 'AckFormatError';
}

const ACTION_SET_VAR = 1;
const ACTION_UNSET_VAR = 2;
const MAX_SCOPE = 4;
/** BOOL value: flag bit 0 of the type byte (0x11 true, 0x01 false). */
const BOOL_TRUE = 0x10;

// Var names compared as bytes: allow, status, reason, cache.
const N_ALLOW = Buffer.from('allow');
const N_STATUS = Buffer.from('status');
const N_REASON = Buffer.from('reason');
const N_CACHE = Buffer.from('cache');

function nameIs(buf: Uint8Array, start: number, len: number, name: Buffer): boolean {
  if (len !== name.length) return false;
  for (let i = 0; i < len; i++) if (buf[start + i] !== name[i]) return false;
  return true;
}

export class AckReader {
  type = 0;
  flags = 0;
  streamId = 0;
  frameId = 0;
  /** Payload start within the frame buffer (for frames other than ACK). */
  payloadStart = 0;
  /** -1 absent, 0 false, 1 true. */
  allow = -1;
  /** -1 absent. */
  status = -1;
  reason: string | null = null;
  cache: string | null = null;
  actions = 0;
  private pos = 0;
  private end = 0;
  private buf: Uint8Array = new Uint8Array(0);

  /** Reads the frame body `buf[start, end)`. Throws {@link AckFormatError}. */
  read(buf: Uint8Array, start: number, end: number): void {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    if (end - start < 7) throw new AckFormatError('frame shorter than 7 bytes');
    this.type = buf[start]!;
    this.flags =
      ((buf[start + 1]! << 24) | (buf[start + 2]! << 16) | (buf[start + 3]! << 8) | buf[start + 4]!) >>> 0;
    this.pos = start + 5;
    this.streamId = this.varint();
    this.frameId = this.varint();
    this.payloadStart = this.pos;
    this.allow = -1;
    this.status = -1;
    this.reason = null;
    this.cache = null;
    this.actions = 0;
    if (this.type === 103) this.readActions();
  }

  /** Varint of §1.4 (additive, 4 then 7 bits per byte); values above 2^48 are refused. */
  private varint(): number {
    const buf = this.buf;
    let p = this.pos;
    if (p >= this.end) throw new AckFormatError('truncated varint');
    let b = buf[p++]!;
    if (b < 240) {
      this.pos = p;
      return b;
    }
    let v = b;
    let mul = 16;
    for (let i = 1; i < 7; i++) {
      if (p >= this.end) throw new AckFormatError('truncated varint');
      b = buf[p++]!;
      v += b * mul;
      if (b < 128) {
        this.pos = p;
        return v;
      }
      mul *= 128;
    }
    throw new AckFormatError('varint above 2^48');
  }

  private byte(): number {
    if (this.pos >= this.end) throw new AckFormatError('truncated action');
    return this.buf[this.pos++]!;
  }

  private readActions(): void {
    while (this.pos < this.end) {
      const type = this.byte();
      const nbArgs = this.byte();
      if (!((type === ACTION_SET_VAR && nbArgs === 3) || (type === ACTION_UNSET_VAR && nbArgs === 2))) {
        throw new AckFormatError(`unknown action ${type} with ${nbArgs} args`);
      }
      if (this.byte() > MAX_SCOPE) throw new AckFormatError('unknown variable scope');
      const nameLen = this.varint();
      const nameStart = this.pos;
      if (nameLen === 0 || nameLen > this.end - nameStart) throw new AckFormatError('bad variable name');
      this.pos += nameLen;
      this.actions++;
      if (type === ACTION_SET_VAR) this.value(nameStart, nameLen);
    }
  }

  /** One TYPED-DATA (§1.5), recorded when its name is one we check. */
  private value(nameStart: number, nameLen: number): void {
    const buf = this.buf;
    const t = this.byte();
    switch (t & 0x0f) {
      case 0: // NULL
        return;
      case 1: // BOOL
        if (nameIs(buf, nameStart, nameLen, N_ALLOW)) this.allow = (t & 0xf0) === BOOL_TRUE ? 1 : 0;
        return;
      case 2:
      case 3:
      case 4:
      case 5: {
        const v = this.varint();
        if (nameIs(buf, nameStart, nameLen, N_STATUS)) this.status = v;
        return;
      }
      case 6:
      case 7: {
        const n = (t & 0x0f) === 6 ? 4 : 16;
        if (n > this.end - this.pos) throw new AckFormatError('truncated address');
        this.pos += n;
        return;
      }
      case 8:
      case 9: {
        const n = this.varint();
        const s = this.pos;
        if (n > this.end - s) throw new AckFormatError('truncated string');
        this.pos += n;
        if ((t & 0x0f) !== 8) return;
        if (nameIs(buf, nameStart, nameLen, N_REASON)) this.reason = latin1(buf, s, s + n);
        else if (nameIs(buf, nameStart, nameLen, N_CACHE)) this.cache = latin1(buf, s, s + n);
        return;
      }
      default:
        throw new AckFormatError(`reserved data type ${t & 0x0f}`);
    }
  }
}

/**
 * The Latin-1 text of `buf[start, end)`. Reasons and cache outcomes are a handful of short
 * strings that repeat in every ACK: those come from a small direct-mapped table (compared byte
 * for byte) instead of a Buffer view and a native decode per ACK, which made ACK reading the
 * larger part of the generator's work.
 */
function latin1(buf: Uint8Array, start: number, end: number): string {
  const len = end - start;
  if (len === 0 || len > MAX_INTERNED) return decode(buf, start, end);
  const slot = (len * 7 + buf[start]! * 3 + buf[end - 1]!) & (INTERN_SLOTS - 1);
  const known = internBytes[slot]!;
  if (known.length === len) {
    let i = 0;
    while (i < len && buf[start + i] === known[i]) i++;
    if (i === len) return internStrings[slot]!;
  }
  const text = decode(buf, start, end);
  internBytes[slot] = Uint8Array.prototype.slice.call(buf, start, end);
  internStrings[slot] = text;
  return text;
}

const MAX_INTERNED = 32;
const INTERN_SLOTS = 64;
const internBytes: Uint8Array[] = new Array<Uint8Array>(INTERN_SLOTS).fill(new Uint8Array(0));
const internStrings: string[] = new Array<string>(INTERN_SLOTS).fill('');

function decode(buf: Uint8Array, start: number, end: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1');
}
