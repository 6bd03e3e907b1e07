/**
 * Just enough of RFC 6455 for tests: text frames out (masked from a client, plain from a server)
 * and a reader that yields whole frames from a byte stream.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';

export const OPCODE = { text: 0x1, close: 0x8, ping: 0x9, pong: 0xa } as const;

export interface Frame {
  readonly opcode: number;
  readonly payload: Buffer;
}

/** One FIN frame; a client masks (RFC 6455 5.3), a server does not. */
export function encodeFrame(payload: string | Buffer, opts: { mask: boolean; opcode?: number }): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head: number[] = [0x80 | (opts.opcode ?? OPCODE.text)];
  const maskBit = opts.mask ? 0x80 : 0;
  if (data.length < 126) head.push(maskBit | data.length);
  else if (data.length < 65536) head.push(maskBit | 126, data.length >> 8, data.length & 0xff);
  else throw new RangeError('test frames stay under 64 KiB');
  if (!opts.mask) return Buffer.concat([Buffer.from(head), data]);
  const key = randomBytes(4);
  const masked = Buffer.from(data.map((b, i) => b ^ (key[i % 4] as number)));
  return Buffer.concat([Buffer.from(head), key, masked]);
}

/** Collects bytes and yields whole frames (masked or not), in order. */
export class FrameReader {
  private buf = Buffer.alloc(0);
  /** Frames decoded but not yet taken by {@link nextFrame}. */
  readonly queue: Frame[] = [];

  push(chunk: Buffer): Frame[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    const frames: Frame[] = [];
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      const masked = ((b[1] as number) & 0x80) !== 0;
      let len = (b[1] as number) & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        throw new RangeError('test frames stay under 64 KiB');
      }
      const keyOff = off;
      if (masked) off += 4;
      if (b.length < off + len) break;
      let payload = b.subarray(off, off + len);
      if (masked) {
        const key = b.subarray(keyOff, keyOff + 4);
        payload = Buffer.from(payload.map((x, i) => x ^ (key[i % 4] as number)));
      } else {
        payload = Buffer.from(payload);
      }
      frames.push({ opcode: (b[0] as number) & 0x0f, payload });
      this.buf = b.subarray(off + len);
    }
    return frames;
  }
}

/** The next whole frame from `socket`, through `reader` (frames of one chunk are queued). */
export function nextFrame(socket: Socket, reader: FrameReader, timeoutMs = 5000): Promise<Frame> {
  const queued = reader.queue.shift();
  if (queued !== undefined) return Promise.resolve(queued);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error('no websocket frame')), timeoutMs);
    const onData = (chunk: Buffer) => {
      reader.queue.push(...reader.push(chunk));
      const frame = reader.queue.shift();
      if (frame !== undefined) done(null, frame);
    };
    const onClose = () => done(new Error('socket closed before a frame'));
    function done(err: Error | null, frame?: Frame) {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(frame as Frame);
    }
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}
