/**
 * Drives the connections: warm-up, the measured phase, and the drain; closed loop (keep every
 * pipeline full) or open loop (send by the clock, see schedule.ts). Checks every ACK against the
 * decision its token should produce and records latencies in an HDR histogram.
 */
import type { AckReader } from './ack.js';
import {
  LoadConnection as Conn,
  type ConnectionEvents,
  GlobalStreamIds,
  type LoadConnection,
  type Pending,
} from './connection.js';
import type { LoadOptions } from './options.js';
import { latencyMicros, OpenLoopSchedule } from './schedule.js';
import { LoadStats } from './stats.js';
import type { Target } from './target.js';
import { EXPECTED_REASON, KIND_NAMES, TokenKind, TokenPicker, type TokenSet } from './tokens.js';

export type RunnerOptions = Pick<
  LoadOptions,
  | 'connections'
  | 'pipeline'
  | 'rate'
  | 'pacing'
  | 'batchUs'
  | 'durationS'
  | 'requests'
  | 'warmupS'
  | 'timeoutMs'
  | 'invalidShare'
  | 'ids'
>;

export interface Phase {
  readonly name: 'warmup' | 'measure' | 'drain' | 'done';
  readonly atMs: number;
}

export interface RunnerHooks {
  /** Called once per second with the stats of the last interval. */
  tick?: (t: TickInfo) => void;
  /** Called when the measured phase starts and when sending stops. */
  phase?: (p: Phase) => void;
}

export interface TickInfo {
  readonly phase: Phase['name'];
  /** Seconds since the start of the measured phase (negative during warm-up). */
  readonly elapsedS: number;
  readonly intervalS: number;
  readonly acked: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly inFlight: number;
  readonly errors: number;
  readonly stats: LoadStats;
}

export interface RunnerResult {
  readonly stats: LoadStats;
  readonly measureStartMs: number;
  readonly sendStopMs: number;
  readonly endMs: number;
  /** Open loop: requests due by the end that could not be sent (every pipeline full). */
  readonly unsent: number;
  readonly connections: number;
}

const TICK_MS = 1000;
/**
 * `--pacing sleep`: the longest sleep between two looks at the sockets. An ACK that arrives
 * during a sleep is read when it ends, so its latency reads at most this much (plus the
 * kernel's timer slack, 50 µs by default) too high.
 */
const MAX_SLEEP_MS = 0.05;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const TIMEOUT_SCAN_MS = 50;

export class Runner implements ConnectionEvents {
  readonly stats = new LoadStats();
  private readonly o: RunnerOptions;
  private hooks: RunnerHooks = {};
  private readonly picker: TokenPicker;
  private readonly conns: LoadConnection[] = [];
  private readonly ids = new GlobalStreamIds();
  private schedule: OpenLoopSchedule | null = null;
  private phase: Phase['name'] = 'warmup';
  private startMs = 0;
  private measureStartMs = 0;
  private sendStopMs = 0;
  private nextIndex = 0;
  /** Open loop: last index that may be sent once sending stopped. */
  private stopIndex = Number.POSITIVE_INFINITY;
  private measuredSent = 0;
  private route = 0;
  private rr = 0;
  private pumpScheduled = false;
  private pumpTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private scanTimer: NodeJS.Timeout | null = null;
  private lastTickMs = 0;
  private lastTickAcked = 0;
  /** Every ACK matched, warm-up included (progress lines). */
  private answered = 0;
  private finished: (() => void) | null = null;
  /** The armed pump (timer or immediate): at most one is armed at a time (pumpScheduled). */
  private readonly pumpBound = () => {
    this.pumpScheduled = false;
    this.pumpTimer = null;
    this.pump();
  };

  constructor(tokens: TokenSet, options: RunnerOptions) {
    this.o = options;
    this.picker = new TokenPicker(tokens, options.invalidShare);
  }

