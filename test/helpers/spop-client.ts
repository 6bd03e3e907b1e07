/**
 * A tiny client speaking HAProxy's side of SPOP 2.0, for tests of the agent over real sockets:
 * sends HAPROXY-HELLO / NOTIFY / HAPROXY-DISCONNECT (or raw bytes) and collects the agent's
 * frames, decoded, in arrival order.
 *
 * @module
 */
import { connect, type Socket } from 'node:net';
import {
  DataType,
  type DecodedFrame,
  decodeFrame,
  encodeFrame,
  Framer,
  type FrameSpec,
  FrameType,
  type NamedValue,
} from '../../src/spop/index.js';

export interface HelloOptions {
  versions?: string | null;
  maxFrameSize?: number | null;
  capabilities?: string | null;
  healthcheck?: boolean;
  engineId?: string | null;
}

/** KV list of a HAPROXY-HELLO; `null` leaves a key out. Defaults mimic HAProxy 2.6. */
export function helloKv(o: HelloOptions = {}): NamedValue[] {
  const kv: NamedValue[] = [];
  const versions = o.versions === undefined ? '2.0' : o.versions;
  const mfs = o.maxFrameSize === undefined ? 16380 : o.maxFrameSize;
  const caps = o.capabilities === undefined ? 'pipelining,async' : o.capabilities;
  const engineId = o.engineId === undefined ? '9d26d82d-2f35-4b5a-94b9-3afbc2520431' : o.engineId;
  if (versions !== null) kv.push({ name: 'supported-versions', value: versions });
  if (mfs !== null) kv.push({ name: 'max-frame-size', value: { type: DataType.UINT32, value: mfs } });
  if (caps !== null) kv.push({ name: 'capabilities', value: caps });
  if (o.healthcheck === true) kv.push({ name: 'healthcheck', value: true });
  else if (engineId !== null) kv.push({ name: 'engine-id', value: engineId });
  return kv;
}

/** A decoded frame as a plain record, to look up KV entries by name. */
export function kvOf(frame: DecodedFrame): Record<string, unknown> {
  if (!('kv' in frame)) throw new Error(`frame type ${frame.type} has no KV list`);
  return Object.fromEntries(frame.kv.map((e) => [e.name, e.value]));
}

export class SpopTestClient {
  readonly socket: Socket;
  /** Resolves when the socket is fully closed; `hadError` says whether it was a reset. */
  readonly closed: Promise<{ hadError: boolean }>;
  /** True once the agent ended its side (FIN received). */
  ended = false;
  private readonly framer = new Framer(1 << 30);
  private readonly frames: DecodedFrame[] = [];
  private readonly waiters: { resolve: (f: DecodedFrame) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | null = null;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.ended = true;
      this.fail(new Error('connection ended by the agent'));
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => {
      socket.on('close', (hadError) => {
        this.fail(new Error('connection closed'));
        resolve({ hadError });
      });
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<SpopTestClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host });
      socket.setNoDelay(true);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new SpopTestClient(socket));
      });
    });
  }

  static connectPath(path: string): Promise<SpopTestClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ path });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new SpopTestClient(socket));
      });
    });
  }

  /** Writes raw bytes. */
  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Encodes and writes one frame. */
  send(spec: FrameSpec): void {
    this.socket.write(encodeFrame(spec));
  }

  sendHello(o: HelloOptions = {}): void {
    this.send({ type: FrameType.HAPROXY_HELLO, kv: helloKv(o) });
  }

  /** HELLO, then the agent's first frame (AGENT-HELLO, or an AGENT-DISCONNECT). */
  async hello(o: HelloOptions = {}): Promise<DecodedFrame> {
    this.sendHello(o);
    return this.next();
  }

  /** NOTIFY with one message `name` and the given args. */
  sendNotify(
    streamId: number | bigint,
    frameId: number | bigint,
    name: string,
    args: NamedValue[] = [],
  ): void {
    this.send({ type: FrameType.NOTIFY, streamId, frameId, messages: [{ name, args }] });
  }

  /** The next frame from the agent; rejects if the connection ends first or after `timeoutMs`. */
  next(timeoutMs = 5000): Promise<DecodedFrame> {
    const f = this.frames.shift();
    if (f !== undefined) return Promise.resolve(f);
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (frame: DecodedFrame) => {
          clearTimeout(timer);
          resolve(frame);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no frame from the agent within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** The next `n` frames. */
  async take(n: number, timeoutMs = 5000): Promise<DecodedFrame[]> {
    const out: DecodedFrame[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next(timeoutMs));
    return out;
  }

  /** Frames received and not yet consumed. */
  get buffered(): number {
    return this.frames.length;
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Closes with a TCP RST (the peer sees ECONNRESET). */
  reset(): void {
    this.socket.resetAndDestroy();
  }

  private onData(chunk: Buffer): void {
    this.framer.push(chunk);
    while (this.framer.next()) {
      const { frame, start, end } = this.framer;
      // Copy: the test keeps frames around while the stream goes on.
      const decoded = decodeFrame(Buffer.from(frame.subarray(start, end)));
      const w = this.waiters.shift();
      if (w !== undefined) w.resolve(decoded);
      else this.frames.push(decoded);
    }
  }

  private fail(e: Error): void {
    if (this.failure === null) this.failure = e;
    for (const w of this.waiters.splice(0)) w.reject(e);
  }
}

/**
 * One HELLO and one `authorize` NOTIFY (POST `path` with a Bearer `token`) on a fresh
 * connection to the agent on `port`; resolves with the ACK's variables by name.
 */
export async function authorizeOnce(
  port: number,
  token: string,
  path = '/api/flows/filter',
): Promise<Record<string, unknown>> {
  const client = await SpopTestClient.connect(port);
  try {
    await client.hello({ capabilities: 'pipelining' });
    client.sendNotify(1, 1, 'authorize', [
      { name: 'method', value: 'POST' },
      { name: 'path', value: path },
      { name: 'authorization', value: `Bearer ${token}` },
    ]);
    const ack = await client.next();
    if (ack.type !== FrameType.ACK || !('actions' in ack))
      throw new Error(`expected an ACK, got ${ack.type}`);
    return Object.fromEntries(ack.actions.map((a) => [a.name, a.op === 'set' ? a.value.value : undefined]));
  } finally {
    client.socket.destroy();
  }
}
