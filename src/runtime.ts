/**
 * The running agent: the SPOP server, the authorization engine behind it, the operations
 * endpoint, and config reload. The CLI owns signals and process exit; this owns the parts.
 */

import { chmod } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { createAuthorizeHandler } from './agent/handler.js';
import { DecisionVars, FAIL_CLOSED_ACTIONS } from './agent/vars.js';
import type { AuthzEngine, Decision } from './auth/index.js';
import {
  formatListenAddress,
  isLocalListen,
  type ListenAddress,
  parseListenAddress,
} from './config/listen-address.js';
import { type AgentConfig, createEngine, reloadEnginePolicy, startEngine } from './config/load.js';
import { AgentError } from './errors.js';
import { startEndpoints } from './http-endpoints.js';
import { AgentMetrics } from './metrics.js';
import { SpopServer } from './spop/index.js';

export interface Runtime {
  readonly spop: SpopServer;
  /** Where SPOP listens (the real port when 0 was asked). */
  readonly address: string;
  /** Where /metrics, /healthz, /readyz listen, or null. */
  readonly endpointsAddress: string | null;
  engine(): AuthzEngine;
  readonly metrics: AgentMetrics;
  /** Applies a new config; throws (keeping the old one) when it cannot. */
  reload(next: AgentConfig): Promise<void>;
  close(deadlineMs?: number): Promise<void>;
}

export interface RuntimeOptions {
  /** Serve /metrics, /healthz, /readyz from this process (false in cluster workers). */
  readonly endpoints?: boolean;
}

