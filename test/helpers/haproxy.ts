/**
 * A reusable harness that runs the real HAProxy binary for integration and end-to-end tests, on
 * every HAProxy line ({@link haproxyLines}: the system's 2.6, and 3.2 and 3.4 unpacked from
 * Debian's packages by `npm run haproxy:lines`). `describeHaproxy` declares its suite once per
 * line, named `<name> [HAProxy <version>]`; inside it {@link startHaproxy} runs that line's binary.
 *
 * ```ts
 * const { describeHaproxy } = requireHaproxy();
 * describeHaproxy('through HAProxy', (v) => {   // v: this line's HaproxyInfo (v.major, v.minor)
 *   let hap: HaproxyInstance;
 *   beforeAll(async () => {
 *     hap = await startHaproxy({
 *       cfg: `${HAPROXY_GLOBALS}
 * frontend fe
 *   bind 127.0.0.1:{{port:fe}}
 *   filter spoe engine authz config {{spoe}}
 *   ...
 * backend agents
 *   mode tcp
 *   server a1 127.0.0.1:{{port:agent}}`,
 *       spoeConf: '[authz]\nspoe-agent ...',
 *       ports: { agent: agentPort },   // fixed ports; every other {{port:NAME}} gets a free port
 *     });
 *   });
 *   afterAll(() => hap?.stop());
 *   it('answers', async () => expect((await httpRequest(hap.url('/'))).status).toBe(200));
 * });
 * ```
 *
 * Placeholders understood in `cfg`, `spoeConf` and string `files` (an unknown one is a TypeError):
 * - `{{port:NAME}}`: a TCP port; `ports[NAME]` if given, else a free port (bind 0, read, close).
 *   Ports that appear on a `bind` line of `cfg` are the ones waited for at start.
 * - `{{dir}}`: the instance's fresh temporary directory (HAProxy also runs with it as cwd).
 * - `{{spoe}}`: the path of the written SPOE config (`{{dir}}/spoe.conf`).
 * - `{{sock}}`: the path of the admin socket, used by {@link HaproxyInstance.command}; declare it
 *   with `stats socket {{sock}} level admin` (already in {@link HAPROXY_GLOBALS}).
 * - `{{file:NAME}}`: the path of `files[NAME]` inside `{{dir}}`.
 *
 * @module
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe } from 'vitest';
import { freePort, waitForPort } from './net.js';

/** A usable HAProxy binary. */
export interface HaproxyInfo {
  /** Absolute path (or the `HAPROXY_BIN` value). */
  bin: string;
  /** As printed by `haproxy -v`, e.g. `2.6.12-1+deb12u4`. */
  version: string;
  major: number;
  minor: number;
}

/**
 * `global` and `defaults` sections most test configs want: logs as raw lines on stdout (read them
 * with {@link HaproxyInstance.logs}), the admin socket at `{{sock}}`, HTTP mode, short timeouts.
 * Prepend it to the frontends and backends of a test's `cfg`.
 */
export const HAPROXY_GLOBALS = `global
  log stdout format raw local0 info
  stats socket {{sock}} level admin
defaults
  mode http
  log global
  option httplog
  timeout connect 2s
  timeout client 10s
  timeout server 10s
`;

let found: { info: HaproxyInfo | null; reason: string } | undefined;

