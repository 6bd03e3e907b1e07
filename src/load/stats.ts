/** Counters and latency histograms of a load run (measured phase only). */
import { build, type Histogram } from 'hdr-histogram-js';

/** Microseconds, 1 µs to 10 min at 3 significant digits; grows if ever exceeded. */
export function newHistogram(): Histogram {
  return build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

export class LoadStats {
  /** NOTIFYs written. */
  sent = 0;
  /** NOTIFYs written per token kind (valid, bad signature, expired). */
  readonly sentByKind = [0, 0, 0];
  /** ACKs matched to a NOTIFY of the measured phase. */
  acked = 0;
  allowed = 0;
  denied = 0;
  /** ACK whose decision differs from what the token should produce. */
  mismatches = 0;
  /** No ACK within the timeout. */
  timeouts = 0;
  /** In flight on a connection that closed or failed. */
  lost = 0;
  /** ACK for no NOTIFY in flight that never timed out (a wrong stream-id). */
  unknownAcks = 0;
  /** ACKs that came after their NOTIFY had timed out (not errors twice: see `timeouts`). */
  lateAcks = 0;
  /** Malformed frames, wrong frame-id, unexpected frame types. */
  protocolErrors = 0;
  /** AGENT-DISCONNECT frames received, and connections closed by the agent. */
  disconnects = 0;
  /** Any error before the measured phase (warm-up). */
  warmupErrors = 0;
  readonly reasons = new Map<string, number>();
  readonly cache = new Map<string, number>();
  /** `expected -> got` descriptions with counts. */
  readonly mismatchKinds = new Map<string, number>();
  /** First few error messages, for the report. */
  readonly errorSamples: string[] = [];
  readonly histogram: Histogram = newHistogram();
  /** Reset every progress line. */
  readonly interval: Histogram = newHistogram();
  lastAckMs = 0;

  get errors(): number {
    return (
      this.mismatches + this.timeouts + this.lost + this.unknownAcks + this.protocolErrors + this.disconnects
    );
  }

  record(latencyUs: number, allow: boolean, reason: string | null, cache: string | null, atMs: number): void {
    this.acked++;
    if (allow) this.allowed++;
    else this.denied++;
    bump(this.reasons, reason ?? '(none)');
    if (cache !== null) bump(this.cache, cache);
    this.histogram.recordValue(latencyUs);
    this.interval.recordValue(latencyUs);
    this.lastAckMs = atMs;
  }

  mismatch(description: string): void {
    this.mismatches++;
    bump(this.mismatchKinds, description);
  }

  sample(message: string): void {
    if (this.errorSamples.length < 10) this.errorSamples.push(message);
  }
}
