/**
 * SPOP agent server: a `net.Server` whose sockets each run a {@link Connection}.
 *
 * ```ts
 * const server = new SpopServer({ handler: (notify) => [{ op: 'set', scope: VarScope.TXN, name: 'ok', value: true }] });
 * await server.listen(12345, '127.0.0.1');
 * // ... on SIGTERM (wired by the CLI):
 * await server.close({ deadlineMs: 5000 });
 * ```
 */
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import type { Action } from './actions.js';
import { Connection, type ConnectionHost } from './connection.js';
import { DEFAULT_MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE, Status } from './constants.js';
import { encodeAgentDisconnect } from './encode.js';
import { type SpopLogger, silentSpopLogger } from './logger.js';
import type { NotifyHandler, SpopEvent, SpopStats } from './types.js';

export type {
  HandlerFailure,
  HandlerResult,
  NotifyContext,
  NotifyHandler,
  SpopEvent,
  SpopStats,
} from './types.js';

export interface SpopServerOptions {
  /** Called for every NOTIFY with at least one message. */
  handler: NotifyHandler;
  /** ACK content when the handler throws, rejects, times out or returns bad actions; default `[]`. */
  fallbackActions?: (err: unknown) => Action[];
  /** Our max-frame-size (length prefix excluded); default 16380, min 256. Also the pre-HELLO cap. */
  maxFrameSize?: number;
  /** Default 1024; what happens to a connection over it is `limitPolicy`. */
  maxConnections?: number;
  /**
   * At `maxConnections`, a new connection (default `evict-idle`):
   * - `evict-idle`: evicts the oldest connection still waiting for its HELLO, else the one past
   *   the handshake with nothing in flight whose last frame is the oldest;
   * - `evict-handshaking`: evicts only a connection still waiting for its HELLO;
   * - `refuse`: evicts nothing.
   * The evicted connection gets AGENT-DISCONNECT 13; when nothing can be evicted the new one
   * gets AGENT-DISCONNECT 13 and is closed. A connection with a NOTIFY in flight is never evicted.
   */
  limitPolicy?: LimitPolicy;
  /** Close a connection with no traffic for this long (AGENT-DISCONNECT 2); default 60 000, 0 disables. */
  idleTimeoutMs?: number;
  /** A connection without HAPROXY-HELLO this long after the accept gets AGENT-DISCONNECT 2; default 5 000. */
  helloTimeoutMs?: number;
  /**
   * A frame not complete this long after its first byte arrived gets AGENT-DISCONNECT 2
   * (each byte does not extend it); default 5 000.
   */
  frameTimeoutMs?: number;
  /** Default 1 000. */
  handlerTimeoutMs?: number;
  /** Default: silent. A pino Logger fits. One child `{ conn: id }` per connection. */
  logger?: SpopLogger;
  /** Metrics hook, called synchronously. */
  onEvent?: (event: SpopEvent) => void;
}

const DEFAULT_CLOSE_DEADLINE_MS = 5000;

/** What a new connection does at `maxConnections` (see {@link SpopServerOptions.limitPolicy}). */
export const LIMIT_POLICIES = ['evict-idle', 'evict-handshaking', 'refuse'] as const;
export type LimitPolicy = (typeof LIMIT_POLICIES)[number];