function probe(bin: string): HaproxyInfo | string {
  let out: string;
  try {
    out = execFileSync(bin, ['-v'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    return `${bin} -v failed: ${(err as Error).message}`;
  }
  const m = /HA-?Proxy version (\d+)\.(\d+)(\S*)/.exec(out);
  if (!m) return `${bin} -v printed no version: ${out.slice(0, 200)}`;
  return { bin, version: `${m[1]}.${m[2]}${m[3]}`, major: Number(m[1]), minor: Number(m[2]) };
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the system's HAProxy binary: `HAPROXY_BIN` if set (and then only that), else `haproxy` on
 * PATH, `/usr/sbin/haproxy` or `/usr/local/sbin/haproxy`. Returns null when none runs `-v`; the
 * reason is in {@link haproxyMissingReason}. The result is cached per process. The other lines the
 * tests run on come from {@link haproxyLines}.
 */
export function findHaproxy(): HaproxyInfo | null {
  if (found) return found.info;
  const fromEnv = process.env.HAPROXY_BIN;
  const candidates = fromEnv
    ? [fromEnv]
    : [
        ...(process.env.PATH ?? '')
          .split(delimiter)
          .filter(Boolean)
          .map((d) => join(d, 'haproxy')),
        '/usr/sbin/haproxy',
        '/usr/local/sbin/haproxy',
      ];
  const reasons: string[] = [];
  for (const bin of candidates) {
    if (!fromEnv && !isExecutable(bin)) continue;
    const r = probe(bin);
    if (typeof r !== 'string') {
      found = { info: r, reason: '' };
      return r;
    }
    reasons.push(r);
  }
  found = {
    info: null,
    reason:
      reasons.length > 0 ? reasons.join('; ') : 'no haproxy binary on PATH, /usr/sbin or /usr/local/sbin',
  };
  return null;
}

/** Why {@link findHaproxy} returned null ('' when it found one). */
export function haproxyMissingReason(): string {
  findHaproxy();
  return found?.reason ?? '';
}

/** The command that fetches the HAProxy lines taken from Debian's packages. */
export const FETCH_LINES_COMMAND = 'npm run haproxy:lines';

/** Lines fetched by `.ci/haproxy-lines.sh` (Debian unstable and experimental builds). */
const FETCHED_LINES = ['3.2', '3.4'] as const;

export interface HaproxyLines {
  /** The binaries to run every real-HAProxy suite on, in order (system line first). */
  lines: HaproxyInfo[];
  /** Expected lines that are not there, each with why and what to do. */
  missing: { line: string; reason: string }[];
}

let linesFound: HaproxyLines | undefined;

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

function fetchedLinesDir(): string {
  return process.env.HAPROXY_LINES_DIR ?? join(REPO_ROOT, '.cache/haproxy-lines');
}

/**
 * Every HAProxy line the real-HAProxy tests run on, cached per process:
 * - by default the system's HAProxy (Debian 12: 2.6) and the 3.2 and 3.4 lines that
 *   `npm run haproxy:lines` unpacks into `.cache/haproxy-lines/<line>/bin/haproxy`
 *   (`HAPROXY_LINES_DIR` moves that folder);
 * - `HAPROXY_EXTRA_BINS` (paths separated by `:`) adds more binaries;
 * - `HAPROXY_BIN` set: that binary only (plus the extra ones), nothing is expected of the rest;
 * - `HAPROXY_LINES=2.6,3.4` keeps only those major.minor lines (to iterate on one line).
 * The same binary found twice (by path or by version) runs once.
 */
export function haproxyLines(): HaproxyLines {
  if (linesFound) return linesFound;
  const lines: HaproxyInfo[] = [];
  const missing: { line: string; reason: string }[] = [];
  const system = findHaproxy();
  if (system) lines.push(system);
  else
    missing.push({ line: 'system', reason: `${haproxyMissingReason()}; install haproxy or set HAPROXY_BIN` });
  if (!process.env.HAPROXY_BIN) {
    for (const line of FETCHED_LINES) {
      const bin = join(fetchedLinesDir(), line, 'bin', 'haproxy');
      if (!isExecutable(bin)) {
        missing.push({ line, reason: `${bin} not fetched; fetch it with: ${FETCH_LINES_COMMAND}` });
        continue;
      }
      const r = probe(bin);
      if (typeof r === 'string')
        missing.push({ line, reason: `${r}; fetch it again with: ${FETCH_LINES_COMMAND}` });
      else lines.push(r);
    }
  }
  for (const bin of (process.env.HAPROXY_EXTRA_BINS ?? '').split(':').filter(Boolean)) {
    const r = probe(bin);
    if (typeof r === 'string') missing.push({ line: bin, reason: r });
    else lines.push(r);
  }
  const only = (process.env.HAPROXY_LINES ?? '')
    .split(',')
    .map((l) => l.trim())
    .filter(Boolean);
  const lineOf = (i: HaproxyInfo): string => `${i.major}.${i.minor}`;
  const seen = new Set<string>();
  linesFound = {
    lines: lines.filter((i) => {
      const keys = [i.bin, i.version];
      if (keys.some((k) => seen.has(k))) return false;
      for (const k of keys) seen.add(k);
      return only.length === 0 || only.includes(lineOf(i));
    }),
    missing: missing.filter((m) => only.length === 0 || only.includes(m.line)),
  };
  return linesFound;
}

let current: HaproxyInfo | undefined;

/**
 * The HAProxy line whose suite is running (set by {@link requireHaproxy}'s `describeHaproxy`
 * before the suite's own hooks), else the first line. {@link startHaproxy} runs this binary
 * unless given `bin`.
 */
export function currentHaproxy(): HaproxyInfo | null {
  return current ?? haproxyLines().lines[0] ?? null;
}

/**
 * `describe` for real-HAProxy suites: declares the suite once per HAProxy line, named
 * `<name> [HAProxy <version>]`, and passes that line to `fn` (for version-dependent asserts).
 */
export type DescribeHaproxy = (name: string, fn: (haproxy: HaproxyInfo) => void) => void;

/**
 * For test files that need HAProxy. `describeHaproxy` runs its suite on every line of
 * {@link haproxyLines}. A missing line is skipped after printing why and the command that fetches
 * it; under CI (`CI` set and not `false`) a missing line throws instead, so the file fails: CI
 * runs every suite on every line. `haproxy` is the first line (kept for older callers; prefer the
 * argument `describeHaproxy` passes, or {@link currentHaproxy}).
 */
export function requireHaproxy(): {
  haproxy: HaproxyInfo | null;
  lines: HaproxyInfo[];
  describeHaproxy: DescribeHaproxy;
} {
  const { lines, missing } = haproxyLines();
  if (missing.length > 0) {
    const why = missing.map((m) => `HAProxy ${m.line}: ${m.reason}`).join('\n  ');
    if (process.env.CI && process.env.CI !== 'false')
      throw new Error(`HAProxy lines missing:\n  ${why}\nCI requires the real-HAProxy tests on every line.`);
    console.warn(`SKIPPING real-HAProxy tests on missing lines:\n  ${why}`);
  }
  const describeHaproxy: DescribeHaproxy = (name, fn) => {
    if (lines.length === 0) {
      describe.skip(`${name} [no HAProxy]`, () => {});
      return;
    }
    for (const line of lines) {
      describe(`${name} [HAProxy ${line.version}]`, () => {
        beforeAll(() => {
          current = line;
        });
        afterAll(() => {
          current = undefined;
        });
        fn(line);
      });
    }
  };
  return { haproxy: lines[0] ?? null, lines, describeHaproxy };
}

export interface StartHaproxyOptions {
  /** haproxy.cfg template (see the module doc for placeholders). */
  cfg: string;
  /** SPOE config template, written to `{{spoe}}`. */
  spoeConf?: string;
  /** Extra files written into `{{dir}}` by relative name; string contents are templates too. */
  files?: Record<string, string | Uint8Array>;
  /** Fixed values for `{{port:NAME}}`; names not given get free ports. */
  ports?: Record<string, number>;
  /** Port names to wait for at start; default: those on `bind` lines of `cfg`. */
  waitPorts?: string[];
  /** How long to wait for the bound ports to accept connections. Default 10 s. */
  readyTimeoutMs?: number;
  /** Run in master-worker mode (`-W`), which {@link HaproxyInstance.reload} needs. Default false. */
  masterWorker?: boolean;
  /** Binary to run; default the running suite's line ({@link currentHaproxy}). */
  bin?: string;
}

export type StatRow = Record<string, string>;

/** A running HAProxy started by {@link startHaproxy}. */
export interface HaproxyInstance {
  readonly bin: string;
  readonly pid: number;
  /** The temporary directory holding haproxy.cfg, spoe.conf, files and the admin socket. */
  readonly dir: string;
  readonly cfgPath: string;
  /** Every `{{port:NAME}}` with the port it got. */
  readonly ports: Readonly<Record<string, number>>;
  /** `http://127.0.0.1:<ports[portName]><path>`; portName defaults to `fe`. */
  url(path?: string, portName?: string): string;
  /** Everything HAProxy printed so far (stdout and stderr, whole lines, in arrival order). */
  logs(): string;
  /** Waits until `re` matches the logs from offset `since` (a previous `logs().length`). */
  waitForLog(re: RegExp, timeoutMs?: number, since?: number): Promise<RegExpExecArray>;
  /** Sends one command to the admin socket (`{{sock}}`), resolves with the whole answer. */
  command(cmd: string): Promise<string>;
  /** `show stat` parsed: one row per proxy/server, keyed by the CSV header (`pxname`, `status`...). */
  showStat(): Promise<StatRow[]>;
  /**
   * Master-worker mode only: rewrites the files (new templates if given; same ports for the same
   * names), validates them, sends SIGUSR2, waits for the master's "Loading success." and for the
   * old worker to close its listeners (it may still finish open connections afterwards).
   */
  reload(next?: Pick<StartHaproxyOptions, 'cfg' | 'spoeConf' | 'files'>): Promise<void>;
  /** True until the process exited. */
  running(): boolean;
  /** Settles when the process exits. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * SIGTERM, then SIGKILL after `deadlineMs` (default 3 s); removes the directory unless
   * `HAPROXY_KEEP_DIR` is set. Idempotent; call it from afterAll/afterEach.
   */
  stop(deadlineMs?: number): Promise<void>;
}

const PLACEHOLDER = /\{\{\s*([a-z]+)(?::([A-Za-z0-9_.-]+))?\s*\}\}/g;
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function portNames(template: string): string[] {
  const names: string[] = [];
  for (const m of template.matchAll(PLACEHOLDER)) if (m[1] === 'port' && m[2]) names.push(m[2]);
  return names;
}

function bindPortNames(cfg: string): string[] {
  return cfg
    .split('\n')
    .filter((l) => /^\s*bind\s/.test(l))
    .flatMap(portNames);
}

interface Layout {
  dir: string;
  ports: Record<string, number>;
}

function render(template: string, at: Layout): string {
  return template.replace(PLACEHOLDER, (whole, kind: string, arg: string | undefined) => {
    switch (kind) {
      case 'port': {
        const p = arg === undefined ? undefined : at.ports[arg];
        if (p === undefined) throw new TypeError(`template: ${whole} has no port`);
        return String(p);
      }
      case 'dir':
        return at.dir;
      case 'spoe':
        return join(at.dir, 'spoe.conf');
      case 'sock':
        return join(at.dir, 'admin.sock');
      case 'file':
        if (!arg) throw new TypeError(`template: ${whole} needs a file name`);
        return join(at.dir, arg);
      default:
        throw new TypeError(`template: unknown placeholder ${whole}`);
    }
  });
}

async function writeAll(
  at: Layout,
  o: Pick<StartHaproxyOptions, 'cfg' | 'spoeConf' | 'files'>,
): Promise<string> {
  const cfgPath = join(at.dir, 'haproxy.cfg');
  await writeFile(cfgPath, render(o.cfg, at));
  if (o.spoeConf !== undefined) await writeFile(join(at.dir, 'spoe.conf'), render(o.spoeConf, at));
  for (const [name, content] of Object.entries(o.files ?? {})) {
    const path = join(at.dir, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, typeof content === 'string' ? render(content, at) : content);
  }
  return cfgPath;
}

async function allocatePorts(
  o: Pick<StartHaproxyOptions, 'cfg' | 'spoeConf' | 'files'>,
  into: Record<string, number>,
): Promise<void> {
  const templates = [
    o.cfg,
    o.spoeConf ?? '',
    ...Object.values(o.files ?? {}).filter((f) => typeof f === 'string'),
  ];
  for (const name of templates.flatMap(portNames)) into[name] ??= await freePort();
}

function checkConfig(bin: string, cfgPath: string, cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(bin, ['-c', '-f', cfgPath], { cwd, timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`haproxy -c rejected ${cfgPath}:\n${stdout}${stderr}`));
      else resolve();
    });
  });
}

