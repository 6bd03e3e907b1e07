/** The external programs the end-to-end benchmark needs, and the machine it runs on. */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { machinePercent, readMachine } from '../../src/load/index.js';

export interface Tool {
  readonly bin: string;
  readonly version: string;
}

function which(name: string, extra: readonly string[]): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...extra];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

function versionOf(bin: string, args: string[], re: RegExp): string {
  let out: string;
  try {
    out = execFileSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5_000 });
  } catch (err) {
    // wrk -v prints its version and exits 1.
    const e = err as { stdout?: string; stderr?: string };
    out = `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
  return re.exec(out)?.[1] ?? 'unknown';
}

/** HAProxy (HAPROXY_BIN, PATH, /usr/sbin) and wrk, or what is missing and how to get it. */
export function findTools(): { haproxy: Tool | null; wrk: Tool | null; missing: string[] } {
  const missing: string[] = [];
  const fromEnv = (name: string): string | null | undefined => {
    const v = process.env[name];
    if (v === undefined) return undefined;
    try {
      accessSync(v, constants.X_OK);
      return v;
    } catch {
      return null;
    }
  };
  const hapEnv = fromEnv('HAPROXY_BIN');
  const wrkEnv = fromEnv('WRK_BIN');
  const hapBin = hapEnv === undefined ? which('haproxy', ['/usr/sbin', '/usr/local/sbin']) : hapEnv;
  const wrkBin = wrkEnv === undefined ? which('wrk', []) : wrkEnv;
  const haproxy =
    hapBin === null ? null : { bin: hapBin, version: versionOf(hapBin, ['-v'], /HA-?Proxy version (\S+)/) };
  const wrk = wrkBin === null ? null : { bin: wrkBin, version: versionOf(wrkBin, ['-v'], /wrk (\S+)/) };
  if (haproxy === null)
    missing.push('haproxy >= 2.6 (Debian: apt-get install -y haproxy; or set HAPROXY_BIN)');
  else if (!/^(2\.[6-9]|[3-9]\.)/.test(haproxy.version)) {
    missing.push(`haproxy >= 2.6 for jwt_verify (found ${haproxy.version})`);
  }
  if (wrk === null) missing.push('wrk (Debian: apt-get install -y wrk; or set WRK_BIN)');
  return { haproxy, wrk, missing };
}

export interface Machine {
  readonly cores: number;
  readonly cpuModel: string;
  readonly kernel: string;
  readonly node: string;
  readonly haproxy: string;
  readonly wrk: string;
}

export function describeMachine(tools: { haproxy: Tool; wrk: Tool }): Machine {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) model = m[1]!.trim();
  } catch {
    // not Linux
  }
  return {
    cores: cpus().length,
    cpuModel: model,
    kernel: release(),
    node: process.version,
    haproxy: tools.haproxy.version,
    wrk: tools.wrk.version,
  };
}

/** 1-minute load average (what other work adds to the machine). */
export function loadAverage(): number {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return Number.NaN;
  }
}

/**
 * Waits until the machine is quiet: a 2-second window in which all processes together used
 * less than `maxBusyPercent` of one core. Gives up after `maxWaitMs`; resolves with the last
 * window's figure (the caller reports it).
 */
export async function waitQuiet(maxBusyPercent: number, maxWaitMs: number): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const a = readMachine();
    await sleep(2_000);
    const busy = machinePercent(a, readMachine(), cpus().length) ?? 0;
    if (busy < maxBusyPercent || Date.now() > deadline) return busy;
  }
}
