/**
 * The load generator: speaks SPOP as HAProxy does to one agent, checks every decision, and
 * reports throughput and latency. `runLoadTest` is what `spoe-authz load` and bench/e2e.ts call.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SpawnedAgent, spawnAgent } from './agent-process.js';
import { currentGc } from './gc.js';
import { issuerFor, type TokenIssuer } from './issuer.js';
import type { LoadOptions } from './options.js';
import {
  cpuPercent,
  type MachineSample,
  machinePercent,
  type ProcSample,
  readMachine,
  readProc,
} from './proc.js';
import { formatMicros, type LoadReport, summarize } from './report.js';
import { Runner, type TickInfo } from './runner.js';
import { formatTarget, type Target } from './target.js';
import { buildTokens, LIMITS_FILE_TOKENS, readTokenFile, TokenKind, type TokenSet } from './tokens.js';

export { type SpawnedAgent, spawnAgent } from './agent-process.js';
export { currentGc, type GeneratorGc, runWithSingleGc } from './gc.js';
export { devIssuer, issuerFor, ownIssuer, type TokenIssuer } from './issuer.js';
export { PREFECT_ROUTES } from './notify.js';
export { type LoadOptions, parseLoadOptions } from './options.js';
export {
  cpuPercent,
  type MachineSample,
  machinePercent,
  type ProcSample,
  readMachine,
  readProc,
} from './proc.js';
export { formatReport, type LoadReport } from './report.js';
export { buildTokens, type TokenSet } from './tokens.js';

export interface LoadIo {
  /** Progress and notices (a line without newline); default: nothing. */
  readonly log?: (line: string) => void;
  /** An agent started elsewhere (same machine) whose CPU and RSS to report, by pid. */
  readonly agentPid?: number;
  /**
   * Aborted (SIGINT, SIGTERM): during the run, sending stops, what is in flight is answered and
   * the report covers the run so far; before it, the run rejects with {@link LoadInterrupted}.
   * Either way a spawned agent is stopped and the temporary files removed.
   */
  readonly signal?: AbortSignal;
}

/** The run was aborted before it started measuring. */
export class LoadInterrupted extends Error {
  override name = 'LoadInterrupted';
}

/** Requests a run may send, to size a `unique` token pool; null when only closed-loop time bounds it. */
function expectedRequests(o: LoadOptions): number | null {
  if (o.requests !== null) return o.requests + (o.rate !== null ? Math.ceil(o.rate * o.warmupS) : 0);
  if (o.rate !== null && o.durationS !== null) return Math.ceil(o.rate * (o.durationS + o.warmupS));
  return null;
}

/** Agent config for a spawned agent: trusts `issuer`, no audit lines, no metrics listener. */
export async function agentConfigFor(
  issuer: TokenIssuer | null,
  tokens: TokenSet,
  o: Pick<LoadOptions, 'connections'>,
  dir: string,
): Promise<Record<string, unknown>> {
  const trust = issuer === null ? { devIssuer: true } : await issuer.agentConfig(dir);
  const config: Record<string, unknown> = {
    ...trust,
    audit: 'off',
    log: { level: 'warn' },
    metrics: { listen: null },
    spop: { maxConnections: Math.max(1_024, o.connections + 16) },
  };
  if (tokens.mode.kind === 'unique') {
    // Keep the cache well below the pool: cycling through the pool then misses every time, so
    // every request pays a verification even when the run outlasts the pre-signed tokens.
    const valid = tokens.tokens[TokenKind.VALID].length;
    const invalid = tokens.tokens[TokenKind.BAD_SIGNATURE].length + tokens.tokens[TokenKind.EXPIRED].length;
    config.cache = {
      maxEntries: Math.max(1, Math.min(10_000, Math.floor(valid / 4))),
      negativeMaxEntries: Math.max(1, Math.min(10_000, Math.floor(invalid / 4))),
    };
  }
  return config;
}

