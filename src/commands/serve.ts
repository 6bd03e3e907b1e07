/** `serve`: run the agent until SIGTERM/SIGINT; SIGHUP reloads the config atomically. */
import cluster from 'node:cluster';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { ConfigError, formatIssue } from '../config/errors.js';
import { parseListenAddress } from '../config/listen-address.js';
import { type AgentConfig, checkEngine, loadConfig } from '../config/load.js';
import { UsageError } from '../errors.js';
import { startEndpoints } from '../http-endpoints.js';
import { createLogger } from '../log.js';
import { type Runtime, startRuntime } from '../runtime.js';
import { removeStaleSocket, SocketPathInUse } from '../stale-socket.js';
import type { CliValues } from './options.js';

/** How long a graceful stop may take before what is left is destroyed. */
export const STOP_DEADLINE_MS = 10_000;

export function cliOverrides(values: CliValues): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (values.listen !== undefined) o.listen = values.listen;
  if (values['metrics-listen'] !== undefined) {
    o.metrics = { listen: values['metrics-listen'] === 'off' ? null : values['metrics-listen'] };
  }
  if (values['log-level'] !== undefined) o.log = { level: values['log-level'] };
  return o;
}

function load(values: CliValues): AgentConfig {
  return loadConfig({ path: values.config, overrides: cliOverrides(values) });
}

export async function runServe(values: CliValues): Promise<number> {
  const workers = values.workers === undefined ? 1 : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) {
    throw new UsageError(`--workers takes a whole number from 1 to 256, got "${values.workers}"`);
  }
  // Validate before forking, so a bad config stops the process with the field path.
  const config = load(values);
  const logger = createLogger(config.settings.log.level);
  // The process that will own the listeners clears what a killed predecessor left (workers
  // share the primary's SPOP socket: a worker would find it accepting and refuse).
  if (cluster.isPrimary) {
    try {
      await clearStaleSockets(config, logger);
    } catch (err) {
      if (!(err instanceof SocketPathInUse)) throw err;
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
  }
  if (workers > 1 && cluster.isPrimary) {
    // A configured key set the engine refuses is a config error (exit 2, the field path), said
    // once by the primary rather than by each worker as a failed start.
    await checkEngine(config);
    return runPrimary(workers, config, logger);
  }
  return runWorker(values, config, logger);
}

/** removeStaleSocket() for each unix address the agent listens on (SPOP, endpoints). */
async function clearStaleSockets(config: AgentConfig, logger: Logger): Promise<void> {
  for (const value of [config.settings.listen, config.settings.metrics.listen]) {
    if (value === null) continue;
    const at = parseListenAddress(value);
    if (typeof at === 'string' || at.kind !== 'unix') continue;
    if (await removeStaleSocket(at.path)) {
      logger.warn({ path: at.path }, 'removed a stale unix socket (its process is gone)');
    }
  }
}

async function runWorker(values: CliValues, config: AgentConfig, logger: Logger): Promise<number> {
  let runtime: Runtime;
  try {
    runtime = await startRuntime(config, logger, { endpoints: !cluster.isWorker });
  } catch (err) {
    // A cluster worker's IPC channel would keep it alive after main() returns its exit code.
    if (cluster.isWorker && process.connected) process.disconnect();
    throw err;
  }
  if (cluster.isWorker) reportToPrimary(runtime);
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(async () => {
      try {
        await runtime.reload(load(values));
        runtime.metrics.onConfigReload(true);
      } catch (err) {
        runtime.metrics.onConfigReload(false);
        const detail = err instanceof ConfigError ? err.issues.map(formatIssue) : String(err);
        logger.error({ err: detail }, 'config reload failed; keeping the running config');
      }
    });
  });
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping: draining SPOP connections');
      runtime.close(STOP_DEADLINE_MS).then(
        () => {
          logger.info('stopped');
          // A cluster worker's IPC channel would keep it alive: let go of it once drained.
          if (cluster.isWorker && process.connected) process.disconnect();
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    if (cluster.isWorker) process.once('disconnect', () => stop('SIGTERM'));
  });
}

