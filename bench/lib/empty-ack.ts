/**
 * The empty-ACK null agent's protocol part (bench/empty-ack-agent.ts): the least an SPOP agent
 * can do per NOTIFY. The ACK is the NOTIFY's own header bytes (stream and frame ids as HAProxy
 * encoded them) behind the ACK type: no SET-VAR, no arg decoded, not even the message name.
 * HELLO and DISCONNECT go through the product's own codec, once per connection.
 */
import {
  decodeFrame,
  FrameFlag,
  Framer,
  FrameType,
  FrameWriter,
  negotiateHello,
} from '../../src/spop/index.js';

const MAX_FRAME_SIZE = 16_380;
/** Bytes before the ids: TYPE (1) and FLAGS (4). */
const IDS_AT = 5;

/** Length of the varint at `buf[p]` (SPOP's encoding: 1 byte below 240, then 7 bits per byte). */
function varintLength(buf: Uint8Array, p: number): number {
  if (buf[p]! < 240) return 1;
  let n = 1;
  while (buf[p + n]! >= 128) n++;
  return n + 1;
}

/**
 * The ACK of the NOTIFY in `frame[start, end)`, written into `out` at `at`; returns the new
 * offset. `out` must have room for 4 + 5 + the ids (at most 4 + 5 + 20 bytes).
 */
export function emptyAck(frame: Uint8Array, start: number, out: Uint8Array, at: number): number {
  const idsStart = start + IDS_AT;
  const sidLen = varintLength(frame, idsStart);
  const idsLen = sidLen + varintLength(frame, idsStart + sidLen);
  const len = IDS_AT + idsLen;
  out[at] = 0;
  out[at + 1] = 0;
  out[at + 2] = len >>> 8;
  out[at + 3] = len & 0xff;
  out[at + 4] = FrameType.ACK;
  out[at + 5] = 0;
  out[at + 6] = 0;
  out[at + 7] = 0;
  out[at + 8] = FrameFlag.FIN;
  out.set(frame.subarray(idsStart, idsStart + idsLen), at + 9);
  return at + 4 + len;
}

/** What one connection sends back for the bytes it received; `close` once it should end. */
export class EmptyAckConnection {
  private readonly framer = new Framer(MAX_FRAME_SIZE);
  private readonly writer = new FrameWriter(4_096);
  private out: Buffer = Buffer.allocUnsafe(16_384);
  notifies = 0;
  close = false;

  /** The bytes to write for `chunk` (possibly empty). */
  onData(chunk: Buffer): Buffer {
    const framer = this.framer;
    framer.push(chunk);
    let at = 0;
    while (framer.next()) {
      const { frame, start, end } = framer;
      const type = frame[start];
      if (type === FrameType.NOTIFY) {
        if (at + 40 > this.out.length) this.out = grow(this.out, at);
        at = emptyAck(frame, start, this.out, at);
        this.notifies++;
      } else if (type === FrameType.HAPROXY_HELLO) {
        const hello = decodeFrame(frame, start, end);
        if (!('kv' in hello)) throw new Error('a HELLO without KV list');
        const r = negotiateHello(hello.kv, MAX_FRAME_SIZE);
        framer.maxFrameSize = r.maxFrameSize;
        this.writer.agentHello(r.maxFrameSize, r.capabilities);
        at = this.append(at, this.writer.take()!);
        if (r.healthcheck) this.close = true;
      } else if (type === FrameType.HAPROXY_DISCONNECT) {
        this.writer.agentDisconnect(0, 'normal');
        at = this.append(at, this.writer.take()!);
        this.close = true;
      }
    }
    return this.out.subarray(0, at);
  }

  private append(at: number, bytes: Buffer): number {
    if (at + bytes.length > this.out.length) this.out = grow(this.out, at + bytes.length);
    this.out.set(bytes, at);
    return at + bytes.length;
  }
}

function grow(buf: Buffer, need: number): Buffer {
  const next = Buffer.allocUnsafe(Math.max(buf.length * 2, need + 1_024));
  buf.copy(next);
  return next;
}
