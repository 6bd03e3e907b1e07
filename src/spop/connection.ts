/**
 * One SPOP connection (agent side): HELLO negotiation, NOTIFY dispatch, ACKs, DISCONNECT.
 *
 * Invariants:
 * - Every NOTIFY gets exactly one ACK while the socket is writable: the handler's actions, or
 *   `fallbackActions(err)` when it throws, rejects, times out or returns something unencodable.
 * - Outgoing frames are encoded whole into the connection's FrameWriter and written with one
 *   `socket.write` per flush (all frames produced since the last flush), so they never interleave:
 *   at the end of each read for ACKs decided synchronously, in the next check phase for others.
 * - Nothing throws out of the socket callbacks; malformed input ends in AGENT-DISCONNECT with
 *   the matching status once the in-flight NOTIFYs have been answered.
 * - A peer cannot hold the connection without speaking: the HAPROXY-HELLO must arrive within
 *   `helloTimeoutMs` of the accept, and a frame must be complete within `frameTimeoutMs` of its
 *   first byte (a deadline per frame, not reset by each byte as the idle timeout is). Either
 *   ends in AGENT-DISCONNECT 2.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Action } from './actions.js';
import { FrameFlag, FrameType, Status, VarScope } from './constants.js';
import { decodeKvList, FrameHeader, readFrameHeader } from './decode.js';
import { ActionList } from './encoded-action.js';
import { HandlerTimeoutError, invalid, SpopError, SpopErrorCode } from './errors.js';
import { FrameWriter } from './frame-writer.js';
import { Framer } from './framer.js';
import { negotiateHello } from './hello.js';
import type { SpopLogger } from './logger.js';
import { decodeNotifyPayload } from './notify.js';
import { PendingAck, PendingAcks } from './pending-acks.js';
import { Reader } from './reader.js';
import type {
  HandlerFailure,
  HandlerResult,
  NotifyContext,
  NotifyHandler,
  SpopEvent,
  SpopStats,
} from './types.js';

/** What a connection needs from its server; read at use time so `setHandler` applies at once. */
export interface ConnectionHost {
  readonly handler: NotifyHandler;
  readonly fallbackActions: (err: unknown) => Action[];
  readonly handlerTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly helloTimeoutMs: number;
  readonly frameTimeoutMs: number;
  readonly maxFrameSize: number;
  readonly stats: SpopStats;
  readonly onEvent: ((event: SpopEvent) => void) | null;
  connectionClosed(conn: Connection): void;
}

const State = { HELLO: 0, RUNNING: 1, DRAINING: 2, ENDED: 3, CLOSED: 4 } as const;
type State = (typeof State)[keyof typeof State];

/** After our FIN, how long the peer gets to close before the socket is destroyed. */
const LINGER_MS = 5000;
/** Keeps AGENT-DISCONNECT well below the 256-byte minimum max-frame-size. */
const MAX_DISCONNECT_MESSAGE = 200;
const NORMAL_END_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);
const EMPTY_ACTIONS: readonly Action[] = [];
/** UNSET-VAR of a var nobody sets: what an ACK with nothing to say carries (see tryAck). */
export const NOOP_VAR = 'spop_noop';
const NOOP_ACTIONS: readonly Action[] = Object.freeze([
  Object.freeze({ op: 'unset' as const, scope: VarScope.TXN, name: NOOP_VAR }),
]);

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

export class Connection {
  readonly id: number;
  readonly logger: SpopLogger;
  private readonly socket: Socket;
  private readonly host: ConnectionHost;
  private readonly ctx: NotifyContext;
  private readonly framer: Framer;
  private readonly reader: Reader;
  private readonly header: FrameHeader;
  private readonly writer: FrameWriter;
  private state: State;
  /** False once input must be ignored (protocol error, our DISCONNECT, peer EOF). */
  private reading: boolean;
  private inflight: number;
  private maxFrameSize: number;
  private closeStatus: number;
  private closeMessage: string;
  private flushScheduled: boolean;
  /** True while onData runs: ACKs written meanwhile are flushed when it returns. */
  private inRead: boolean;
  /** NOTIFYs waiting on a handler promise, oldest (= first deadline) first. */
  private readonly pending: PendingAcks;
  private handlerTimer: NodeJS.Timeout | null;
  private lingerTimer: NodeJS.Timeout | null;
  /** Until HAPROXY-HELLO: fires `helloTimeoutMs` after the accept. */
  private helloTimer: NodeJS.Timeout | null;
  /** `performance.now()` when the incomplete frame's first byte arrived; -1 without one. */
  private partialSince: number;
  /** Armed while a frame is incomplete; re-armed lazily when it fires for an older frame. */
  private frameTimer: NodeJS.Timeout | null;
  /** `performance.now()` of the last read that completed a frame (or of the accept). */
  private lastFrameAt: number;
  private readonly flushBound: () => void;
  private readonly handlerTimerBound: () => void;
  private readonly frameTimerBound: () => void;

