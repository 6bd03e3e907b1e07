/**
 * Reads an agent frame header and, for an ACK, its LIST-OF-ACTIONS (reference §1.9), keeping
 * only what the load script checks: `allow`, `status`, `reason` and `cache` (names as the
 * agent sends them, without HAProxy's var-prefix). Every other action is still validated
 * (scope, name, typed data), so a malformed ACK is an error, not a silent pass. Nothing is
 * allocated per frame except the reason and cache strings.
 */

import { AgentError } from '../errors.js';
import { Reader, SpopError } from '../spop/index.js';

/** Why a frame from the agent could not be read (`cause`: the codec's SpopError, if any). */
export class AckFormatError extends AgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_LOAD_ACK_FORMAT', message, options);
  }
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
  /** The protocol layer's bounds-checked cursor: every read throws on a truncated frame. */
  private readonly r = new Reader(new Uint8Array(0));

  /** Reads the frame body `buf[start, end)`. Throws {@link AckFormatError}. */
  read(buf: Uint8Array, start: number, end: number): void {
    if (end - start < 7) throw new AckFormatError('frame shorter than 7 bytes');
    this.allow = -1;
    this.status = -1;
    this.reason = null;
    this.cache = null;
    this.actions = 0;
    const r = this.r.reset(buf, start, end);
    try {
      this.type = r.u8();
      this.flags = r.u32();
      this.streamId = this.id();
      this.frameId = this.id();
      this.payloadStart = r.pos;
      if (this.type === 103) this.readActions();
    } catch (err) {
      if (err instanceof SpopError) throw new AckFormatError(err.message, { cause: err });
      throw err;
    }
  }

  /** Stream and frame ids are compared with the numbers the generator sent. */
  private id(): number {
    const v = this.r.varint();
    if (typeof v !== 'number') throw new AckFormatError('id above 2^53');
    return v;
  }

  private readActions(): void {
    const r = this.r;
    while (r.pos < r.end) {
      const type = r.u8();
      const nbArgs = r.u8();
      if (!((type === ACTION_SET_VAR && nbArgs === 3) || (type === ACTION_UNSET_VAR && nbArgs === 2))) {
        throw new AckFormatError(`unknown action ${type} with ${nbArgs} args`);
      }
      if (r.u8() > MAX_SCOPE) throw new AckFormatError('unknown variable scope');
      const nameLen = r.length();
      if (nameLen === 0) throw new AckFormatError('bad variable name');
      const nameStart = r.skip(nameLen);
      this.actions++;
      if (type === ACTION_SET_VAR) this.value(nameStart, nameLen);
    }
  }

  /** One TYPED-DATA (§1.5), recorded when its name is one we check. */
  private value(nameStart: number, nameLen: number): void {
    const r = this.r;
    const buf = r.buf;
    r.typed();
    const t = r.typeByte;
    switch (t & 0x0f) {
      case 1: // BOOL
        if (nameIs(buf, nameStart, nameLen, N_ALLOW)) this.allow = (t & 0xf0) === BOOL_TRUE ? 1 : 0;
        return;
      case 2:
      case 3:
      case 4:
      case 5:
        if (nameIs(buf, nameStart, nameLen, N_STATUS)) {
          r.pos = r.dataStart;
          this.status = Number(r.varint());
        }
        return;
      case 8:
        if (nameIs(buf, nameStart, nameLen, N_REASON)) this.reason = latin1(buf, r.dataStart, r.dataEnd);
        else if (nameIs(buf, nameStart, nameLen, N_CACHE)) this.cache = latin1(buf, r.dataStart, r.dataEnd);
        return;
      default:
        // NULL, IPV4, IPV6, BINARY: validated by typed(), nothing to record.
        return;
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
