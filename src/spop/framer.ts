/**
 * Stream framer (§1.1): turns TCP chunks into frame bodies `<u32 BE length><frame>`.
 *
 * - A frame wholly inside a chunk is returned as a view of that chunk (no copy).
 * - A frame split across chunks is copied once into a buffer of exactly its declared size,
 *   allocated after the length was checked (never grown, never compacted).
 * - Bytes of a returned frame are never written again: NOTIFY views handed to async handlers
 *   stay valid however the stream continues. (A compacting buffer would have to copy every
 *   frame out first.)
 *
 * Usage: `push(chunk)`, then `while (next()) use(frame, start, end)`. `next` throws a
 * {@link SpopError}: status 4 for a declared length below 7, status 3 above `maxFrameSize`.
 */
import { DEFAULT_MAX_FRAME_SIZE, LENGTH_PREFIX_SIZE, MIN_FRAME_SIZE, Status } from './constants.js';
import { SpopError, SpopErrorCode } from './errors.js';

const EMPTY = Buffer.alloc(0);

export class Framer {
  /** Largest accepted frame body (length prefix excluded); set to the negotiated size after HELLO. */
  maxFrameSize: number;
  /** The frame found by the last successful {@link next}: body bytes are `frame[start, end)`. */
  frame: Buffer;
  start: number;
  end: number;

  private chunk: Buffer;
  private chunkPos: number;
  /** Frame being assembled across chunks, or null. */
  private partial: Buffer | null;
  private partialFill: number;
  /** Length prefix split across chunks. */
  private readonly prefix: Buffer;
  private prefixFill: number;

  constructor(maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
    this.maxFrameSize = maxFrameSize;
    this.frame = EMPTY;
    this.start = 0;
    this.end = 0;
    this.chunk = EMPTY;
    this.chunkPos = 0;
    this.partial = null;
    this.partialFill = 0;
    this.prefix = Buffer.alloc(LENGTH_PREFIX_SIZE);
    this.prefixFill = 0;
  }

  /** Bytes of an incomplete frame are buffered (a truncated frame if the stream ends now). */
  get hasPartial(): boolean {
    return this.partial !== null || this.prefixFill > 0;
  }

  /** Feeds the next chunk. The previous chunk must have been drained (`next()` returned false). */
  push(chunk: Buffer): void {
    this.chunk = chunk;
    this.chunkPos = 0;
  }

  /** Finds the next complete frame; false when more bytes are needed. */
  next(): boolean {
    const chunk = this.chunk;
    let pos = this.chunkPos;
    const avail = chunk.length - pos;

    if (this.partial !== null) {
      const part = this.partial;
      const take = Math.min(part.length - this.partialFill, avail);
      chunk.copy(part, this.partialFill, pos, pos + take);
      this.partialFill += take;
      this.chunkPos = pos + take;
      if (this.partialFill < part.length) return false;
      this.partial = null;
      this.frame = part;
      this.start = 0;
      this.end = part.length;
      return true;
    }

    if (this.prefixFill > 0) {
      const take = Math.min(LENGTH_PREFIX_SIZE - this.prefixFill, avail);
      chunk.copy(this.prefix, this.prefixFill, pos, pos + take);
      this.prefixFill += take;
      this.chunkPos = pos + take;
      if (this.prefixFill < LENGTH_PREFIX_SIZE) return false;
      this.prefixFill = 0;
      this.startPartial(this.prefix.readUInt32BE(0));
      return this.next();
    }

    if (avail < LENGTH_PREFIX_SIZE) {
      if (avail > 0) {
        chunk.copy(this.prefix, 0, pos, pos + avail);
        this.prefixFill = avail;
      }
      this.chunk = EMPTY;
      this.chunkPos = 0;
      return false;
    }

    const len = chunk.readUInt32BE(pos);
    this.check(len);
    pos += LENGTH_PREFIX_SIZE;
    if (len <= chunk.length - pos) {
      this.frame = chunk;
      this.start = pos;
      this.end = pos + len;
      this.chunkPos = pos + len;
      return true;
    }
    this.chunkPos = pos;
    this.startPartial(len);
    return this.next();
  }

  private startPartial(len: number): void {
    this.check(len);
    this.partial = Buffer.allocUnsafe(len);
    this.partialFill = 0;
  }

  private check(len: number): void {
    if (len < MIN_FRAME_SIZE) {
      throw new SpopError(
        SpopErrorCode.TOO_SMALL,
        Status.INVALID,
        `frame length ${len} below ${MIN_FRAME_SIZE}`,
      );
    }
    if (len > this.maxFrameSize) {
      throw new SpopError(
        SpopErrorCode.TOO_BIG,
        Status.TOO_BIG,
        `frame length ${len} above max-frame-size ${this.maxFrameSize}`,
      );
    }
  }
}
