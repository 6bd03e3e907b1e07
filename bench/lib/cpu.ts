/**
 * Who is using the CPU during a measurement: per-process samples from /proc/<pid>/stat and the
 * whole machine from /proc/stat, as % of one core (so 200% = both cores of a 2-core box).
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import {
  cpuPercent,
  type MachineSample,
  machinePercent,
  type ProcSample,
  readMachine,
  readProc,
} from '../../src/load/index.js';

export interface CpuReport {
  /** % of one core per labelled process over the sampled window. */
  readonly processes: Record<string, number | null>;
  /** Whole machine, % of one core (cores x 100 = saturated). */
  readonly machine: number | null;
}

/**
 * Samples the given processes every `everyMs` until stopped; the result covers the window
 * from the first to the last sample each process answered (a process that exits, like wrk,
 * keeps its last sample).
 */
export class CpuSampler {
  /** Label -> its processes (the agent with --workers: the primary and every worker, summed). */
  private readonly pids: Record<string, readonly number[]>;
  private readonly first = new Map<string, ProcSample>();
  private readonly last = new Map<string, ProcSample>();
  private machineFrom: MachineSample | null = null;
  private machineTo: MachineSample | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(pids: Record<string, number | readonly number[]>) {
    this.pids = {};
    for (const [label, p] of Object.entries(pids)) this.pids[label] = typeof p === 'number' ? [p] : p;
  }

  start(everyMs = 250): void {
    this.machineFrom = readMachine();
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  /** Adds a process that started after {@link start} (wrk). */
  add(label: string, pid: number): void {
    this.pids[label] = [pid];
    this.sample();
  }

  stop(): CpuReport {
    if (this.timer !== null) clearInterval(this.timer);
    this.machineTo = readMachine();
    const processes: Record<string, number | null> = {};
    for (const label of Object.keys(this.pids)) {
      const p = cpuPercent(this.first.get(label) ?? null, this.last.get(label) ?? null);
      processes[label] = p === null ? null : Math.round(p);
    }
    const m = machinePercent(this.machineFrom, this.machineTo, cpus().length);
    const machine = m === null ? null : Math.round(m);
    return { processes, machine };
  }

  private sample(): void {
    for (const [label, pids] of Object.entries(this.pids)) {
      const s = readGroup(pids);
      if (s === null) continue;
      if (!this.first.has(label)) this.first.set(label, s);
      this.last.set(label, s);
    }
  }
}

/** The processes as one: CPU and RSS summed; null when any of them cannot be read. */
function readGroup(pids: readonly number[]): ProcSample | null {
  if (pids.length === 1) return readProc(pids[0]!);
  let cpuSeconds = 0;
  let rssBytes = 0;
  let atMs = 0;
  for (const pid of pids) {
    const s = readProc(pid);
    if (s === null) return null;
    cpuSeconds += s.cpuSeconds;
    rssBytes += s.rssBytes;
    atMs = s.atMs;
  }
  return { cpuSeconds, rssBytes, atMs };
}

/** Direct children of a process (Linux /proc/<pid>/task/<pid>/children); [] if unreadable. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
  } catch {
    return [];
  }
}
