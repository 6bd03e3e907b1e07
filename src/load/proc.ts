/**
 * CPU and memory of another process from /proc (Linux): utime + stime of /proc/<pid>/stat
 * (fields 14 and 15, clock ticks) and its resident set (field 24, pages). Elsewhere the
 * readers return null and the report leaves the figures out.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

export interface ProcSample {
  /** CPU seconds used so far (user + system). */
  readonly cpuSeconds: number;
  readonly rssBytes: number;
  /** When it was taken, performance.now() ms. */
  readonly atMs: number;
}

const PAGE_SIZE = 4096;

/** One reading, or null when the process is gone or /proc is unavailable. */
export function readProc(pid: number): ProcSample | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime = field 14, stime = 15, rss = 24.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const rss = Number(fields[21]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return { cpuSeconds: (utime + stime) / clockTicks(), rssBytes: rss * PAGE_SIZE, atMs: performance.now() };
}

/** CPU use between two samples, as a percentage of one core. */
export function cpuPercent(from: ProcSample | null, to: ProcSample | null): number | null {
  if (from === null || to === null || to.atMs <= from.atMs) return null;
  return ((to.cpuSeconds - from.cpuSeconds) / ((to.atMs - from.atMs) / 1000)) * 100;
}

export interface MachineSample {
  /** Jiffies spent busy / in total, summed over every CPU (/proc/stat line "cpu"). */
  readonly busy: number;
  readonly total: number;
}

export function readMachine(): MachineSample | null {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** Whole-machine CPU between two samples, as % of one core (cores x 100 = saturated). */
export function machinePercent(
  from: MachineSample | null,
  to: MachineSample | null,
  cores: number,
): number | null {
  if (from === null || to === null || to.total <= from.total) return null;
  return ((to.busy - from.busy) / (to.total - from.total)) * cores * 100;
}
