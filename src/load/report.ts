/** The load run's result: a plain object (`--json`) and its text rendering. */
import type { Histogram } from 'hdr-histogram-js';
import type { GeneratorGc } from './gc.js';

export interface LatencySummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

export interface LoadReport {
  readonly target: string;
  readonly agent: {
    readonly spawned: boolean;
    readonly pid: number | null;
    readonly command: string | null;
    /** Over the measured phase, % of one core. */
    readonly cpuPercent: number | null;
    readonly rssMb: number | null;
    readonly maxRssMb: number | null;
  };
  /** The load script's own process: its CPU, and how its V8 collected garbage (--generator-gc). */
  readonly generator: { readonly cpuPercent: number; readonly gc: GeneratorGc };
  /** Whole machine over the measured phase, % of one core (cores x 100 = saturated). */
  readonly machine: {
    readonly cores: number;
    readonly busyPercent: number | null;
    readonly otherPercent: number | null;
  };
  readonly settings: {
    readonly connections: number;
    readonly pipeline: number;
    readonly loop: 'open' | 'closed';
    readonly rate: number | null;
    /** Open loop: how the generator waited for send times (--pacing). */
    readonly pacing: 'sleep' | 'spin';
    /** Open loop: NOTIFYs held until the oldest is this late, then sent together (--batch-us). */
    readonly batchUs: number;
    readonly durationS: number | null;
    readonly requests: number | null;
    readonly warmupS: number;
    readonly timeoutMs: number;
    readonly ids: string;
    readonly tokens: string;
    readonly invalidShare: number;
  };
  /** Length of the measured phase, first send to last ACK, seconds. */
  readonly elapsedS: number;
  readonly sent: number;
  readonly acked: number;
  /** ACKs per second over the measured phase. */
  readonly throughput: number;
  readonly expected: { readonly allow: number; readonly deny: number };
  readonly allowed: number;
  readonly denied: number;
  readonly reasons: Readonly<Record<string, number>>;
  readonly cache: Readonly<Record<string, number>>;
  /** Microseconds; from the intended send time in open loop, from the write in closed loop. */
  readonly latencyUs: LatencySummary | null;
  readonly latencyFrom: 'intended send time' | 'send time';
  readonly errors: {
    readonly total: number;
    readonly mismatches: number;
    readonly timeouts: number;
    readonly lost: number;
    readonly unknownAcks: number;
    /** Not an error: ACKs of requests already counted as timeouts. */
    readonly lateAcks: number;
    readonly protocol: number;
    readonly disconnects: number;
    readonly warmup: number;
  };
  readonly mismatchKinds: Readonly<Record<string, number>>;
  readonly errorSamples: readonly string[];
  /** Open loop: due requests never sent (every pipeline full until the end). */
  readonly unsent: number;
}

export function summarize(h: Histogram): LatencySummary | null {
  if (h.totalCount === 0) return null;
  return {
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
    mean: Math.round(h.mean),
  };
}

const n = (v: number) => Math.round(v).toLocaleString('en-US');

/** Microseconds as "420 µs" or "1.25 ms". */
export function formatMicros(us: number): string {
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 100_000) return `${(us / 1000).toFixed(2)} ms`;
  return `${n(us / 1000)} ms`;
}

function entries(rec: Readonly<Record<string, number>>): string {
  return Object.entries(rec)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${n(v)}`)
    .join(', ');
}

export function formatReport(r: LoadReport): string {
  const s = r.settings;
  const lines: string[] = [];
  const loop =
    s.loop === 'open'
      ? `open loop at ${n(s.rate ?? 0)}/s (${s.pacing === 'spin' ? 'spinning' : 'sleeping'} between sends` +
        `${s.batchUs > 0 ? `, held up to ${n(s.batchUs)} µs and sent together` : ''})`
      : 'closed loop (as fast as possible)';
  lines.push(
    `target     ${r.target}${r.agent.spawned ? ` (spawned agent, pid ${r.agent.pid})` : r.agent.pid !== null ? ` (agent pid ${r.agent.pid})` : ''}`,
    `load       ${s.connections} connections x ${s.pipeline} in flight, ${loop}, ids like HAProxy ${s.ids}`,
    `tokens     ${s.tokens}${s.invalidShare > 0 ? `; invalid share ${s.invalidShare}` : ''}`,
    `measured   ${r.elapsedS.toFixed(2)} s after ${s.warmupS} s warm-up`,
    `requests   ${n(r.sent)} sent, ${n(r.acked)} answered: ${n(r.throughput)} decisions/s`,
    `decisions  allow ${n(r.allowed)} (expected ${n(r.expected.allow)}), deny ${n(r.denied)} (expected ${n(r.expected.deny)})`,
    `reasons    ${entries(r.reasons) || '-'}`,
  );
  if (Object.keys(r.cache).length > 0) lines.push(`cache      ${entries(r.cache)}`);
  const l = r.latencyUs;
  lines.push(
    l === null
      ? 'latency    -'
      : `latency    p50 ${formatMicros(l.p50)}  p90 ${formatMicros(l.p90)}  p99 ${formatMicros(l.p99)}  ` +
          `p99.9 ${formatMicros(l.p999)}  max ${formatMicros(l.max)}  (from ${r.latencyFrom})`,
  );
  const e = r.errors;
  lines.push(
    `errors     ${n(e.total)}` +
      (e.total > 0
        ? ` (mismatches ${n(e.mismatches)}, timeouts ${n(e.timeouts)}, lost ${n(e.lost)}, unknown ACKs ${n(e.unknownAcks)}, protocol ${n(e.protocol)}, disconnects ${n(e.disconnects)})`
        : '') +
      (e.warmup > 0 ? `; ${n(e.warmup)} during warm-up` : '') +
      (e.lateAcks > 0 ? `; ${n(e.lateAcks)} ACKs arrived after their timeout` : ''),
  );
  for (const [k, v] of Object.entries(r.mismatchKinds)) lines.push(`  mismatch ${k}: ${n(v)}`);
  for (const m of r.errorSamples) lines.push(`  ${m}`);
  if (r.unsent > 0) {
    lines.push(`WARNING    ${n(r.unsent)} requests due were never sent: the target rate was not reached`);
  }
  if (r.agent.pid !== null) {
    const cpu =
      r.agent.cpuPercent === null
        ? '-'
        : `${r.agent.cpuPercent.toFixed(0)}% of one core` +
          (r.throughput > 0
            ? ` (${((r.agent.cpuPercent * 10_000) / r.throughput).toFixed(1)} µs per decision)`
            : '');
    const rss =
      r.agent.rssMb === null
        ? '-'
        : `${r.agent.rssMb.toFixed(0)} MB (max ${r.agent.maxRssMb?.toFixed(0)} MB)`;
    lines.push(`agent      CPU ${cpu}, RSS ${rss}`);
  }
  lines.push(
    `generator  CPU ${r.generator.cpuPercent.toFixed(0)}% of one core, V8 GC ${r.generator.gc === 'single' ? 'on its main thread' : 'with parallel helper threads'}`,
  );
  const m = r.machine;
  if (m.busyPercent !== null) {
    lines.push(
      `machine    ${m.cores} cores, ${m.busyPercent}% busy (100% = one core); other processes ${m.otherPercent}%` +
        ((m.otherPercent ?? 0) > 20 ? ' -- WARNING: the machine was not quiet, numbers are disturbed' : ''),
    );
  }
  return `${lines.join('\n')}\n`;
}
