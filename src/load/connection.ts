/**
 * One SPOP connection from HAProxy's side: HAPROXY-HELLO with pipelining, NOTIFYs written in
 * batches (one `socket.write` per batch, frames never split), ACKs matched by stream-id.
 */
import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import {
  DataType,
  DEFAULT_MAX_FRAME_SIZE,
  decodeFrame,
  encodeFrame,
  Framer,
  FrameType,
  FrameWriter,
  SPOP_VERSION,
  Status,
} from '../spop/index.js';
import { AckFormatError, AckReader } from './ack.js';
import { NotifyEncoder } from './notify.js';
import type { IdStyle } from './options.js';
import type { Target } from './target.js';
import type { TokenKind } from './tokens.js';

/** A NOTIFY waiting for its ACK. */
export class Pending {
  readonly streamId: number;
  readonly frameId: number;
  /** When it should have been sent (open loop) or was sent (closed loop), performance.now() ms. */
  readonly intendedMs: number;
  readonly sentMs: number;
  readonly kind: TokenKind;
  readonly measured: boolean;

  constructor(
    streamId: number,
    frameId: number,
    intendedMs: number,
    sentMs: number,
    kind: TokenKind,
    measured: boolean,
  ) {
    this.streamId = streamId;
    this.frameId = frameId;
    this.intendedMs = intendedMs;
    this.sentMs = sentMs;
    this.kind = kind;
    this.measured = measured;
  }
}

export interface ConnectionEvents {
  /** An ACK for `p`; `r` holds the decoded decision. `nowMs` is the arrival time of the chunk. */
  ack(conn: LoadConnection, p: Pending, r: AckReader, nowMs: number): void;
  /** An ACK whose stream-id is not in flight (`late`: it had timed out already). */
  unknownAck(conn: LoadConnection, r: AckReader, late: boolean): void;
  /** A protocol violation, AGENT-DISCONNECT, or close; the connection is dead afterwards. */
  failed(conn: LoadConnection, kind: 'protocol' | 'disconnect', message: string): void;
  /** After every chunk of ACKs has been processed: the moment to send more. */
  drained(conn: LoadConnection): void;
}

/** HAProxy ≤ 3.0 uses the stream's global uniq_id as stream-id (reference §1.13). */
export class GlobalStreamIds {
  private next: number;
  constructor(start = 100_000) {
    this.next = start;
  }
  take(): number {
    return this.next++;
  }
}

const HELLO_TIMEOUT_MS = 5_000;
const CLOSE_WAIT_MS = 1_000;
const MAX_EXPIRED_REMEMBERED = 100_000;
/** libuv's usual read size: a read never returns more than this. */
const READ_BUFFER_SIZE = 64 * 1024;

export class LoadConnection {
  readonly index: number;
  /** NOTIFYs in flight by stream-id; insertion order = send order (timeouts scan from the front). */
  readonly pending = new Map<number, Pending>();
  /** Stream-ids that timed out, so a late ACK is told apart from a wrong one (bounded). */
  private readonly expired = new Set<number>();
  /** Pipelining as negotiated: the agent may refuse it (then 1). */
  pipeline: number;
  /** Open and past HELLO. */
  alive = false;
  private readonly ids: IdStyle;
  private readonly globalIds: GlobalStreamIds;
  private readonly events: ConnectionEvents;
  private readonly encoder: NotifyEncoder;
  private readonly writer = new FrameWriter(64 * 1024);
  private readonly framer = new Framer(DEFAULT_MAX_FRAME_SIZE);
  private readonly reader = new AckReader();
  private socket: Socket | null = null;
  private nextSid = 1;
  private writable = true;
  private unflushed = 0;
  private closing = false;
  private seq = 0;
  /** Where the socket reads into (`onread`); see open(). */
  private readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  /** What a read is handed to: the HELLO handshake, then onData (set by open()). */
  private onChunk: (chunk: Buffer) => void = () => {};
  private readonly onReadBound = (n: number, buf: Buffer): boolean => {
    this.onChunk(buf.subarray(0, n));
    return true;
  };