  constructor(id: number, socket: Socket, host: ConnectionHost, logger: SpopLogger) {
    this.id = id;
    this.socket = socket;
    this.host = host;
    this.logger = logger;
    this.ctx = Object.freeze({ connectionId: id, logger });
    this.framer = new Framer(host.maxFrameSize);
    this.reader = new Reader(Buffer.alloc(0));
    this.header = new FrameHeader();
    this.writer = new FrameWriter();
    this.state = State.HELLO;
    this.reading = true;
    this.inflight = 0;
    this.maxFrameSize = host.maxFrameSize;
    this.closeStatus = Status.NORMAL;
    this.closeMessage = 'normal';
    this.flushScheduled = false;
    this.inRead = false;
    this.pending = new PendingAcks();
    this.handlerTimer = null;
    this.lingerTimer = null;
    this.helloTimer = null;
    this.partialSince = -1;
    this.frameTimer = null;
    this.lastFrameAt = performance.now();
    this.flushBound = () => {
      try {
        this.flush();
      } catch (err) {
        this.internalError(err);
      }
    };
    this.handlerTimerBound = () => {
      try {
        this.onHandlerTimer();
      } catch (err) {
        this.internalError(err);
      }
    };
    this.frameTimerBound = () => {
      try {
        this.onFrameTimer();
      } catch (err) {
        this.internalError(err);
      }
    };

    socket.setNoDelay(true);
    if (host.idleTimeoutMs > 0) socket.setTimeout(host.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err: NodeJS.ErrnoException) => this.onError(err));
    socket.on('close', () => this.onClose());
    socket.on('timeout', () => this.onIdle());
    socket.on('drain', () => {
      if (this.reading) socket.resume();
    });
    this.helloTimer = setTimeout(() => this.onHelloTimeout(), host.helloTimeoutMs);
  }

  /** NOTIFYs handed to the handler and not yet answered. */
  get inFlight(): number {
    return this.inflight;
  }

  /** Still waiting for HAPROXY-HELLO. */
  get handshaking(): boolean {
    return this.state === State.HELLO;
  }

  /** Past the handshake with nothing in flight: closing it loses no answer. */
  get idle(): boolean {
    return this.state === State.RUNNING && this.inflight === 0;
  }

  /** AGENT-DISCONNECT sent or the peer gone: it no longer counts against the connection limit. */
  get ended(): boolean {
    return this.state >= State.ENDED;
  }

  /** When a read last completed a frame (`performance.now()`), or when it was accepted. */
  get lastFrame(): number {
    return this.lastFrameAt;
  }

  /**
   * Makes room at the connection limit: AGENT-DISCONNECT 13 and end, at once. Only for a
   * connection that is {@link handshaking} or {@link idle}, so no NOTIFY goes unanswered.
   */
  evict(): void {
    this.reading = false;
    this.sendDisconnect(Status.RESOURCE, 'connection limit reached');
  }

  /**
   * Graceful close: keep answering NOTIFYs; once none is in flight send AGENT-DISCONNECT
   * status 0 and end. Before HELLO completes this happens at once.
   */
  shutdown(): void {
    if (this.state >= State.ENDED) return;
    if (this.state === State.HELLO) {
      this.sendDisconnect(Status.NORMAL, 'normal');
      return;
    }
    this.beginClose(Status.NORMAL, 'normal');
  }

  /** Hard close (server deadline). */
  destroy(): void {
    this.socket.destroy();
  }

  // ---- input ---------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (!this.reading) return;
    const f = this.framer;
    f.push(chunk);
    this.inRead = true;
    let frames = 0;
    try {
      while (this.reading && f.next()) {
        frames++;
        this.onFrame(f.frame, f.start, f.end);
      }
    } catch (err) {
      try {
        this.fail(err);
      } catch (e) {
        this.internalError(e);
      }
    } finally {
      this.inRead = false;
    }
    if (this.reading) this.trackPartial(frames);
    // ACKs decided synchronously go out now, one write per read, without waiting for the
    // event loop's check phase (ACKs of promises are flushed by tryAck's setImmediate).
    if (this.writer.pending > 0) this.flush();
  }

  /** After a read: start the frame deadline for a frame begun in it, or drop the one finished. */
  private trackPartial(frames: number): void {
    const partial = this.framer.hasPartial;
    if (frames === 0 && (!partial || this.partialSince >= 0)) return; // same frame still coming
    const now = performance.now();
    if (frames > 0) this.lastFrameAt = now;
    if (!partial) {
      this.partialSince = -1;
      return;
    }
    // A frame began in this read (the last one it completed, if any, is behind it).
    this.partialSince = now;
    if (this.frameTimer === null)
      this.frameTimer = setTimeout(this.frameTimerBound, this.host.frameTimeoutMs);
  }

  private onFrameTimer(): void {
    this.frameTimer = null;
    if (this.partialSince < 0 || !this.reading) return;
    const left = this.partialSince + this.host.frameTimeoutMs - performance.now();
    if (left > 0) {
      // The frame this timer was armed for completed; a later one has time left.
      this.frameTimer = setTimeout(this.frameTimerBound, Math.max(1, Math.ceil(left)));
      return;
    }
    this.logger.debug({ timeoutMs: this.host.frameTimeoutMs }, 'frame not completed in time');
    this.fail(new SpopError(SpopErrorCode.TIMEOUT, Status.TIMEOUT, 'frame not completed in time'));
  }

  private onHelloTimeout(): void {
    this.helloTimer = null;
    if (this.state !== State.HELLO) return;
    this.logger.debug({ timeoutMs: this.host.helloTimeoutMs }, 'no HAPROXY-HELLO in time');
    this.fail(new SpopError(SpopErrorCode.TIMEOUT, Status.TIMEOUT, 'no HAPROXY-HELLO in time'));
  }

  private onFrame(buf: Buffer, start: number, end: number): void {
    const r = this.reader.reset(buf, start, end);
    const h = this.header;
    readFrameHeader(r, h);
    const type = h.type;
    if (type === FrameType.NOTIFY && this.state !== State.HELLO) {
      if ((h.flags & FrameFlag.FIN) === 0) throw fragmentation();
      this.onNotify(buf, r, h);
      return;
    }
    switch (type) {
      case FrameType.UNSET:
        throw fragmentation();
      case FrameType.HAPROXY_HELLO:
        if (this.state !== State.HELLO) throw unexpected('HAPROXY-HELLO after the handshake');
        this.checkControlHeader(h);
        this.onHello(r);
        return;
      case FrameType.HAPROXY_DISCONNECT:
        this.checkControlHeader(h);
        this.onHaproxyDisconnect(r);
        return;
      case FrameType.NOTIFY:
        throw unexpected('NOTIFY before HAPROXY-HELLO');
      case FrameType.AGENT_HELLO:
      case FrameType.AGENT_DISCONNECT:
      case FrameType.ACK:
        throw unexpected(`agent frame type ${type} received`);
      default:
        if (this.state === State.HELLO) throw unexpected(`frame type ${type} before HAPROXY-HELLO`);
        // §1.2: unknown frame types may be skipped (3.1+ mux `ignore_frame`).
        this.logger.debug({ frameType: type }, 'skipping unknown frame type');
    }
  }

  /** HELLO / DISCONNECT: FIN set, stream-id and frame-id 0 (§1.7). */
  private checkControlHeader(h: FrameHeader): void {
    if ((h.flags & FrameFlag.FIN) === 0) throw fragmentation();
    if (h.streamId !== 0 || h.frameId !== 0)
      throw invalid('HELLO/DISCONNECT with non-zero stream-id or frame-id');
  }

  private onHello(r: Reader): void {
    const hello = negotiateHello(decodeKvList(r), this.host.maxFrameSize);
    this.clearHelloTimer();
    this.maxFrameSize = hello.maxFrameSize;
    this.framer.maxFrameSize = hello.maxFrameSize;
    this.writer.agentHello(hello.maxFrameSize, hello.capabilities);
    this.logger.debug(
      { maxFrameSize: hello.maxFrameSize, pipelining: hello.pipelining, engineId: hello.engineId },
      hello.healthcheck ? 'health check hello' : 'hello',
    );
    this.emit({
      type: 'hello',
      connectionId: this.id,
      maxFrameSize: hello.maxFrameSize,
      pipelining: hello.pipelining,
      healthcheck: hello.healthcheck,
      engineId: hello.engineId,
    });
    if (hello.healthcheck) {
      // §1.11: answer, then close without DISCONNECT.
      this.end();
      return;
    }
    this.state = State.RUNNING;
    this.flush(); // the AGENT-HELLO goes out in one write, now (haproxy#3478)
  }

  private onHaproxyDisconnect(r: Reader): void {
    let status = -1;
    let message = '';
    for (const e of decodeKvList(r)) {
      if (e.name === 'status-code' && typeof e.value === 'number') status = e.value;
      else if (e.name === 'message' && typeof e.value === 'string') message = e.value;
    }
    this.emit({ type: 'disconnect', connectionId: this.id, direction: 'received', status });
    if (this.inflight > 0)
      this.logger.debug({ dropped: this.inflight }, 'HAPROXY-DISCONNECT with NOTIFYs in flight');
    this.logger.debug({ status, message }, 'HAPROXY-DISCONNECT');
    // HAProxy no longer expects ACKs: reply at once (2.x waits for it, 3.1+ closes anyway).
    this.sendDisconnect(Status.NORMAL, 'normal');
  }

  // ---- NOTIFY --------------------------------------------------------------------------------

  private onNotify(buf: Buffer, r: Reader, h: FrameHeader): void {
    const sid = h.streamId;
    const fid = h.frameId;
    const notify = decodeNotifyPayload(r, buf, sid, fid);
    const host = this.host;
    host.stats.notifies++;
    this.inflight++;
    const started = host.onEvent === null ? 0 : performance.now();
    if (notify.messages.length === 0) {
      // Legal (HAProxy 3.1 sent them when every message was filtered out): nothing to decide.
      this.complete(sid, fid, EMPTY_ACTIONS, null, null, started);
      return;
    }
    let result: unknown;
    try {
      result = host.handler(notify, this.ctx);
    } catch (err) {
      this.complete(sid, fid, null, err, 'throw', started);
      return;
    }
    if (Array.isArray(result) || result instanceof ActionList)
      this.complete(sid, fid, result as HandlerResult, null, null, started);
    else if (isThenable(result)) this.track(sid, fid, result, started);
    else
      this.complete(
        sid,
        fid,
        null,
        new TypeError('handler returned neither an array nor a promise'),
        'invalid-result',
        started,
      );
  }

  private track(
    sid: number | bigint,
    fid: number | bigint,
    promise: PromiseLike<unknown>,
    started: number,
  ): void {
    const rec = new PendingAck(sid, fid, performance.now() + this.host.handlerTimeoutMs, started);
    this.pending.push(rec);
    if (this.handlerTimer === null)
      this.handlerTimer = setTimeout(this.handlerTimerBound, this.host.handlerTimeoutMs);
    try {
      promise.then(
        (value) => this.settle(rec, value, null),
        (err: unknown) => this.settle(rec, undefined, err ?? new Error('handler rejected without a reason')),
      );
    } catch (err) {
      // A thenable whose `then` throws: same as a rejection.
      this.settle(rec, undefined, err ?? new Error('thenable threw'));
    }
  }

  /** Last resort for callbacks outside the socket handlers (promise, timer, immediate). */
  private internalError(err: unknown): void {
    this.logger.error({ err }, 'internal error; destroying the connection');
    this.socket.destroy();
  }

  private settle(rec: PendingAck, value: unknown, err: unknown): void {
    if (rec.done) return; // timed out, or the connection went away
    rec.done = true;
    try {
      if (err !== null) this.complete(rec.streamId, rec.frameId, null, err, 'reject', rec.started);
      else if (Array.isArray(value) || value instanceof ActionList)
        this.complete(rec.streamId, rec.frameId, value as HandlerResult, null, null, rec.started);
      else {
        const e = new TypeError('handler promise resolved to a non-array');
        this.complete(rec.streamId, rec.frameId, null, e, 'invalid-result', rec.started);
      }
    } catch (e) {
      this.internalError(e);
    }
    this.pending.prune();
  }

  private onHandlerTimer(): void {
    this.handlerTimer = null;
    const now = performance.now();
    const next = this.pending.expire(now, (rec) => {
      const err = new HandlerTimeoutError(this.host.handlerTimeoutMs);
      this.complete(rec.streamId, rec.frameId, null, err, 'timeout', rec.started);
    });
    if (next !== null)
      this.handlerTimer = setTimeout(this.handlerTimerBound, Math.max(1, Math.ceil(next - now)));
  }

  /** Answers one NOTIFY: its actions, or the fallback after a handler failure. */
  private complete(
    sid: number | bigint,
    fid: number | bigint,
    actions: HandlerResult | null,
    err: unknown,
    failure: HandlerFailure | null,
    started: number,
  ): void {
    if (this.inflight > 0) this.inflight--;
    if (this.state >= State.ENDED) return;
    if (actions !== null) {
      const encodeErr = this.tryAck(sid, fid, actions);
      if (encodeErr !== null) {
        err = encodeErr;
        failure = 'invalid-result';
      }
    }
    if (failure !== null) {
      this.handlerFailed(failure, err, sid, fid);
      if (this.tryAck(sid, fid, this.fallbackFor(err)) !== null) this.tryAck(sid, fid, EMPTY_ACTIONS);
    }
    if (this.host.onEvent !== null) {
      this.emit({
        type: 'ack',
        connectionId: this.id,
        durationMs: performance.now() - started,
        fallback: failure !== null,
      });
    }
    if (this.state === State.DRAINING && this.inflight === 0)
      this.sendDisconnect(this.closeStatus, this.closeMessage);
  }

  /** Encodes an ACK; returns the error instead of throwing (bad action, or above max-frame-size). */
  private tryAck(sid: number | bigint, fid: number | bigint, actions: HandlerResult): unknown {
    // HAProxy 3.1.0 to early 3.1.x wait for `timeout processing` on an ACK without actions
    // (reference §1.9; fixed upstream by 851e52b55): one that would be empty gets a no-op.
    if (actions instanceof ActionList ? actions.actions.length === 0 : actions.length === 0)
      actions = NOOP_ACTIONS;
    let len: number;
    try {
      len = this.writer.ack(sid, fid, actions);
    } catch (err) {
      return err;
    }
    if (len > this.maxFrameSize) {
      this.writer.discardLast();
      return new SpopError(SpopErrorCode.TOO_BIG, Status.TOO_BIG, `ACK of ${len} bytes above max-frame-size`);
    }
    this.host.stats.acks++;
    if (!this.flushScheduled && !this.inRead) {
      this.flushScheduled = true;
      setImmediate(this.flushBound);
    }
    return null;
  }

  private handlerFailed(
    reason: HandlerFailure,
    err: unknown,
    sid: number | bigint,
    fid: number | bigint,
  ): void {
    const stats = this.host.stats;
    stats.handlerErrors++;
    stats.handlerErrorsByReason[reason] = (stats.handlerErrorsByReason[reason] ?? 0) + 1;
    this.logger.warn(
      { err, reason, streamId: String(sid), frameId: String(fid) },
      'NOTIFY handler failed; answering with fallback actions',
    );
    this.emit({ type: 'handler-error', connectionId: this.id, reason, error: err });
  }

  private fallbackFor(err: unknown): readonly Action[] {
    try {
      const actions = this.host.fallbackActions(err);
      if (Array.isArray(actions)) return actions;
      this.logger.error('fallbackActions returned a non-array; sending an empty ACK');
    } catch (e) {
      this.logger.error({ err: e }, 'fallbackActions threw; sending an empty ACK');
    }
    return EMPTY_ACTIONS;
  }

  // ---- output and closing --------------------------------------------------------------------

  private flush(): void {
    this.flushScheduled = false;
    const out = this.writer.take();
    const s = this.socket;
    if (out === null || s.destroyed || !s.writable) return;
    if (!s.write(out) && this.reading) s.pause(); // backpressure: resumed on 'drain'
  }

  private fail(err: unknown): void {
    this.reading = false;
    if (err instanceof SpopError) {
      this.logger.warn({ code: err.code, status: err.status, msg: err.message }, 'SPOP protocol error');
      this.beginClose(err.status, err.message);
    } else {
      this.logger.error({ err }, 'internal error while processing a frame');
      this.beginClose(Status.UNKNOWN, 'unknown error');
    }
  }

  /** AGENT-DISCONNECT once the in-flight NOTIFYs are answered (each is bounded by the handler timeout). */
  private beginClose(status: number, message: string): void {
    if (this.state >= State.ENDED) return;
    if (this.state !== State.DRAINING || status !== Status.NORMAL) {
      this.closeStatus = status;
      this.closeMessage = message;
    }
    if (this.inflight === 0) this.sendDisconnect(this.closeStatus, this.closeMessage);
    else this.state = State.DRAINING;
  }

  private sendDisconnect(status: number, message: string): void {
    if (this.state >= State.ENDED) return;
    const msg = message.length > MAX_DISCONNECT_MESSAGE ? message.slice(0, MAX_DISCONNECT_MESSAGE) : message;
    this.writer.agentDisconnect(status, msg);
    const byStatus = this.host.stats.disconnectsByStatus;
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    this.emit({ type: 'disconnect', connectionId: this.id, direction: 'sent', status });
    this.end();
  }

  /** Writes what is pending, sends FIN, and gives the peer {@link LINGER_MS} to close. */
  private end(): void {
    this.state = State.ENDED;
    this.reading = false;
    this.abandonPending();
    this.flush();
    this.socket.end();
    this.lingerTimer = setTimeout(() => this.socket.destroy(), LINGER_MS);
    this.lingerTimer.unref();
  }

  /** Forget NOTIFYs that can no longer be answered (socket gone or DISCONNECT sent), and the deadlines. */
  private abandonPending(): void {
    this.pending.clear();
    this.inflight = 0;
    if (this.handlerTimer !== null) {
      clearTimeout(this.handlerTimer);
      this.handlerTimer = null;
    }
    this.clearHelloTimer();
    this.partialSince = -1;
    if (this.frameTimer !== null) {
      clearTimeout(this.frameTimer);
      this.frameTimer = null;
    }
  }

  private clearHelloTimer(): void {
    if (this.helloTimer !== null) {
      clearTimeout(this.helloTimer);
      this.helloTimer = null;
    }
  }

  private onIdle(): void {
    if (this.state >= State.ENDED) {
      this.socket.destroy();
      return;
    }
    if (this.inflight > 0) return; // not idle: the handler timeout bounds the wait
    this.logger.debug('idle timeout');
    this.reading = false;
    this.beginClose(Status.TIMEOUT, 'idle timeout');
  }

  private onEnd(): void {
    if (this.framer.hasPartial) this.logger.debug('peer closed in the middle of a frame');
    else this.logger.debug('peer closed the connection');
    if (this.state < State.ENDED) {
      // allowHalfOpen is false: Node ends our side too, so pending ACKs cannot be written.
      this.state = State.ENDED;
      this.reading = false;
      this.abandonPending();
    }
  }

  private onError(err: NodeJS.ErrnoException): void {
    if (err.code !== undefined && NORMAL_END_CODES.has(err.code))
      this.logger.debug({ code: err.code }, 'connection reset');
    else this.logger.warn({ err }, 'socket error');
  }

  private onClose(): void {
    if (this.state === State.CLOSED) return;
    this.state = State.CLOSED;
    this.reading = false;
    this.abandonPending();
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    this.emit({ type: 'connection-close', connectionId: this.id });
    this.host.connectionClosed(this);
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

function fragmentation(): SpopError {
  return new SpopError(SpopErrorCode.FRAGMENTATION, Status.FRAGMENTATION);
}

function unexpected(message: string): SpopError {
  return new SpopError(SpopErrorCode.UNEXPECTED_FRAME, Status.INVALID, message);
}