export async function runLoadTest(o: LoadOptions, io: LoadIo = {}): Promise<LoadReport> {
  const log = io.log ?? (() => {});
  let issuer: TokenIssuer | null = null;
  let fileTokens: string[] | null = null;
  if (o.tokenFile !== null) fileTokens = await readTokenFile(o.tokenFile, LIMITS_FILE_TOKENS);
  else issuer = await issuerFor(o.alg);

  const started = performance.now();
  let lastNote = 0;
  const tokens = await buildTokens(issuer, {
    mode: o.tokens,
    invalidShare: o.invalidShare,
    expectedRequests: expectedRequests(o),
    ttlSec: Math.max(3_600, Math.ceil(o.warmupS + (o.durationS ?? 600) + 600)),
    fileTokens,
    onProgress: (done, total) => {
      const now = performance.now();
      if (total >= 2_000 && (now - lastNote > 1_000 || done === total)) {
        lastNote = now;
        log(`signing tokens ahead: ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}`);
      }
    },
  });
  if (performance.now() - started > 1_000) {
    log(`tokens ready in ${((performance.now() - started) / 1000).toFixed(1)} s: ${tokens.description}`);
  }

  let agent: SpawnedAgent | null = null;
  let dir: string | null = null;
  let target: Target = o.target;
  const runner = new Runner(tokens, o);
  try {
    if (o.spawnAgent) {
      dir = await mkdtemp(join(tmpdir(), 'spoe-authz-load-'));
      let configPath = o.agentConfig;
      if (configPath === null) {
        configPath = join(dir, 'agent.json');
        await writeFile(configPath, JSON.stringify(await agentConfigFor(issuer, tokens, o, dir), null, 2));
      }
      agent = await spawnAgent({ configPath, nodeOptions: o.agentNodeOptions });
      target = agent.target;
      log(`agent started: pid ${agent.pid}, ${formatTarget(target)}`);
    }
    if (io.signal?.aborted) throw new LoadInterrupted('interrupted before the run started');
    await runner.connect(target);
    if (io.signal?.aborted) throw new LoadInterrupted('interrupted before the run started');
    const stop = () => runner.stop();
    io.signal?.addEventListener('abort', stop, { once: true });
    const watched: Watched | null =
      agent ??
      (io.agentPid === undefined
        ? null
        : { pid: io.agentPid, command: null, sample: () => readProc(io.agentPid!) });
    return await measure(o, runner, tokens, target, watched, agent !== null, log);
  } finally {
    runner.destroy();
    if (agent !== null) await agent.stop();
    if (dir !== null) await rm(dir, { recursive: true, force: true });
  }
}

/** The agent whose CPU is sampled: spawned by us, or given by pid. */
interface Watched {
  readonly pid: number;
  readonly command: string | null;
  sample(): ProcSample | null;
}