  constructor(
    index: number,
    pipeline: number,
    ids: IdStyle,
    globalIds: GlobalStreamIds,
    events: ConnectionEvents,
  ) {
    this.index = index;
    this.pipeline = pipeline;
    this.ids = ids;
    this.globalIds = globalIds;
    this.events = events;
    this.encoder = new NotifyEncoder(index);
  }

  /** Slots free for new NOTIFYs (0 while the socket applies backpressure). */
  free(): number {
    if (!this.alive || !this.writable) return 0;
    return this.pipeline - this.pending.size;
  }

  /** Connects and completes the HELLO handshake. Rejects on any failure. */
  open(target: Target): Promise<void> {
    return new Promise((resolve, reject) => {
      // Reads land in one buffer of this connection's (`onread`) rather than in a new
      // ArrayBuffer per read: under single-threaded GC (gc.ts) every such ArrayBuffer is freed
      // inside the next scavenge's pause (scavenge.sweep_array_buffers, most of that pause), and
      // the pause reads as the agent's latency. The framer copies
      // what it keeps of a chunk (a partial frame) and AckReader parses an ACK at once, so the
      // buffer is free again when the callback returns.
      const onread = { buffer: this.readBuffer, callback: this.onReadBound };
      const sock =
        target.kind === 'unix'
          ? connect({ path: target.path, onread })
          : connect({ port: target.port, host: target.host, onread });
      this.socket = sock;
      sock.setNoDelay(true);
      let helloDone = false;
      const timer = setTimeout(
        () => fail(new Error(`no AGENT-HELLO within ${HELLO_TIMEOUT_MS} ms`)),
        HELLO_TIMEOUT_MS,
      );
      const fail = (err: Error) => {
        clearTimeout(timer);
        sock.destroy();
        reject(err);
      };
      sock.once('connect', () => sock.write(haproxyHello()));
      sock.on('error', (err) => {
        if (!helloDone) fail(err);
        else this.lose(`socket error: ${err.message}`);
      });
      sock.on('close', () => {
        if (!helloDone) fail(new Error('connection closed before AGENT-HELLO'));
        else this.lose('connection closed by the agent');
      });
      sock.on('drain', () => {
        this.writable = true;
        this.events.drained(this);
      });
      this.onChunk = (chunk: Buffer) => {
        if (helloDone) {
          this.onData(chunk);
          return;
        }
        try {
          this.framer.push(chunk);
          if (!this.framer.next()) return;
          const f = this.framer;
          const hello = decodeFrame(f.frame, f.start, f.end);
          if (hello.type === FrameType.AGENT_DISCONNECT && 'kv' in hello) {
            const msg = hello.kv.find((e) => e.name === 'message')?.value;
            throw new Error(`agent refused the HELLO: ${String(msg)}`);
          }
          if (hello.type !== FrameType.AGENT_HELLO || !('kv' in hello)) {
            throw new Error(`expected AGENT-HELLO, got frame type ${hello.type}`);
          }
          const kv = new Map(hello.kv.map((e) => [e.name, e.value]));
          if (kv.get('version') !== SPOP_VERSION)
            throw new Error(`agent version ${String(kv.get('version'))}`);
          const mfs = Number(kv.get('max-frame-size'));
          if (!(mfs >= 256 && mfs <= DEFAULT_MAX_FRAME_SIZE)) throw new Error(`bad max-frame-size ${mfs}`);
          this.framer.maxFrameSize = mfs;
          const caps = String(kv.get('capabilities') ?? '')
            .split(',')
            .map((c) => c.trim());
          // Like HAProxy: without pipelining, one NOTIFY at a time on the connection.
          if (!caps.includes('pipelining')) this.pipeline = 1;
          helloDone = true;
          this.alive = true;
          clearTimeout(timer);
          // Frames after the HELLO in the same chunk.
          this.drainFramer();
          resolve();
        } catch (err) {
          fail(err instanceof Error ? err : new Error(String(err)));
        }
      };
    });
  }

  /** Encodes one NOTIFY into the batch; {@link flush} writes the batch. */
  send(
    route: number,
    authorization: Buffer,
    kind: TokenKind,
    intendedMs: number,
    nowMs: number,
    measured: boolean,
  ): void {
    let sid: number;
    if (this.ids === '3.1') {
      // 3.1+: sid = (max_id + 1) | 1 per connection, fid 1.
      sid = this.nextSid;
      this.nextSid += 2;
    } else {
      sid = this.globalIds.take();
    }
    this.encoder.write(this.writer, sid, 1, route, authorization, this.seq++);
    this.pending.set(sid, new Pending(sid, 1, intendedMs, nowMs, kind, measured));
    this.unflushed++;
  }

