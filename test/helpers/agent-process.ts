/**
 * Runs the REAL agent as a child process, the way users run it: `node --import tsx src/cli.ts
 * serve --config <file>`, with the SPOP and metrics ports fixed up front (free ports) so that a
 * stopped agent comes back where HAProxy expects it.
 *
 * ```ts
 * const agent = await startAgent({ config: { devIssuer: true, audit: 'all' } });
 * // haproxy: server agent1 127.0.0.1:${agent.spopPort}
 * const mark = agent.mark();
 * await agent.reload({ ...newConfig });      // rewrites the file, SIGHUP, waits for "config reloaded"
 * await agent.waitForLog((r) => r.msg === 'decision', { since: mark });
 * await agent.stop();                        // SIGTERM, waits for exit
 * await agent.start();                       // same ports, same file
 * ```
 *
 * The process logs pino JSON lines on stdout; {@link AgentProcess.records} holds them parsed, in
 * order, across restarts. The config is written as YAML into a fresh temporary directory.
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { httpRequest } from './http.js';
import { freePort } from './net.js';

/** The repository root (where `src/cli.ts` and `node_modules/tsx` are). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** One pino line: `msg`, `level` (30 info, 40 warn, ...), and whatever fields it logged. */
export type LogRecord = Record<string, unknown> & { msg?: string; level?: number };

export type LogMatcher = RegExp | ((record: LogRecord) => boolean);

export interface AgentProcessOptions {
  /** The config file: YAML text, or an object written as YAML. */
  config: string | Record<string, unknown>;
  /** SPOP port (default: a free port). Passed as `--listen 127.0.0.1:<port>`. */
  spopPort?: number;
  /** Listen on this unix socket instead (`--listen unix:<path>`); spopAddress is `unix@<path>`. */
  spopUnixPath?: string;
  /** /healthz, /readyz, /metrics port (default: a free port). Passed as `--metrics-listen`. */
  metricsPort?: number;
  /** Extra environment. `AUTHZ_*` variables of the test's own environment are never inherited. */
  env?: Record<string, string>;
  /** Extra CLI arguments after `serve`. */
  args?: string[];
  /** How long to wait for "agent listening" and /healthz. Default 20 s (tsx compiles on start). */
  readyTimeoutMs?: number;
}

export interface AgentProcess {
  readonly spopPort: number;
  readonly metricsPort: number;
  /** `127.0.0.1:<spopPort>` */
  readonly spopAddress: string;
  readonly configPath: string;
  /** Pid of the current (or last) process. */
  pid(): number;
  running(): boolean;
  /** Parsed JSON log lines of every run so far. */
  records(): readonly LogRecord[];
  /** Raw output (stdout and stderr) of every run so far. */
  output(): string;
  /** The current number of records: a `since` for {@link waitForLog}. */
  mark(): number;
  /** Resolves with the first record from `since` that matches (a RegExp is tested on `msg`). */
  waitForLog(match: LogMatcher, opts?: { since?: number; timeoutMs?: number }): Promise<LogRecord>;
  /** Rewrites the config file (does not signal). */
  writeConfig(config: string | Record<string, unknown>): Promise<void>;
  /** Sends a signal to the running process. */
  signal(sig: NodeJS.Signals): void;
  /**
   * Optionally rewrites the config, sends SIGHUP, and resolves with the agent's verdict: the
   * "config reloaded" record, or rejects with the "config reload failed" one.
   */
  reload(config?: string | Record<string, unknown>): Promise<LogRecord>;
  /** Starts the process again (same ports, same file) after {@link stop}. */
  start(): Promise<void>;
  /** SIGTERM (graceful: drains SPOP), SIGKILL after `deadlineMs` (default 15 s); resolves on exit. */
  stop(deadlineMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stop() and remove the temporary directory. Idempotent; for afterAll. */
  dispose(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function toYaml(config: string | Record<string, unknown>): string {
  return typeof config === 'string' ? config : stringify(config);
}

/** The environment of the agent: ours minus AUTHZ_* / STATE_DIRECTORY, plus `extra`. */
function agentEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('AUTHZ_') && k !== 'STATE_DIRECTORY') env[k] = v;
  }
  return { ...env, ...extra };
}

function matches(match: LogMatcher, r: LogRecord): boolean {
  return typeof match === 'function' ? match(r) : typeof r.msg === 'string' && match.test(r.msg);
}

