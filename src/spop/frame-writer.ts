/**
 * Encodes outgoing frames, each as `<u32 BE length><frame>` in one contiguous region of a
 * slab. `take()` hands out everything written since the last take as ONE Buffer view, so a
 * connection writes whole frames (several coalesced) with a single `socket.write`.
 * Regions already taken are never written again (the socket may still hold them); when the
 * slab is full a new one is allocated and only the not-yet-taken bytes move.
 */
import type { Action } from './actions.js';
import { DATA_FLAG_TRUE, DataType, FrameFlag, FrameType, LENGTH_PREFIX_SIZE } from './constants.js';
import { ActionList, EncodedSetVar } from './encoded-action.js';
import { typedSize, type VarValue, writeStringData, writeTyped } from './typed-data.js';
import { checkScope, encodedVarName } from './var-name.js';
import { writeVarintAny } from './varint.js';

const DEFAULT_SLAB_SIZE = 16 * 1024;
/** type + flags + two varints of at most 10 bytes. */
const MAX_HEADER_SIZE = 1 + 4 + 10 + 10;

function kvKey(name: string): Buffer {
  const n = Buffer.byteLength(name);
  return Buffer.concat([Buffer.from([n]), Buffer.from(name)]);
}

// Constant bytes of the agent frames (§1.14 ex. 3 and 7).
const HELLO_VERSION = Buffer.concat([kvKey('version'), Buffer.from([0x08, 0x03]), Buffer.from('2.0')]);
const HELLO_MFS_KEY = Buffer.concat([kvKey('max-frame-size'), Buffer.from([0x03])]);
const HELLO_CAPS_KEY = Buffer.concat([kvKey('capabilities'), Buffer.from([0x08])]);
const DISC_STATUS_KEY = Buffer.concat([kvKey('status-code'), Buffer.from([0x03])]);
const DISC_MESSAGE_KEY = Buffer.concat([kvKey('message'), Buffer.from([0x08])]);

function copyInto(dst: Buffer, off: number, src: Uint8Array): number {
  const n = src.length;
  if (n < 32) {
    for (let i = 0; i < n; i++) dst[off + i] = src[i]!;
  } else {
    dst.set(src, off);
  }
  return off + n;
}

export class FrameWriter {
  private readonly slabSize: number;
  private slab: Buffer;
  private pos: number;
  private takeStart: number;
  private frameStart: number;

  constructor(slabSize = DEFAULT_SLAB_SIZE) {
    this.slabSize = slabSize;
    this.slab = Buffer.alloc(0);
    this.pos = 0;
    this.takeStart = 0;
    this.frameStart = 0;
  }

  /** Bytes written and not yet taken. */
  get pending(): number {
    return this.pos - this.takeStart;
  }

  /** Everything written since the last call, as one Buffer (whole frames only), or null. */
  take(): Buffer | null {
    if (this.pos === this.takeStart) return null;
    const out = this.slab.subarray(this.takeStart, this.pos);
    this.takeStart = this.pos;
    return out;
  }

  /** Drops the frame written last (e.g. an ACK above the negotiated max-frame-size). */
  discardLast(): void {
    this.pos = this.frameStart;
  }

  /** Guarantees `n` writable bytes at `pos`, moving untaken bytes to a new slab if needed. */
  private ensure(n: number): void {
    if (this.slab.length - this.pos >= n) return;
    const keep = this.pos - this.takeStart;
    const next = Buffer.allocUnsafe(Math.max(this.slabSize, keep + n + MAX_HEADER_SIZE));
    this.slab.copy(next, 0, this.takeStart, this.pos);
    this.frameStart -= this.takeStart;
    this.slab = next;
    this.pos = keep;
    this.takeStart = 0;
  }

  /** Starts a frame: length placeholder and header. */
  begin(
    type: number,
    streamId: number | bigint,
    frameId: number | bigint,
    flags: number = FrameFlag.FIN,
  ): void {
    this.ensure(LENGTH_PREFIX_SIZE + MAX_HEADER_SIZE);
    const b = this.slab;
    let p = this.pos;
    this.frameStart = p;
    p += LENGTH_PREFIX_SIZE;
    b[p] = type;
    b[p + 1] = flags >>> 24;
    b[p + 2] = flags >>> 16;
    b[p + 3] = flags >>> 8;
    b[p + 4] = flags;
    p += 5;
    if (typeof streamId === 'number' && streamId >= 0 && streamId < 240) b[p++] = streamId;
    else p = writeVarintAny(b, p, streamId);
    if (typeof frameId === 'number' && frameId >= 0 && frameId < 240) b[p++] = frameId;
    else p = writeVarintAny(b, p, frameId);
    this.pos = p;
  }

  /** Ends the frame started by {@link begin}: fills in its length, returns it (prefix excluded). */
  finish(): number {
    const len = this.pos - this.frameStart - LENGTH_PREFIX_SIZE;
    const b = this.slab;
    const p = this.frameStart;
    b[p] = len >>> 24;
    b[p + 1] = len >>> 16;
    b[p + 2] = len >>> 8;
    b[p + 3] = len;
    return len;
  }