  /** Writes the batch encoded since the last flush in one `socket.write`. */
  flush(): void {
    if (this.unflushed === 0) return;
    this.unflushed = 0;
    const out = this.writer.take();
    const s = this.socket;
    if (out === null || s === null || s.destroyed) return;
    if (!s.write(out)) this.writable = false;
  }

  /** Removes NOTIFYs written before `cutoffMs` (timeouts); returns them, oldest first. */
  expire(cutoffMs: number): Pending[] {
    const out: Pending[] = [];
    for (const p of this.pending.values()) {
      if (p.sentMs > cutoffMs) break;
      out.push(p);
    }
    for (const p of out) {
      this.pending.delete(p.streamId);
      if (this.expired.size < MAX_EXPIRED_REMEMBERED) this.expired.add(p.streamId);
    }
    return out;
  }

  /** HAPROXY-DISCONNECT (normal), then waits for the agent to answer or close, at most 1 s. */
  close(): Promise<void> {
    const s = this.socket;
    this.closing = true;
    this.alive = false;
    if (s === null || s.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => s.destroy(), CLOSE_WAIT_MS);
      s.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      s.end(
        encodeFrame({
          type: FrameType.HAPROXY_DISCONNECT,
          kv: [
            { name: 'status-code', value: { type: DataType.UINT32, value: Status.NORMAL } },
            { name: 'message', value: 'normal' },
          ],
        }),
      );
    });
  }

  destroy(): void {
    this.closing = true;
    this.alive = false;
    this.socket?.destroy();
  }

  private onData(chunk: Buffer): void {
    this.framer.push(chunk);
    this.drainFramer();
    if (this.alive) this.events.drained(this);
  }

  private drainFramer(): void {
    const f = this.framer;
    const r = this.reader;
    const now = performance.now();
    try {
      while (f.next()) {
        r.read(f.frame, f.start, f.end);
        if (r.type === FrameType.ACK) {
          const p = this.pending.get(r.streamId);
          if (p === undefined) {
            this.events.unknownAck(this, r, this.expired.delete(r.streamId));
            continue;
          }
          if (r.frameId !== p.frameId) {
            this.protocolError(`ACK sid ${r.streamId} with frame-id ${r.frameId}, expected ${p.frameId}`);
            return;
          }
          this.pending.delete(r.streamId);
          this.events.ack(this, p, r, now);
        } else if (r.type === FrameType.AGENT_DISCONNECT) {
          const d = decodeFrame(f.frame, f.start, f.end);
          const kv = 'kv' in d ? new Map(d.kv.map((e) => [e.name, e.value])) : new Map();
          if (!this.closing) {
            this.events.failed(
              this,
              'disconnect',
              `AGENT-DISCONNECT status ${String(kv.get('status-code'))}: ${String(kv.get('message'))}`,
            );
          }
          this.alive = false;
          return;
        } else {
          this.protocolError(`unexpected frame type ${r.type}`);
          return;
        }
      }
    } catch (err) {
      const what = err instanceof AckFormatError ? 'malformed frame' : 'bad frame';
      this.protocolError(`${what}: ${(err as Error).message}`);
    }
  }

  private protocolError(message: string): void {
    this.alive = false;
    this.events.failed(this, 'protocol', message);
    this.socket?.destroy();
  }

  private lose(message: string): void {
    if (this.closing || !this.alive) {
      this.alive = false;
      return;
    }
    this.alive = false;
    this.events.failed(this, 'disconnect', message);
  }
}

function haproxyHello(): Buffer {
  return encodeFrame({
    type: FrameType.HAPROXY_HELLO,
    kv: [
      { name: 'supported-versions', value: SPOP_VERSION },
      { name: 'max-frame-size', value: { type: DataType.UINT32, value: DEFAULT_MAX_FRAME_SIZE } },
      { name: 'capabilities', value: 'pipelining' },
      { name: 'engine-id', value: randomUUID() },
    ],
  });
}