async function measure(
  o: LoadOptions,
  runner: Runner,
  tokens: TokenSet,
  target: Target,
  agent: Watched | null,
  spawned: boolean,
  log: (line: string) => void,
): Promise<LoadReport> {
  let agentFrom: ProcSample | null = null;
  let agentTo: ProcSample | null = null;
  let agentTick = agent?.sample() ?? null;
  let maxRss = agentTick?.rssBytes ?? 0;
  let genFrom = process.cpuUsage();
  let genFromMs = performance.now();
  let genPercent = 0;
  let machineFrom: MachineSample | null = null;
  let machineBusy: number | null = null;
  const result = await runner.run({
    phase: (p) => {
      if (p.name === 'measure') {
        agentFrom = agent?.sample() ?? null;
        machineFrom = readMachine();
        genFrom = process.cpuUsage();
        genFromMs = p.atMs;
      } else if (p.name === 'drain') {
        agentTo = agent?.sample() ?? null;
        machineBusy = machinePercent(machineFrom, readMachine(), cpus().length);
        const used = process.cpuUsage(genFrom);
        genPercent = ((used.user + used.system) / 1000 / Math.max(1, p.atMs - genFromMs)) * 100;
      }
    },
    tick: (t: TickInfo) => {
      let cpu = '';
      if (agent !== null) {
        const now = agent.sample();
        const pct = cpuPercent(agentTick, now);
        if (now !== null) maxRss = Math.max(maxRss, now.rssBytes);
        agentTick = now;
        if (pct !== null) cpu = `  agent cpu ${pct.toFixed(0)}%`;
      }
      if (!o.progress) return;
      const when = t.phase === 'warmup' ? 'warm-up' : `${t.elapsedS.toFixed(0).padStart(4)}s`;
      log(
        `[load] ${when}  ${Math.round(t.acked / t.intervalS).toLocaleString('en-US')}/s` +
          `  p50 ${formatMicros(t.p50Us)}  p99 ${formatMicros(t.p99Us)}  in flight ${t.inFlight}` +
          `  errors ${t.errors}${cpu}`,
      );
    },
  });
  await runner.close();

  const s = result.stats;
  const elapsedMs = Math.max(1, (s.lastAckMs || result.sendStopMs) - result.measureStartMs);
  const lastAgent = agent?.sample() ?? null;
  if (lastAgent !== null) maxRss = Math.max(maxRss, lastAgent.rssBytes);
  const agentCpu = cpuPercent(agentFrom, agentTo);
  const mb = (b: number) => Math.round((b / 1_048_576) * 10) / 10;
  return {
    target: formatTarget(target),
    agent: {
      spawned,
      pid: agent?.pid ?? null,
      command: agent?.command ?? null,
      cpuPercent: agentCpu === null ? null : Math.round(agentCpu * 10) / 10,
      rssMb: lastAgent === null ? null : mb(lastAgent.rssBytes),
      maxRssMb: agent === null ? null : mb(maxRss),
    },
    generator: { cpuPercent: Math.round(genPercent * 10) / 10, gc: currentGc() },
    machine: {
      cores: cpus().length,
      busyPercent: machineBusy === null ? null : Math.round(machineBusy),
      // What neither the agent nor the generator used: other work disturbing the measurement.
      otherPercent:
        machineBusy === null ? null : Math.max(0, Math.round(machineBusy - genPercent - (agentCpu ?? 0))),
    },
    settings: {
      connections: o.connections,
      pipeline: o.pipeline,
      loop: o.rate === null ? 'closed' : 'open',
      rate: o.rate,
      pacing: o.pacing,
      batchUs: o.batchUs,
      durationS: o.durationS,
      requests: o.requests,
      warmupS: o.warmupS,
      timeoutMs: o.timeoutMs,
      ids: o.ids,
      tokens: tokens.description,
      invalidShare: o.invalidShare,
    },
    elapsedS: Math.round(elapsedMs) / 1000,
    sent: s.sent,
    acked: s.acked,
    throughput: Math.round((s.acked / elapsedMs) * 1000),
    expected: { allow: s.sentByKind[0]!, deny: s.sentByKind[1]! + s.sentByKind[2]! },
    allowed: s.allowed,
    denied: s.denied,
    reasons: Object.fromEntries(s.reasons),
    cache: Object.fromEntries(s.cache),
    latencyUs: summarize(s.histogram),
    latencyFrom: o.rate === null ? 'send time' : 'intended send time',
    errors: {
      total: s.errors,
      mismatches: s.mismatches,
      timeouts: s.timeouts,
      lost: s.lost,
      unknownAcks: s.unknownAcks,
      lateAcks: s.lateAcks,
      protocol: s.protocolErrors,
      disconnects: s.disconnects,
      warmup: s.warmupErrors,
    },
    mismatchKinds: Object.fromEntries(s.mismatchKinds),
    errorSamples: [...s.errorSamples],
    unsent: result.unsent,
  };
}