  /** Appends raw bytes to the current frame. */
  bytes(src: Uint8Array): void {
    this.ensure(src.length);
    this.pos = copyInto(this.slab, this.pos, src);
  }

  /** Appends a one-byte value. */
  u8(v: number): void {
    this.ensure(1);
    this.slab[this.pos++] = v;
  }

  /** Appends a varint-prefixed UTF-8 string (KV key, message or arg name). */
  string(s: string): void {
    this.ensure(10 + 3 * s.length);
    this.pos = writeStringData(this.slab, this.pos, s);
  }

  /** Appends TYPED-DATA. Throws TypeError on an unsupported value (frame left unfinished). */
  typed(v: VarValue): void {
    this.ensure(typedSize(v));
    this.pos = writeTyped(this.slab, this.pos, v);
  }

  /** Appends one SET-VAR / UNSET-VAR. */
  action(a: Action): void {
    if (a instanceof EncodedSetVar) {
      const bytes = a.bytes;
      if (this.slab.length - this.pos < bytes.length) this.ensure(bytes.length);
      this.pos = copyInto(this.slab, this.pos, bytes);
      return;
    }
    const name = encodedVarName(a.name);
    const scope = checkScope(a.scope);
    if (a.op === 'set') {
      const v = a.value;
      // Upper bound inline for the common kinds; typedSize() for the rest.
      const need =
        3 +
        name.length +
        (typeof v === 'string' ? 11 + 3 * v.length : typeof v === 'object' ? typedSize(v) : 11);
      if (this.slab.length - this.pos < need) this.ensure(need);
      const b = this.slab;
      let p = this.pos;
      b[p] = 1; // SET-VAR
      b[p + 1] = 3; // NB-ARGS
      b[p + 2] = scope;
      p = copyInto(b, p + 3, name);
      if (typeof v === 'string') {
        b[p] = DataType.STRING;
        this.pos = writeStringData(b, p + 1, v);
      } else if (typeof v === 'boolean') {
        b[p] = v ? DATA_FLAG_TRUE | DataType.BOOL : DataType.BOOL;
        this.pos = p + 1;
      } else {
        this.pos = writeTyped(b, p, v);
      }
    } else if (a.op === 'unset') {
      this.ensure(3 + name.length);
      const b = this.slab;
      const p = this.pos;
      b[p] = 2; // UNSET-VAR
      b[p + 1] = 2;
      b[p + 2] = scope;
      this.pos = copyInto(b, p + 3, name);
    } else {
      throw new TypeError(`unknown action op ${JSON.stringify((a as { op: unknown }).op)}`);
    }
  }

  /**
   * Writes a whole ACK (§1.9), copying an {@link ActionList}'s bytes. On a TypeError from an action the partial frame is removed and
   * the error rethrown. Returns the frame length (prefix excluded).
   */
  ack(streamId: number | bigint, frameId: number | bigint, actions: readonly Action[] | ActionList): number {
    this.begin(FrameType.ACK, streamId, frameId);
    if (actions instanceof ActionList) {
      this.bytes(actions.bytes);
      return this.finish();
    }
    try {
      for (let i = 0; i < actions.length; i++) this.action(actions[i]!);
    } catch (err) {
      this.pos = this.frameStart;
      throw err;
    }
    return this.finish();
  }

  /** AGENT-HELLO: `version "2.0"`, `max-frame-size` (UINT32), `capabilities` (always present). */
  agentHello(maxFrameSize: number, capabilities: string): number {
    this.begin(FrameType.AGENT_HELLO, 0, 0);
    this.bytes(HELLO_VERSION);
    this.bytes(HELLO_MFS_KEY);
    this.ensure(10);
    this.pos = writeVarintAny(this.slab, this.pos, maxFrameSize);
    this.bytes(HELLO_CAPS_KEY);
    this.string(capabilities);
    return this.finish();
  }

  /** AGENT-DISCONNECT: `status-code` (UINT32) and `message` (STRING). */
  agentDisconnect(status: number, message: string): number {
    this.begin(FrameType.AGENT_DISCONNECT, 0, 0);
    this.bytes(DISC_STATUS_KEY);
    this.ensure(10);
    this.pos = writeVarintAny(this.slab, this.pos, status);
    this.bytes(DISC_MESSAGE_KEY);
    this.string(message);
    return this.finish();
  }
}

/**
 * Encodes `actions` once for many ACKs. Throws TypeError on an action an ACK could not carry
 * (same checks as {@link FrameWriter.ack}).
 */
export function compileActions(actions: readonly Action[]): ActionList {
  const w = new FrameWriter(256);
  for (const a of actions) w.action(a);
  const out = w.take();
  return new ActionList(actions, out === null ? new Uint8Array(0) : Uint8Array.prototype.slice.call(out));
}
