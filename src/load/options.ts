/**
 * Options of the load generator, validated from CLI-style values (strings and booleans), with
 * defaults and hard caps so a run is always bounded in time, count and memory.
 */
import { ALGORITHMS, DEV_ALGORITHM } from '../auth/index.js';
import { UsageError } from '../errors.js';
import type { GeneratorGc } from './gc.js';
import { isLoopback, parseTarget, type Target } from './target.js';

export type TokenMode =
  | { readonly kind: 'reuse' }
  | { readonly kind: 'pool'; readonly size: number }
  | { readonly kind: 'unique' };

/** How stream/frame ids are chosen (reference §1.13). */
export type IdStyle = '3.1' | '2.6';

/**
 * Open loop: how the generator waits for the next send time. `sleep` blocks the thread in
 * short sleeps (Atomics.wait, at most 50 µs each) and leaves the CPU to the agent; `spin`
 * polls the event loop without pause (send times exact to a few µs, one core busy).
 */
export type Pacing = 'sleep' | 'spin';

export type Algorithm = (typeof ALGORITHMS)[number];

export interface LoadOptions {
  readonly target: Target;
  /** Start the agent as a child process (on a free loopback port) instead of using `target`. */
  readonly spawnAgent: boolean;
  /** With `spawnAgent`: the agent's config file (default: one generated for the token issuer). */
  readonly agentConfig: string | null;
  /** With `spawnAgent`: extra node flags for the agent, e.g. `--cpu-prof`. */
  readonly agentNodeOptions: readonly string[];
  /** Without `spawnAgent`: the pid of the agent at `target`, whose CPU and RSS are reported. */
  readonly agentPid: number | null;
  readonly connections: number;
  /** NOTIFYs in flight per connection. */
  readonly pipeline: number;
  /** Target decisions/s, open loop; null = as fast as possible (closed loop). */
  readonly rate: number | null;
  /** Open loop: how the wait for the next send time is spent. */
  readonly pacing: Pacing;
  /**
   * Open loop: a request due is held until the oldest one held is this late (µs), then all of
   * them go out in one write; 0 = each as soon as due.
   */
  readonly batchUs: number;
  /** The generator's V8 GC: on its main thread only (default), or V8's parallel helpers. */
  readonly generatorGc: GeneratorGc;
  /** Measured phase length in seconds; null = bounded by `requests` only. */
  readonly durationS: number | null;
  /** Measured requests; null = bounded by `durationS` only. */
  readonly requests: number | null;
  readonly warmupS: number;
  /** An ACK not received this long after its NOTIFY was written counts as a timeout. */
  readonly timeoutMs: number;
  readonly tokens: TokenMode;
  /** Share of requests carrying an invalid token (half bad signature, half expired). */
  readonly invalidShare: number;
  readonly alg: Algorithm;
  /** Tokens to send, one per line (expected valid); replaces minting. */
  readonly tokenFile: string | null;
  readonly ids: IdStyle;
  readonly json: boolean;
  /** One progress line per second on stderr. */
  readonly progress: boolean;
}

export const LIMITS = {
  connections: 1_000,
  pipeline: 1_000,
  rate: 5_000_000,
  durationS: 3_600,
  requests: 100_000_000,
  warmupS: 300,
  timeoutMs: 60_000,
  poolSize: 1_000_000,
  batchUs: 100_000,
} as const;

/** See LoadOptions.batchUs. */
export const DEFAULT_BATCH_US = 0;

export const DEFAULT_TARGET = '127.0.0.1:12345';
export const DEFAULT_DURATION_S = 10;

/** What the CLI hands over: parseArgs values (strings, booleans, string arrays). */
export type RawLoadValues = Readonly<Record<string, string | boolean | readonly string[] | undefined>>;

function str(values: RawLoadValues, name: string): string | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new UsageError(`--${name} takes a value`);
  return v;
}

function num(values: RawLoadValues, name: string, min: number, max: number, integer: boolean): number | null {
  const s = str(values, name);
  if (s === undefined) return null;
  const n = Number(s.replaceAll('_', ''));
  if (s.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    const kind = integer ? 'a whole number' : 'a number';
    throw new UsageError(`--${name} takes ${kind} from ${min} to ${max}, got "${s}"`);
  }
  return n;
}

export function parseTokenMode(value: string): TokenMode {
  if (value === 'reuse') return { kind: 'reuse' };
  if (value === 'unique') return { kind: 'unique' };
  const m = /^pool:(\d+)$/.exec(value);
  if (m !== null) {
    const size = Number(m[1]);
    if (size >= 1 && size <= LIMITS.poolSize) return { kind: 'pool', size };
  }
  throw new UsageError(`--tokens takes reuse, pool:N (1..${LIMITS.poolSize}) or unique, got "${value}"`);
}