/** Starts the agent and resolves once it logged "agent listening" and /healthz answers 200. */
export async function startAgent(options: AgentProcessOptions): Promise<AgentProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'spoe-authz-e2e-'));
  const configPath = join(dir, 'agent.yaml');
  await writeFile(configPath, toYaml(options.config));
  const spopPort = options.spopPort ?? (await freePort());
  const metricsPort = options.metricsPort ?? (await freePort());
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  const args = [
    '--import',
    'tsx',
    join(REPO_ROOT, 'src/cli.ts'),
    'serve',
    '--config',
    configPath,
    '--listen',
    options.spopUnixPath === undefined ? `127.0.0.1:${spopPort}` : `unix:${options.spopUnixPath}`,
    '--metrics-listen',
    `127.0.0.1:${metricsPort}`,
    ...(options.args ?? []),
  ];

  const records: LogRecord[] = [];
  let output = '';
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const w of waiters) w();
  };
  let child: ChildProcess | null = null;
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> = Promise.resolve({
    code: null,
    signal: null,
  });
  let alive = false;

  const spawnOnce = (): void => {
    const c = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      env: agentEnv(options.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    alive = true;
    live.add(c);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', () => {
        for (const p of live) p.kill('SIGKILL');
      });
    }
    for (const stream of [c.stdout, c.stderr]) {
      let partial = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        output += chunk;
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (!line.startsWith('{')) continue;
          try {
            records.push(JSON.parse(line) as LogRecord);
          } catch {
            // not a log record (e.g. a stack trace line starting with "{")
          }
        }
        notify();
      });
    }
    exited = new Promise((resolve) => {
      c.once('exit', (code, signal) => {
        alive = false;
        live.delete(c);
        setImmediate(() => {
          notify();
          resolve({ code, signal });
        });
      });
    });
  };

  const waitForLog = (
    match: LogMatcher,
    opts: { since?: number; timeoutMs?: number } = {},
  ): Promise<LogRecord> => {
    const { since = 0, timeoutMs = 10_000 } = opts;
    return new Promise((resolve, reject) => {
      let scanned = since;
      const check = (): void => {
        for (; scanned < records.length; scanned++) {
          const r = records[scanned] as LogRecord;
          if (matches(match, r)) {
            finish();
            resolve(r);
            return;
          }
        }
        if (!alive) {
          finish();
          reject(new Error(`agent exited before a log record matched ${String(match)}:\n${output}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no agent log record matched ${String(match)} within ${timeoutMs} ms:\n${output}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  };

  const start = async (): Promise<void> => {
    if (alive) throw new Error('agent already running');
    const since = records.length;
    spawnOnce();
    await waitForLog(/^agent listening$/, { since, timeoutMs: readyTimeoutMs });
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      const res = await httpRequest(`http://127.0.0.1:${metricsPort}/healthz`).catch(() => null);
      if (res?.status === 200) return;
      if (!alive) throw new Error(`agent exited during start:\n${output}`);
      if (Date.now() > deadline) throw new Error(`agent /healthz not 200 after ${readyTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const stop = async (
    deadlineMs = 15_000,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> => {
    const c = child as ChildProcess | null;
    if (c !== null && alive) {
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), deadlineMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return exited;
  };

  let disposing: Promise<void> | undefined;
  const agent: AgentProcess = {
    spopPort,
    metricsPort,
    // As HAProxy's `server` line takes it.
    spopAddress:
      options.spopUnixPath === undefined ? `127.0.0.1:${spopPort}` : `unix@${options.spopUnixPath}`,
    configPath,
    pid: () => (child as ChildProcess | null)?.pid ?? -1,
    running: () => alive,
    records: () => records,
    output: () => output,
    mark: () => records.length,
    waitForLog,
    writeConfig: (config) => writeFile(configPath, toYaml(config)),
    signal: (sig) => {
      if (!alive) throw new Error(`agent not running; cannot send ${sig}`);
      (child as ChildProcess | null)?.kill(sig);
    },
    async reload(config) {
      if (config !== undefined) await writeFile(configPath, toYaml(config));
      const since = records.length;
      agent.signal('SIGHUP');
      const r = await waitForLog(
        (rec) => rec.msg === 'config reloaded' || rec.msg === 'config reload failed',
        {
          since,
        },
      );
      if (r.msg !== 'config reloaded') throw new Error(`agent kept its old config: ${JSON.stringify(r)}`);
      return r;
    },
    start,
    stop,
    dispose() {
      disposing ??= (async () => {
        await stop();
        await rm(dir, { recursive: true, force: true });
      })();
      return disposing;
    },
  };

  try {
    await start();
  } catch (err) {
    await agent.dispose();
    throw err;
  }
  return agent;
}

/**
 * Runs the CLI once (`node --import tsx src/cli.ts ...args`) and resolves with its exit code and
 * output; for `check`, `token`, `explain`.
 */
export function runCli(
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli.ts'), ...args], {
      cwd: REPO_ROOT,
      env: agentEnv(opts.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    c.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => c.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    c.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    c.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
