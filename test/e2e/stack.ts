/**
 * The whole product on loopback for end-to-end tests: the Prefect stub, the real agent process,
 * and the real HAProxy running the SHIPPED `haproxy/haproxy.cfg` and `haproxy/spoe-agent.conf`
 * byte for byte. Addresses are given the way users give them: through the environment variables
 * the shipped file reads (`"${PREFECT_BIND-:8080}"` ...), set for the HAProxy process only.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mintDevToken } from '../../src/auth/index.js';
import {
  type AgentProcess,
  type AgentProcessOptions,
  REPO_ROOT,
  startAgent,
} from '../helpers/agent-process.js';
import { type HaproxyInstance, startHaproxy } from '../helpers/haproxy.js';
import { type HttpResponse, httpRequest } from '../helpers/http.js';
import { freePort } from '../helpers/net.js';
import { type PrefectStub, startPrefectStub } from '../helpers/prefect-stub.js';

export const SHIPPED_HAPROXY_CFG = readFileSync(join(REPO_ROOT, 'haproxy/haproxy.cfg'), 'utf8');
export const SHIPPED_SPOE_CONF = readFileSync(join(REPO_ROOT, 'haproxy/spoe-agent.conf'), 'utf8');

/** The variables `haproxy.cfg` reads; every one the file documents. */
export interface ShippedHaproxyEnv {
  PREFECT_BIND: string;
  PREFECT_BACKEND: string;
  SPOE_CONFIG: string;
  SPOE_AGENT1: string;
  SPOE_AGENT2?: string;
  SPOE_AGENTS_DNS?: string;
  SPOE_AGENTS_NAMESERVER?: string;
  PEER_NAME?: string;
  PEER_ADDR: string;
  PEER2_NAME?: string;
  PEER2_ADDR?: string;
  PEER3_NAME?: string;
  PEER3_ADDR?: string;
  RATE_LIMIT_USER?: string;
  RATE_LIMIT_WORKER_POLL?: string;
  ADMIN_SOCKET?: string;
  STATS_BIND?: string;
  /** spoe-agent.conf: `timeout processing` (default 1500ms). */
  SPOE_TIMEOUT_PROCESSING?: string;
}

/**
 * Runs `fn` with `vars` set in process.env and restores it afterwards. The harness spawns
 * HAProxy (and `haproxy -c`) with this process's environment, which is how the shipped file's
 * `${VAR-default}` placeholders get their values. Each vitest file runs in its own worker.
 */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(vars)) {
    saved.set(k, process.env[k]);
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/**
 * Starts HAProxy on the shipped files. The frontend gets a free port (`hap.url(path)`), the
 * admin socket is `unix@admin.sock`, relative to HAProxy's cwd (the harness directory), so
 * `hap.command()` and `hap.showStat()` work, and the SPOE file is copied there as `spoe.conf`.
 */
export async function startShippedHaproxy(opts: {
  agent: string;
  backend: string;
  env?: Partial<ShippedHaproxyEnv>;
  /** Instead of the shipped spoe-agent.conf (a test of a user's variant of it). */
  spoeConf?: string;
}): Promise<HaproxyInstance> {
  const fe = await freePort();
  const peer = await freePort();
  const env: ShippedHaproxyEnv = {
    PREFECT_BIND: `127.0.0.1:${fe}`,
    PREFECT_BACKEND: opts.backend,
    SPOE_CONFIG: 'spoe.conf',
    SPOE_AGENT1: opts.agent,
    PEER_ADDR: `127.0.0.1:${peer}`,
    ADMIN_SOCKET: 'unix@admin.sock',
    ...opts.env,
  };
  const unset = {
    SPOE_AGENT2: undefined,
    STATS_BIND: undefined,
    RATE_LIMIT_USER: undefined,
    SPOE_TIMEOUT_PROCESSING: undefined,
    SPOE_AGENTS_DNS: undefined,
    SPOE_AGENTS_NAMESERVER: undefined,
    PEER2_NAME: undefined,
    PEER2_ADDR: undefined,
    PEER3_NAME: undefined,
    PEER3_ADDR: undefined,
  };
  return withEnv({ ...unset, ...env }, () =>
    startHaproxy({
      cfg: SHIPPED_HAPROXY_CFG,
      spoeConf: opts.spoeConf ?? SHIPPED_SPOE_CONF,
      ports: { fe, peer },
      waitPorts: ['fe'],
    }),
  );
}

export interface Stack {
  readonly stub: PrefectStub;
  readonly agent: AgentProcess;
  readonly hap: HaproxyInstance;
  stop(): Promise<void>;
}

/** Stub + agent + shipped HAProxy, each on free loopback ports. */
export async function startStack(opts: {
  agent: AgentProcessOptions;
  haproxyEnv?: Partial<ShippedHaproxyEnv>;
  spoeConf?: string;
}): Promise<Stack> {
  const stub = await startPrefectStub();
  let agent: AgentProcess | undefined;
  try {
    agent = await startAgent(opts.agent);
    const hap = await startShippedHaproxy({
      agent: agent.spopAddress,
      backend: stub.address,
      ...(opts.haproxyEnv ? { env: opts.haproxyEnv } : {}),
      ...(opts.spoeConf !== undefined ? { spoeConf: opts.spoeConf } : {}),
    });
    const a = agent;
    return {
      stub,
      agent: a,
      hap,
      async stop() {
        await hap.stop();
        await a.dispose();
        await stub.close();
      },
    };
  } catch (err) {
    await agent?.dispose();
    await stub.close();
    throw err;
  }
}

/** A dev-issuer token (the agent must run with `devIssuer: true`). */
export function devToken(
  sub: string,
  roles: string[],
  opts: { ttlSeconds?: number; now?: number; claims?: Record<string, unknown> } = {},
) {
  return mintDevToken({ sub, roles, ...opts });
}

export interface SentRequest extends HttpResponse {
  /** The `X-Test-Id` this request carried; find it at the stub with `stub.withHeader`. */
  testId: string;
}

/**
 * One request through HAProxy, tagged with a fresh `X-Test-Id` header so the test can tell
 * whether (and how) this very request reached the stub.
 */
export async function send(
  hap: HaproxyInstance,
  method: string,
  path: string,
  opts: { token?: string; headers?: Record<string, string>; body?: string; rawPath?: boolean } = {},
): Promise<SentRequest> {
  const testId = randomUUID();
  const headers: Record<string, string> = { 'x-test-id': testId, ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await httpRequest(hap.url(path), {
    method,
    headers,
    ...(opts.body !== undefined ? { body: opts.body } : {}),
    ...(opts.rawPath === true ? { rawPath: path } : {}),
  });
  return { ...res, testId };
}

/** Prefect-shaped ids for paths. */
export const uuid = (): string => randomUUID();