/** Validates and completes the options. Throws {@link UsageError}. */
export function parseLoadOptions(values: RawLoadValues): LoadOptions {
  const spawnAgent = values['spawn-agent'] === true;
  const targetText = str(values, 'target');
  if (spawnAgent && targetText !== undefined) {
    throw new UsageError('--target and --spawn-agent exclude each other (the agent gets a free port)');
  }
  const target = parseTarget(targetText ?? DEFAULT_TARGET);
  if (typeof target === 'string') throw new UsageError(`--target: ${target}`);
  if (!isLoopback(target) && values['allow-remote'] !== true) {
    throw new UsageError(
      `--target ${targetText} is not a loopback address; load tests against another machine need --allow-remote`,
    );
  }
  const agentConfig = str(values, 'config') ?? null;
  const agentNodeOptions = (str(values, 'agent-node-options') ?? '').split(/\s+/).filter((s) => s !== '');
  if (!spawnAgent && (agentNodeOptions.length > 0 || agentConfig !== null)) {
    throw new UsageError('--agent-node-options and --config apply to --spawn-agent only');
  }
  const agentPid = num(values, 'agent-pid', 1, 2 ** 22, true);
  if (spawnAgent && agentPid !== null) {
    throw new UsageError('--agent-pid names an agent started elsewhere; --spawn-agent reports its own');
  }

  const requests = num(values, 'requests', 1, LIMITS.requests, true);
  let durationS = num(values, 'duration', 0.1, LIMITS.durationS, false);
  if (durationS === null && requests === null) durationS = DEFAULT_DURATION_S;

  const alg = (str(values, 'alg') ?? DEV_ALGORITHM) as Algorithm;
  if (!(ALGORITHMS as readonly string[]).includes(alg)) {
    throw new UsageError(`--alg takes one of ${ALGORITHMS.join(', ')}, got "${alg}"`);
  }
  const tokenFile = str(values, 'token-file') ?? null;
  if (tokenFile !== null && str(values, 'alg') !== undefined) {
    throw new UsageError('--alg does not apply to --token-file (the file decides the algorithm)');
  }
  if (alg !== DEV_ALGORITHM && !spawnAgent) {
    throw new UsageError(
      `the development issuer signs ${DEV_ALGORITHM} only: --alg ${alg} needs --spawn-agent ` +
        '(the script then runs its own issuer and configures the agent for it) or --token-file',
    );
  }
  if (alg !== DEV_ALGORITHM && agentConfig !== null) {
    throw new UsageError(`--alg ${alg} writes its own agent config; it cannot be combined with --config`);
  }

  const pacing = str(values, 'pacing') ?? 'sleep';
  if (values['batch-us'] !== undefined && values.rate === undefined) {
    throw new UsageError('--batch-us applies to an open loop: give --rate too');
  }
  const generatorGc = str(values, 'generator-gc') ?? 'single';
  if (generatorGc !== 'single' && generatorGc !== 'parallel') {
    throw new UsageError(`--generator-gc takes single or parallel, got "${generatorGc}"`);
  }
  if (pacing !== 'sleep' && pacing !== 'spin') {
    throw new UsageError(`--pacing takes sleep or spin, got "${pacing}"`);
  }

  const ids = str(values, 'ids') ?? '3.1';
  if (ids !== '3.1' && ids !== '2.6') throw new UsageError(`--ids takes 3.1 or 2.6, got "${ids}"`);

  return {
    target,
    spawnAgent,
    agentConfig,
    agentNodeOptions,
    agentPid,
    connections: num(values, 'connections', 1, LIMITS.connections, true) ?? 4,
    pipeline: num(values, 'pipeline', 1, LIMITS.pipeline, true) ?? 20,
    rate: num(values, 'rate', 1, LIMITS.rate, false),
    pacing,
    batchUs: num(values, 'batch-us', 0, LIMITS.batchUs, true) ?? DEFAULT_BATCH_US,
    generatorGc,
    durationS,
    requests,
    warmupS: num(values, 'warmup', 0, LIMITS.warmupS, false) ?? 1,
    timeoutMs: num(values, 'timeout', 1, LIMITS.timeoutMs, true) ?? 1_500,
    tokens: parseTokenMode(str(values, 'tokens') ?? 'reuse'),
    invalidShare: num(values, 'invalid-share', 0, 1, false) ?? 0,
    alg,
    tokenFile,
    ids,
    json: values.json === true,
    progress: values.quiet !== true,
  };
}