const READY_MESSAGE = 'spoe-authz:ready';
interface ReadyMessage {
  type: typeof READY_MESSAGE;
  ready: boolean;
  detail: unknown;
}

/** Workers tell the primary whether they are ready (it serves /readyz and /metrics for all). */
function reportToPrimary(runtime: Runtime): void {
  // Constructing one installs prom-client's worker-side listener for the primary's requests.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([runtime.metrics.registry]);
  const send = () => {
    const engine = runtime.engine();
    const msg: ReadyMessage = { type: READY_MESSAGE, ready: engine.ready(), detail: engine.issuerStatus() };
    if (process.connected) process.send?.(msg);
  };
  send();
  setInterval(send, 1_000).unref();
}

/** node:cluster primary: N workers share the SPOP port; signals are relayed. */
async function runPrimary(workers: number, config: AgentConfig, logger: Logger): Promise<number> {
  logger.info({ workers }, 'starting workers');
  const readiness = new Map<number, ReadyMessage>();
  // Workers that got through start-up (their first ready report comes after listen()).
  const started = new Set<number>();
  cluster.on('message', (worker, msg: ReadyMessage) => {
    if (msg?.type !== READY_MESSAGE) return;
    readiness.set(worker.id, msg);
    started.add(worker.id);
  });
  cluster.on('exit', (worker) => readiness.delete(worker.id));
  let endpoints: Server | null = null;
  if (config.settings.metrics.listen !== null) {
    const aggregator = new AggregatorRegistry();
    const at = parseListenAddress(config.settings.metrics.listen);
    if (typeof at === 'string') throw new TypeError(at);
    endpoints = await startEndpoints(at, {
      alive: () => !stopping,
      readiness: () => {
        const states = [...readiness.values()];
        return {
          ready: !stopping && states.length === workers && states.every((m) => m.ready),
          detail: states.map((m) => m.detail),
        };
      },
      metrics: async () => ({ contentType: aggregator.contentType, body: await aggregator.clusterMetrics() }),
    });
  }
  let stopping = false;
  const fork = () => {
    if (!stopping) cluster.fork();
  };
  for (let i = 0; i < workers; i++) fork();
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  });
  return new Promise<number>((resolve) => {
    /** Stops every worker; resolves with `code` (1 if some had to be killed). */
    const stop = (reason: string, code: number) => {
      if (stopping) return;
      stopping = true;
      logger.info({ reason }, 'stopping workers');
      endpoints?.close();
      endpoints?.closeAllConnections();
      const alive = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
      let left = alive.length;
      if (left === 0) resolve(code);
      for (const w of alive) {
        w.once('exit', () => {
          if (--left === 0) resolve(code);
        });
        w.process.kill('SIGTERM');
      }
      setTimeout(() => {
        for (const w of alive) w.process.kill('SIGKILL');
        resolve(1);
      }, STOP_DEADLINE_MS + 2_000).unref();
    };
    cluster.on('exit', (worker, code, signal) => {
      if (stopping) return;
      if (!started.delete(worker.id)) {
        // Died before it served (a port in use, a file it cannot read): another would die the
        // same way. Exit non-zero, so that systemd or the container runtime sees the failure
        // and applies its own restart policy, instead of a silent loop here.
        logger.error({ worker: worker.process.pid, code, signal }, 'a worker failed to start; stopping');
        stop('a worker failed to start', 1);
        return;
      }
      logger.error({ worker: worker.process.pid, code, signal }, 'worker exited; starting another');
      // Not unref'd: with no metrics listener this timer is all that keeps the primary alive.
      setTimeout(fork, 1_000);
    });
    process.once('SIGTERM', () => stop('SIGTERM', 0));
    process.once('SIGINT', () => stop('SIGINT', 0));
  });
}
