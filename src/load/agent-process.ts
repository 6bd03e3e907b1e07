/**
 * `--spawn-agent`: runs the agent as a child process on a free loopback port, the way users run
 * it (`node dist/cli.js serve`, or `node --import tsx src/cli.ts serve` from a checkout), and
 * reads its CPU and RSS from /proc.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type ProcSample, readProc } from './proc.js';
import { formatTarget, type Target } from './target.js';

export interface SpawnedAgent {
  readonly pid: number;
  readonly target: Target;
  /** The command line, for the report. */
  readonly command: string;
  sample(): ProcSample | null;
  /** Its stdout and stderr so far (last 64 kB). */
  output(): string;
  /** SIGTERM (graceful), SIGKILL after `deadlineMs`; resolves when it exited. */
  stop(deadlineMs?: number): Promise<void>;
}

export interface SpawnAgentOptions {
  readonly configPath: string;
  /** Extra node flags, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
  readonly nodeOptions?: readonly string[];
  /** Default warn: audit lines and per-connection logs stay out of the measurement. */
  readonly logLevel?: string;
  readonly readyTimeoutMs?: number;
  /** Run with `--workers N` (node:cluster); default 1. */
  readonly workers?: number;
  /** `/metrics` address, e.g. `127.0.0.1:9464`; default off. */
  readonly metricsListen?: string;
  /** Listen on this unix socket instead of a free loopback port. */
  readonly unixPath?: string;
}

const OUTPUT_KEEP = 64 * 1024;
const live = new Set<ChildProcess>();
let exitHook = false;

/** The CLI next to this module: dist/cli.js when built, src/cli.ts (through tsx) in a checkout. */
export function agentCommand(): { args: string[]; display: string } {
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const cli = join(dirname(here), '..', fromSource ? 'cli.ts' : 'cli.js');
  const args = fromSource ? ['--import', import.meta.resolve('tsx'), cli] : [cli];
  return { args, display: fromSource ? `node --import tsx ${cli}` : `node ${cli}` };
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True when 127.0.0.1:port (or the unix socket `target`) accepts a connection within 500 ms. */
export function accepts(target: number | Target): Promise<boolean> {
  return new Promise((resolve) => {
    const s =
      typeof target === 'number'
        ? connect(target, '127.0.0.1')
        : target.kind === 'unix'
          ? connect(target.path)
          : connect(target.port, target.host);
    const done = (ok: boolean) => {
      s.removeAllListeners();
      s.on('error', () => {});
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** The agent's environment: ours without AUTHZ_* (which would override the generated config). */
function agentEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AUTHZ_')) env[k] = v;
  return env;
}

export async function spawnAgent(o: SpawnAgentOptions): Promise<SpawnedAgent> {
  const target: Target =
    o.unixPath === undefined
      ? { kind: 'tcp', host: '127.0.0.1', port: await freePort() }
      : { kind: 'unix', path: o.unixPath };
  const listen = formatTarget(target);
  const cmd = agentCommand();
  const args = [
    ...(o.nodeOptions ?? []),
    ...cmd.args,
    'serve',
    '--config',
    o.configPath,
    '--listen',
    listen,
    '--metrics-listen',
    o.metricsListen ?? 'off',
    '--log-level',
    o.logLevel ?? 'warn',
    ...(o.workers !== undefined && o.workers > 1 ? ['--workers', String(o.workers)] : []),
  ];
  const child = spawn(process.execPath, args, { env: agentEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  let out = '';
  const keep = (chunk: Buffer) => {
    out += chunk.toString('utf8');
    if (out.length > OUTPUT_KEEP) out = out.slice(-OUTPUT_KEEP);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      resolve();
    });
  });

  const deadline = Date.now() + (o.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (exited) throw new Error(`the agent exited during start-up:\n${out.trim()}`);
    if (await accepts(target)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the agent did not listen on ${listen} in time:\n${out.trim()}`);
    }
    await sleep(50);
  }
  const pid = child.pid!;
  return {
    pid,
    target,
    command: `${cmd.display} serve --config ${o.configPath} --listen ${listen}`,
    sample: () => readProc(pid),
    output: () => out,
    async stop(deadlineMs = 10_000) {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
      await exit;
      clearTimeout(timer);
    },
  };
}