class AddrInUse extends Error {}

/**
 * Writes the configs into a fresh temporary directory, validates them with `haproxy -c` (throws
 * with HAProxy's output), starts `haproxy -db -f haproxy.cfg` in the foreground and resolves once
 * every bound port accepts connections. A start that fails on a port taken in the meantime is
 * retried with new free ports (never for ports given in `ports`).
 */
export async function startHaproxy(opts: StartHaproxyOptions): Promise<HaproxyInstance> {
  const bin = opts.bin ?? currentHaproxy()?.bin;
  if (!bin) throw new Error(`startHaproxy: ${haproxyMissingReason()}`);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(bin, opts);
    } catch (err) {
      if (!(err instanceof AddrInUse) || attempt >= 3) throw err;
    }
  }
}

async function startOnce(bin: string, opts: StartHaproxyOptions): Promise<HaproxyInstance> {
  const dir = await mkdtemp(join(tmpdir(), 'haproxy-test-'));
  const at: Layout = { dir, ports: { ...opts.ports } };
  let cfgPath: string;
  try {
    await allocatePorts(opts, at.ports);
    cfgPath = await writeAll(at, opts);
    await checkConfig(bin, cfgPath, dir);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const args = [...(opts.masterWorker ? ['-W'] : []), '-db', '-f', cfgPath];
  const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // A test runner that dies must not leave HAProxy processes behind.
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }

  let text = '';
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const w of waiters) w();
  };
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const cut = chunk.lastIndexOf('\n');
      if (cut < 0) {
        partial += chunk;
        return;
      }
      text += partial + chunk.slice(0, cut + 1);
      partial = chunk.slice(cut + 1);
      notify();
    });
    stream.on('end', () => {
      if (partial) text += `${partial}\n`;
      partial = '';
      notify();
    });
  }

  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      live.delete(child);
      // Let the pipes drain so that logs() holds HAProxy's last words.
      setImmediate(() => {
        notify();
        resolve({ code, signal });
      });
    });
  });
  const exitError = (): Error | undefined =>
    exitInfo
      ? new Error(`haproxy exited (code ${exitInfo.code}, signal ${exitInfo.signal}):\n${text}`)
      : undefined;

  let stopping: Promise<void> | undefined;
  const stop = (deadlineMs = 3000): Promise<void> => {
    stopping ??= (async () => {
      if (!exitInfo) {
        child.kill('SIGTERM');
        const timer = sleep(deadlineMs, 'timeout' as const);
        if ((await Promise.race([exited, timer])) === 'timeout') child.kill('SIGKILL');
        await exited;
      }
      if (!process.env.HAPROXY_KEEP_DIR) await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const waitForLog = (re: RegExp, timeoutMs = 5000, since = 0): Promise<RegExpExecArray> => {
    const once = new RegExp(re.source, re.flags.replace('g', ''));
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = once.exec(text.slice(since));
        if (m) {
          finish();
          resolve(m);
        } else if (exitInfo) {
          finish();
          reject(new Error(`haproxy exited before a log line matched ${re}:\n${text}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no log line matched ${re} within ${timeoutMs} ms; logs:\n${text.slice(since)}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  };

  const command = (cmd: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const sock = connect(join(dir, 'admin.sock'));
      let answer = '';
      sock.setEncoding('utf8');
      sock.setTimeout(5000, () => sock.destroy(new Error(`admin socket: no answer to "${cmd}"`)));
      sock.on('data', (d: string) => {
        answer += d;
      });
      sock.once('error', (err) =>
        reject(
          new Error(`admin socket ${join(dir, 'admin.sock')} (is "stats socket {{sock}}" in cfg?)`, {
            cause: err,
          }),
        ),
      );
      sock.once('end', () => resolve(answer));
      sock.once('connect', () => sock.write(`${cmd}\n`));
    });

  const showStat = async (): Promise<StatRow[]> => {
    const lines = (await command('show stat')).split('\n').filter((l) => l.length > 0);
    const header = (lines.shift() ?? '').replace(/^# /, '').split(',');
    return lines.map((line) => {
      const cells = line.split(',');
      const row: StatRow = {};
      header.forEach((key, i) => {
        if (key) row[key] = cells[i] ?? '';
      });
      return row;
    });
  };

  let runningCfg = opts.cfg;
  const reload = async (next?: Pick<StartHaproxyOptions, 'cfg' | 'spoeConf' | 'files'>): Promise<void> => {
    if (!opts.masterWorker) throw new TypeError('reload() needs startHaproxy({ masterWorker: true })');
    // The proxies that accept connections in the running config: the old worker stops each.
    const listening = [...runningCfg.matchAll(/^\s*(?:frontend|listen)\s+(\S+)/gm)].map(
      (x) => x[1] as string,
    );
    if (next) {
      await allocatePorts(next, at.ports);
      await writeAll(at, next);
      runningCfg = next.cfg;
    }
    await checkConfig(bin, cfgPath, dir);
    // 2.x: "New worker (<pid>) forked"; 3.x: "Initializing new worker (<pid>)".
    const workers = [...text.matchAll(/(?:New worker \((\d+)\) forked|Initializing new worker \((\d+)\))/g)];
    const last = workers[workers.length - 1];
    const oldWorker = last?.[1] ?? last?.[2];
    const since = text.length;
    child.kill('SIGUSR2');
    const m = await waitForLog(/Loading (success|failure)/, 10_000, since);
    if (m[1] !== 'success') throw new Error(`haproxy reload failed:\n${text.slice(since)}`);
    // The old worker keeps accepting until the master tells it to stop; each of its proxies logs
    // "Proxy <name> stopped" once its listeners are closed.
    if (oldWorker) {
      for (const name of listening)
        await waitForLog(
          new RegExp(`\\(${oldWorker}\\) : Proxy ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} stopped`),
          10_000,
          since,
        );
    }
  };

  const instance: HaproxyInstance = {
    bin,
    pid: child.pid ?? -1,
    dir,
    cfgPath,
    ports: at.ports,
    url: (path = '/', portName = 'fe') => {
      const p = at.ports[portName];
      if (p === undefined) throw new TypeError(`url(): no port named ${portName}`);
      return `http://127.0.0.1:${p}${path}`;
    },
    logs: () => text,
    waitForLog,
    command,
    showStat,
    reload,
    running: () => exitInfo === undefined,
    exited,
    stop,
  };

  try {
    const names = opts.waitPorts ?? bindPortNames(opts.cfg);
    const timeoutMs = opts.readyTimeoutMs ?? 10_000;
    for (const name of names) {
      const port = at.ports[name];
      if (port !== undefined) await waitForPort(port, { timeoutMs, abort: exitError });
    }
  } catch (err) {
    await stop();
    const fixed = new Set(Object.keys(opts.ports ?? {}));
    const autoOnly = Object.keys(at.ports).some((n) => !fixed.has(n));
    if (autoOnly && /cannot bind socket|Address already in use/.test(text))
      throw new AddrInUse(`haproxy could not bind a port:\n${text}`);
    throw err;
  }
  return instance;
}