function positiveInt(name: string, v: number, min: number): number {
  if (!Number.isSafeInteger(v) || v < min)
    throw new TypeError(`${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

export class SpopServer {
  /** Live counters (mutated in place). */
  readonly stats: SpopStats;
  private readonly host: ConnectionHost & { handler: NotifyHandler };
  private readonly logger: SpopLogger;
  /** Open connections at most; a new one over it follows `limitPolicy`. */
  readonly maxConnections: number;
  private readonly limitPolicy: LimitPolicy;
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private readonly rejected = new Set<Socket>();
  private nextId = 1;
  private closing: Promise<void> | null = null;
  private allClosed: (() => void) | null = null;

  constructor(options: SpopServerOptions) {
    if (typeof options.handler !== 'function') throw new TypeError('handler must be a function');
    this.logger = options.logger ?? silentSpopLogger;
    this.maxConnections = positiveInt('maxConnections', options.maxConnections ?? 1024, 1);
    const policy = options.limitPolicy ?? 'evict-idle';
    if (!LIMIT_POLICIES.includes(policy))
      throw new TypeError(`limitPolicy must be one of ${LIMIT_POLICIES.join(', ')}, got ${policy}`);
    this.limitPolicy = policy;
    this.stats = {
      connections: 0,
      notifies: 0,
      acks: 0,
      handlerErrors: 0,
      handlerErrorsByReason: {},
      evictions: 0,
      refused: 0,
      disconnectsByStatus: {},
    };
    const server = this;
    this.host = {
      handler: options.handler,
      fallbackActions: options.fallbackActions ?? (() => []),
      handlerTimeoutMs: positiveInt('handlerTimeoutMs', options.handlerTimeoutMs ?? 1000, 1),
      idleTimeoutMs: positiveInt('idleTimeoutMs', options.idleTimeoutMs ?? 60_000, 0),
      helloTimeoutMs: positiveInt('helloTimeoutMs', options.helloTimeoutMs ?? 5000, 1),
      frameTimeoutMs: positiveInt('frameTimeoutMs', options.frameTimeoutMs ?? 5000, 1),
      maxFrameSize: positiveInt(
        'maxFrameSize',
        options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
        MIN_MAX_FRAME_SIZE,
      ),
      stats: this.stats,
      onEvent: options.onEvent ?? null,
      connectionClosed(conn: Connection) {
        server.onConnectionClosed(conn);
      },
    };
    this.server = createServer({ noDelay: true }, (socket) => this.onSocket(socket));
    // A failed listen() is its caller's to report (one line, no stack): not logged here too.
    this.server.on('error', (err) => {
      if (!this.listening) this.logger.error({ err }, 'SPOP server error');
    });
  }

  /** A listen() is in progress; its error goes to its promise. */
  private listening = false;

  /** Listens on a TCP port (0 = any free port); resolves with the bound address. */
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Listens on a unix socket path; resolves with the path. */
  listen(path: string): Promise<string>;
  listen(portOrPath: number | string, host?: string): Promise<AddressInfo | string> {
    return new Promise((resolve, reject) => {
      this.listening = true;
      const onError = (err: Error) => {
        this.listening = false;
        reject(err);
      };
      this.server.once('error', onError);
      const done = () => {
        this.listening = false;
        this.server.off('error', onError);
        const addr = this.server.address();
        this.logger.info({ address: addr }, 'SPOP agent listening');
        resolve(addr as AddressInfo | string);
      };
      if (typeof portOrPath === 'string') this.server.listen(portOrPath, done);
      else if (host === undefined) this.server.listen(portOrPath, done);
      else this.server.listen(portOrPath, host, done);
    });
  }

  /** Swaps the handler (config reload); NOTIFYs already dispatched finish with the old one. */
  setHandler(handler: NotifyHandler): void {
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    this.host.handler = handler;
  }

  /**
   * Stops accepting; each connection answers its in-flight NOTIFYs, sends AGENT-DISCONNECT
   * status 0 and ends. Whatever is left after `deadlineMs` (default 5000) is destroyed.
   * Idempotent: every call returns the same promise.
   */
  close(options: { deadlineMs?: number } = {}): Promise<void> {
    if (this.closing !== null) return this.closing;
    const deadlineMs = options.deadlineMs ?? DEFAULT_CLOSE_DEADLINE_MS;
    this.closing = new Promise<void>((resolve) => {
      let pending = 2;
      const step = () => {
        if (--pending === 0) resolve();
      };
      this.server.close(() => step());
      for (const s of this.rejected) s.destroy();
      const timer = setTimeout(() => {
        if (this.connections.size > 0)
          this.logger.warn({ left: this.connections.size }, 'close deadline: destroying connections');
        for (const c of this.connections) c.destroy();
      }, deadlineMs);
      this.allClosed = () => {
        clearTimeout(timer);
        this.logger.info('SPOP agent closed');
        step();
      };
      for (const c of this.connections) c.shutdown();
      if (this.connections.size === 0) this.allClosed();
    });
    return this.closing;
  }

  private onSocket(socket: Socket): void {
    if (this.closing !== null) {
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.maxConnections && !this.makeRoom()) {
      this.reject(socket);
      return;
    }
    const id = this.nextId++;
    const conn = new Connection(id, socket, this.host, this.logger.child({ conn: id }));
    this.connections.add(conn);
    this.stats.connections = this.connections.size;
    conn.logger.debug({ remote: socket.remoteAddress, port: socket.remotePort }, 'connection open');
    this.emit({ type: 'connection-open', connectionId: id });
  }

  /**
   * At the limit: true when a slot is free, counting only connections that have not ended
   * (ended ones linger briefly for their FIN), or was freed by evicting one per `limitPolicy`.
   */
  private makeRoom(): boolean {
    let live = 0;
    let handshaking: Connection | null = null;
    let idlest: Connection | null = null;
    // A Set iterates in insertion order: the first handshaking connection is the oldest.
    for (const c of this.connections) {
      if (c.ended) continue;
      live++;
      if (c.handshaking) {
        if (handshaking === null) handshaking = c;
      } else if (c.idle && (idlest === null || c.lastFrame < idlest.lastFrame)) idlest = c;
    }
    if (live < this.maxConnections) return true;
    if (this.limitPolicy === 'refuse') return false;
    const victim = handshaking ?? (this.limitPolicy === 'evict-idle' ? idlest : null);
    if (victim === null) return false;
    // A flood of silent connections evicts one per newcomer: those lines stay at debug (the
    // metric counts them); evicting a connection past its handshake is worth an info line.
    const log = { max: this.maxConnections, handshaking: victim.handshaking };
    const msg = 'connection limit reached: evicting this connection for a new one';
    if (victim.handshaking) victim.logger.debug(log, msg);
    else victim.logger.info(log, msg);
    this.stats.evictions++;
    this.emit({ type: 'connection-evicted', connectionId: victim.id, handshaking: victim.handshaking });
    victim.evict();
    return true;
  }

  private reject(socket: Socket): void {
    this.logger.warn(
      { max: this.maxConnections, remote: socket.remoteAddress },
      'too many connections; closing',
    );
    this.rejected.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => this.rejected.delete(socket));
    this.stats.refused++;
    const byStatus = this.stats.disconnectsByStatus;
    byStatus[Status.RESOURCE] = (byStatus[Status.RESOURCE] ?? 0) + 1;
    socket.end(encodeAgentDisconnect(Status.RESOURCE, 'too many connections'));
    socket.setTimeout(1000, () => socket.destroy());
    this.emit({ type: 'connection-rejected', reason: 'max-connections' });
  }

  private onConnectionClosed(conn: Connection): void {
    this.connections.delete(conn);
    this.stats.connections = this.connections.size;
    conn.logger.debug('connection closed');
    if (this.connections.size === 0 && this.allClosed !== null) {
      const done = this.allClosed;
      this.allClosed = null;
      done();
    }
  }

  private emit(event: SpopEvent): void {
    const cb = this.host.onEvent;
    if (cb === null) return;
    try {
      cb(event);
    } catch (err) {
      this.logger.error({ err }, 'onEvent callback threw');
    }
  }
}