export async function startRuntime(
  config: AgentConfig,
  logger: Logger,
  options: RuntimeOptions = {},
): Promise<Runtime> {
  if (config.dev) {
    const listen = mustParse(config.settings.listen);
    if (isLocalListen(listen)) {
      logger.warn(
        { source: config.source },
        'DEVELOPMENT SETUP: the built-in development issuer is enabled; its private key is public ' +
          '(anyone can mint tokens). Never use this in production: configure your own issuers.',
      );
    } else {
      // Asked for explicitly (the default never enables it off loopback): say what it exposes.
      logger.warn(
        { source: config.source, listen: config.settings.listen },
        `DANGER: the development issuer is enabled on ${config.settings.listen}, which is not loopback. ` +
          'Its private key is in the public repository: anyone who can send a request through the HAProxy ' +
          'in front of this agent can mint a token with any role, admin included, and be allowed. ' +
          'Use this only for a demo on an isolated network; remove devIssuer (AUTHZ_DEV_ISSUER) otherwise.',
      );
    }
  }
  const auditLogger = logger.child({ component: 'audit' });
  const engineLogger = logger.child({ component: 'authz' });
  let current = config;
  let engine = createEngine(config, { logger: engineLogger });

  const s = config.settings.spop;
  const spop = new SpopServer({
    handler: () => [], // replaced below, once the metrics exist
    fallbackActions: () => [...FAIL_CLOSED_ACTIONS],
    maxFrameSize: s.maxFrameSize,
    maxConnections: s.maxConnections,
    limitPolicy: s.limitPolicy,
    idleTimeoutMs: s.idleTimeoutMs,
    helloTimeoutMs: s.helloTimeoutMs,
    frameTimeoutMs: s.frameTimeoutMs,
    handlerTimeoutMs: s.handlerTimeoutMs,
    logger: logger.child({ component: 'spop' }),
  });

  const metrics = new AgentMetrics({ engine: () => engine, spop });
  const onDecision = (d: Decision, seconds: number) => metrics.onDecision(d, seconds);
  // A new handler per config: its DecisionVars (the `vars` setting, with its compiled ACKs) too.
  const handlerFor = (e: AuthzEngine, c: AgentConfig) =>
    createAuthorizeHandler({
      engine: e,
      audit: c.settings.audit,
      auditLogger,
      onDecision,
      vars: new DecisionVars(c.settings.vars),
    });
  spop.setHandler(handlerFor(engine, config));

  // Keys first, so readiness is true from the first request when the provider answers; a
  // provider that is down does not stop the agent from serving (it denies with 503 meanwhile).
  await startEngine(engine, config);
  /** A failed listen: release what is started (the engine's timers, the SPOP server), then say where. */
  const released = async (address: string, err: unknown): Promise<ListenError> => {
    engine.close();
    await spop.close({ deadlineMs: 0 });
    return new ListenError(address, err);
  };
  const listen = mustParse(config.settings.listen);
  let info: AddressInfo | string;
  try {
    info =
      listen.kind === 'unix' ? await spop.listen(listen.path) : await spop.listen(listen.port, listen.host);
    if (listen.kind === 'unix' && s.socketMode !== null)
      await chmod(listen.path, Number.parseInt(s.socketMode, 8));
  } catch (err) {
    throw await released(config.settings.listen, err);
  }
  const address =
    typeof info === 'string'
      ? `unix:${info}`
      : formatListenAddress({ kind: 'tcp', host: info.address, port: info.port });
  let closing = false;

  let endpoints: Server | null = null;
  let endpointsAddress: string | null = null;
  if (config.settings.metrics.listen !== null && options.endpoints !== false) {
    const at = mustParse(config.settings.metrics.listen);
    try {
      endpoints = await startEndpoints(at, {
        alive: () => !closing,
        readiness: () => ({ ready: !closing && engine.ready(), detail: engine.issuerStatus() }),
        metrics: () => metrics.render(),
      });
    } catch (err) {
      throw await released(config.settings.metrics.listen, err);
    }
    const a = endpoints.address();
    endpointsAddress =
      a === null || typeof a === 'string'
        ? `unix:${a}`
        : formatListenAddress({ kind: 'tcp', host: a.address, port: a.port });
  }
  logger.info(
    { spop: address, endpoints: endpointsAddress, source: config.source, ready: engine.ready() },
    'agent listening',
  );

  return {
    spop,
    address,
    endpointsAddress,
    engine: () => engine,
    metrics,
    async reload(next: AgentConfig): Promise<void> {
      const restartOnly = (['listen', 'spop', 'metrics'] as const).filter(
        (k) => !isDeepStrictEqual(next.settings[k], current.settings[k]),
      );
      if (restartOnly.length > 0)
        logger.warn({ settings: restartOnly }, 'these settings change only on restart');
      const { policy: _np, ...nextRest } = next.authz;
      const { policy: _p, ...curRest } = current.authz;
      if (isDeepStrictEqual(nextRest, curRest)) {
        // Same issuers, keys, caches: keep the warm engine, swap the policy atomically.
        reloadEnginePolicy(engine, next);
        // SIGHUP is also how operators say "keys rotated": refetch now instead of at the next
        // scheduled refresh. Never rejects; on failure the cached keys stay (stale-if-error).
        await engine.refreshKeys();
      } else {
        const fresh = createEngine(next, { logger: engineLogger });
        await startEngine(fresh, next);
        const old = engine;
        engine = fresh;
        // In-flight decisions keep the old engine until they finish; close it after they can have.
        setTimeout(() => old.close(), next.settings.spop.handlerTimeoutMs + 1_000).unref();
      }
      spop.setHandler(handlerFor(engine, next));
      current = next;
      logger.info({ source: next.source, ready: engine.ready() }, 'config reloaded');
    },
    async close(deadlineMs = 5_000): Promise<void> {
      if (closing) return;
      closing = true;
      await spop.close({ deadlineMs });
      engine.close();
      if (endpoints !== null) {
        const ep = endpoints;
        await new Promise<void>((resolve) => {
          ep.close(() => resolve());
          ep.closeAllConnections();
        });
      }
    },
  };
}

/**
 * Code `listen_failed`: an address the agent could not listen on (in use, not permitted, no
 * such interface). Whatever the runtime had started is released before it is thrown, so the
 * process can end on its own.
 */
export class ListenError extends AgentError {
  readonly address: string;
  constructor(address: string, cause: unknown) {
    const e = cause as NodeJS.ErrnoException;
    const why = typeof e?.code === 'string' ? `${e.code} (${describeErrno(e.code)})` : String(cause);
    super('listen_failed', `cannot listen on ${address}: ${why}`, { cause });
    this.address = address;
  }
}

function describeErrno(code: string): string {
  switch (code) {
    case 'EADDRINUSE':
      return 'another process listens there';
    case 'EACCES':
      return 'permission denied';
    case 'EADDRNOTAVAIL':
      return 'no such local address';
    default:
      return 'see the cause';
  }
}

function mustParse(value: string): ListenAddress {
  const a = parseListenAddress(value);
  if (typeof a === 'string') throw new TypeError(`listen address "${value}": ${a}`);
  return a;
}
