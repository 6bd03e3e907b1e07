/**
 * Open-loop scheduling: request `i` is due at `start + i / rate`, whatever happened to the
 * requests before it. Latency is measured from that intended time, so a stall of the agent
 * (or of the generator) shows up in the percentiles instead of silently delaying the next
 * sends (coordinated omission, as avoided by wrk2 and HdrHistogram's recorders).
 *
 * Times are milliseconds on the `performance.now()` clock.
 */
export class OpenLoopSchedule {
  readonly startMs: number;
  readonly ratePerSec: number;
  private readonly intervalMs: number;

  constructor(startMs: number, ratePerSec: number) {
    if (!(ratePerSec > 0) || !Number.isFinite(ratePerSec)) {
      throw new RangeError(`rate must be a positive number, got ${ratePerSec}`);
    }
    this.startMs = startMs;
    this.ratePerSec = ratePerSec;
    this.intervalMs = 1000 / ratePerSec;
  }

  /** When request `index` (0-based) should be sent. */
  intendedMs(index: number): number {
    return this.startMs + index * this.intervalMs;
  }

  /** How many requests are due at `nowMs` (request 0 is due at the start). */
  dueCount(nowMs: number): number {
    if (nowMs < this.startMs) return 0;
    return Math.floor((nowMs - this.startMs) / this.intervalMs) + 1;
  }

  /** Milliseconds from `nowMs` until request `index` is due (<= 0: already due). */
  waitMs(index: number, nowMs: number): number {
    return this.intendedMs(index) - nowMs;
  }
}

/**
 * Latency to record for a request, in whole microseconds (at least 1): from the intended send
 * time in open loop, from the actual write in closed loop (where the two are the same).
 */
export function latencyMicros(intendedMs: number, ackMs: number): number {
  const us = Math.round((ackMs - intendedMs) * 1000);
  return Math.max(us, 1);
}

/**
 * Spreads a share over a sequence exactly: `next()` is true for `round(share * n)` of the first
 * `n` calls (to within one), evenly spaced (Bresenham). Used for the invalid-token share, so
 * the expected number of denials is known in advance.
 */
export class ShareSpreader {
  private readonly share: number;
  private acc: number;

  constructor(share: number) {
    if (!(share >= 0 && share <= 1)) throw new RangeError(`share must be in [0, 1], got ${share}`);
    this.share = share;
    this.acc = 0.5;
  }

  next(): boolean {
    this.acc += this.share;
    if (this.acc >= 1) {
      this.acc -= 1;
      return true;
    }
    return false;
  }
}