  /** Opens every connection (HELLO); rejects with the first failure. */
  async connect(target: Target): Promise<void> {
    const conns = Array.from(
      { length: this.o.connections },
      (_, i) => new Conn(i, this.o.pipeline, this.o.ids, this.ids, this),
    );
    this.conns.push(...conns);
    const results = await Promise.allSettled(conns.map((c) => c.open(target)));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      for (const c of conns) c.destroy();
      throw (failed as PromiseRejectedResult).reason;
    }
  }

  /** Runs warm-up, the measured phase and the drain; resolves when every ACK is in or timed out. */
  run(hooks: RunnerHooks = {}): Promise<RunnerResult> {
    this.hooks = hooks;
    return new Promise((resolve) => {
      this.finished = () => {
        resolve({
          stats: this.stats,
          measureStartMs: this.measureStartMs,
          sendStopMs: this.sendStopMs,
          endMs: performance.now(),
          unsent: Number.isFinite(this.stopIndex) ? Math.max(0, this.stopIndex - this.nextIndex) : 0,
          connections: this.conns.length,
        });
      };
      const now = performance.now();
      this.startMs = now;
      this.lastTickMs = now;
      if (this.o.rate !== null) this.schedule = new OpenLoopSchedule(now, this.o.rate);
      if (this.o.warmupS <= 0) this.startMeasuring(now);
      this.tickTimer = setInterval(() => this.tick(), TICK_MS);
      this.scanTimer = setInterval(() => this.scan(), TIMEOUT_SCAN_MS);
      this.pump();
    });
  }

  /**
   * Ends a running run early (an interrupt): stops sending now, as at the end of the measured
   * phase, so what is in flight is still answered and counted. No-op once sending has stopped.
   */
  stop(): void {
    if (this.finished === null || this.phase === 'drain' || this.phase === 'done') return;
    this.stopSending(performance.now());
  }

  /** Closes every connection (HAPROXY-DISCONNECT). */
  async close(): Promise<void> {
    await Promise.all(this.conns.map((c) => c.close()));
  }

  /** Stops everything at once (errors, interrupted runs). Idempotent. */
  destroy(): void {
    if (this.phase !== 'done') this.finish();
    for (const c of this.conns) c.destroy();
  }

  // ---- ConnectionEvents --------------------------------------------------------------------------

  ack(_conn: LoadConnection, p: Pending, r: AckReader, nowMs: number): void {
    this.answered++;
    const kind = p.kind;
    const expectAllow = kind === TokenKind.VALID;
    const reason = r.reason;
    const ok =
      r.allow === (expectAllow ? 1 : 0) &&
      reason === EXPECTED_REASON[kind] &&
      r.status === (expectAllow ? 200 : 401);
    if (!p.measured) {
      if (!ok) this.stats.warmupErrors++;
      return;
    }
    if (!ok) {
      const got =
        r.allow === -1 ? 'no decision' : `allow=${r.allow === 1} status=${r.status} reason=${reason}`;
      this.stats.mismatch(`${KIND_NAMES[kind]} -> ${got}`);
    }
    this.stats.record(latencyMicros(p.intendedMs, nowMs), r.allow === 1, reason, r.cache, nowMs);
  }

  unknownAck(_conn: LoadConnection, r: AckReader, late: boolean): void {
    this.answered++;
    if (late) {
      // Already counted as a timeout.
      this.stats.lateAcks++;
      return;
    }
    if (this.phase === 'warmup') this.stats.warmupErrors++;
    else this.stats.unknownAcks++;
    this.stats.sample(`ACK for stream-id ${r.streamId}, which is not in flight (wrong id)`);
  }

  failed(conn: LoadConnection, kind: 'protocol' | 'disconnect', message: string): void {
    const s = this.stats;
    if (this.phase === 'warmup') s.warmupErrors++;
    else if (kind === 'protocol') s.protocolErrors++;
    else s.disconnects++;
    s.sample(`connection ${conn.index}: ${message}`);
    for (const p of conn.pending.values()) if (p.measured) s.lost++;
    conn.pending.clear();
    conn.destroy();
    if (this.conns.every((c) => !c.alive) && this.phase !== 'done') this.stopSending(performance.now());
    this.checkDone();
  }

  drained(conn: LoadConnection): void {
    if (this.phase === 'done') return;
    if (this.schedule === null) {
      this.fill(conn, performance.now());
      conn.flush();
    } else {
      this.pump();
    }
    this.checkDone();
  }

  // ---- sending -----------------------------------------------------------------------------------

  private canSend(): boolean {
    if (this.phase === 'warmup') return true;
    if (this.phase === 'measure') return this.o.requests === null || this.measuredSent < this.o.requests;
    return false;
  }

  private sendOn(conn: LoadConnection, intendedMs: number, nowMs: number): void {
    const arg = this.picker.pick();
    // Open loop: requests due before the stop but sent during the drain are still measured.
    const measured = this.phase !== 'warmup' && intendedMs >= this.measureStartMs;
    conn.send(this.route++, arg, this.picker.kind, intendedMs, nowMs, measured);
    if (measured) {
      this.stats.sent++;
      this.stats.sentByKind[this.picker.kind]!++;
      this.measuredSent++;
      if (this.o.requests !== null && this.measuredSent >= this.o.requests) this.stopSending(nowMs, true);
    }
  }

  /** Closed loop: fills the connection's pipeline. */
  private fill(conn: LoadConnection, nowMs: number): void {
    this.advancePhase(nowMs);
    for (let n = conn.free(); n > 0 && this.canSend(); n--) this.sendOn(conn, nowMs, nowMs);
  }

  /**
   * Sends what is due (open loop) or fills every pipeline (closed loop), then flushes. Open
   * loop: then arms the next pump for the next send time, unless one is armed already. Called
   * from the armed pump and whenever ACKs free pipeline slots; arming only when none is armed
   * keeps it to one chain of pumps (not a chain of immediates per ACK).
   */
  private pump(): void {
    if (this.phase === 'done') return;
    const now = performance.now();
    const conns = this.conns;
    const schedule = this.schedule;
    if (schedule === null) {
      for (const c of conns) {
        this.fill(c, now);
        c.flush();
      }
      return;
    }
    this.advancePhase(now);
    const due = schedule.dueCount(now);
    const batchMs = this.o.batchUs / 1000;
    // --batch-us: what is due waits until the oldest of it is that late, then goes out at once,
    // as HAProxy's SPOE applet sends what queued while its thread handled other work.
    const held =
      batchMs > 0 &&
      this.phase !== 'drain' &&
      this.nextIndex < due &&
      now - schedule.intendedMs(this.nextIndex) < batchMs;
    if (!held) {
      this.sendDue(schedule, due, now);
      if (this.nextIndex < due || (this.phase !== 'measure' && this.phase !== 'warmup')) return;
    }
    if (this.pumpScheduled) return;
    const wait = schedule.waitMs(this.nextIndex, performance.now()) + batchMs;
    this.pumpScheduled = true;
    // Timers fire at 1 ms granularity at best. For shorter waits, look at the sockets again on
    // the next turn of the event loop (setImmediate), after a short sleep unless --pacing spin:
    // spinning takes a core the agent may need (half of this 2-core machine).
    if (wait < 1) {
      if (this.o.pacing === 'sleep' && wait > 0) Atomics.wait(sleepCell, 0, 0, Math.min(wait, MAX_SLEEP_MS));
      setImmediate(this.pumpBound);
    } else this.pumpTimer = setTimeout(this.pumpBound, Math.floor(wait));
  }

  /**
   * Open loop: what is due goes out as one batch on one connection (one write, like HAProxy's mux
   * sending every frame queued during a poll loop); the next batch takes the next connection.
   */
  private sendDue(schedule: OpenLoopSchedule, due: number, now: number): void {
    const conns = this.conns;
    const n = conns.length;
    let k = 0;
    while (this.nextIndex < due && this.nextIndex < this.stopIndex && k < n) {
      const conn = conns[(this.rr + k) % n]!;
      let free = conn.free();
      if (free === 0) {
        k++;
        continue;
      }
      while (free-- > 0 && this.nextIndex < due && this.nextIndex < this.stopIndex) {
        const i = this.nextIndex++;
        this.sendOn(conn, schedule.intendedMs(i), now);
      }
    }
    this.rr = (this.rr + k + 1) % n;
    for (const c of conns) c.flush();
  }

  // ---- phases ------------------------------------------------------------------------------------

  private advancePhase(now: number): void {
    if (this.phase === 'warmup' && now >= this.startMs + this.o.warmupS * 1000) this.startMeasuring(now);
    if (
      this.phase === 'measure' &&
      this.o.durationS !== null &&
      now >= this.measureStartMs + this.o.durationS * 1000
    ) {
      this.stopSending(now);
    }
  }

  private startMeasuring(now: number): void {
    this.phase = 'measure';
    this.measureStartMs = now;
    this.stats.interval.reset();
    this.hooks.phase?.({ name: 'measure', atMs: now });
  }

  private stopSending(now: number, countReached = false): void {
    if (this.phase === 'drain' || this.phase === 'done') return;
    if (this.phase === 'warmup') this.measureStartMs = now;
    this.phase = 'drain';
    this.sendStopMs = now;
    // Open loop: what was due before the stop is still sent (late), so its delay is measured.
    if (this.schedule !== null) {
      this.stopIndex = countReached ? this.nextIndex : this.schedule.dueCount(now);
    }
    this.hooks.phase?.({ name: 'drain', atMs: now });
    this.checkDone();
  }

  private inFlight(): number {
    let n = 0;
    for (const c of this.conns) n += c.pending.size;
    return n;
  }

  /** Open loop, draining: requests due before the stop and not yet sent. */
  private backlog(): boolean {
    return this.schedule !== null && this.nextIndex < this.stopIndex && this.conns.some((c) => c.alive);
  }

  private checkDone(): void {
    if (this.phase !== 'drain') return;
    if (this.backlog()) this.pump();
    if (this.inFlight() > 0 || this.backlog()) return;
    this.finish();
  }

  private finish(): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    if (this.scanTimer !== null) clearInterval(this.scanTimer);
    if (this.pumpTimer !== null) clearTimeout(this.pumpTimer);
    this.hooks.phase?.({ name: 'done', atMs: performance.now() });
    this.finished?.();
  }

  /** Timeouts, phase changes while idle, and the drain deadline. */
  private scan(): void {
    const now = performance.now();
    this.advancePhase(now);
    const cutoff = now - this.o.timeoutMs;
    for (const c of this.conns) {
      for (const p of c.expire(cutoff)) {
        if (p.measured) this.stats.timeouts++;
        else this.stats.warmupErrors++;
        if (this.stats.timeouts + this.stats.warmupErrors === 1) {
          this.stats.sample(
            `no ACK for stream-id ${p.streamId} within ${this.o.timeoutMs} ms (first timeout)`,
          );
        }
      }
    }
    if (this.phase === 'drain') {
      // Bounded: the backlog of a stalled agent, or ACKs that never come, end the run here.
      if (now > this.sendStopMs + 2 * this.o.timeoutMs + 500) {
        for (const c of this.conns) {
          for (const p of c.pending.values()) if (p.measured) this.stats.timeouts++;
          c.pending.clear();
        }
        this.finish();
        return;
      }
      this.checkDone();
    } else if (this.schedule === null) {
      this.pump(); // closed loop: refill pipelines freed by timeouts
    }
  }

  private tick(): void {
    const now = performance.now();
    const s = this.stats;
    const interval = s.interval;
    const t: TickInfo = {
      phase: this.phase,
      elapsedS:
        (now - (this.phase === 'warmup' ? this.startMs + this.o.warmupS * 1000 : this.measureStartMs)) / 1000,
      intervalS: (now - this.lastTickMs) / 1000,
      acked: this.answered - this.lastTickAcked,
      p50Us: interval.totalCount > 0 ? interval.getValueAtPercentile(50) : 0,
      p99Us: interval.totalCount > 0 ? interval.getValueAtPercentile(99) : 0,
      inFlight: this.inFlight(),
      errors: s.errors,
      stats: s,
    };
    interval.reset();
    this.lastTickMs = now;
    this.lastTickAcked = this.answered;
    this.hooks.tick?.(t);
  }
}
