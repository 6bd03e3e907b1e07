/**
 * What operators rely on, against the real agent process: /healthz, /readyz (per issuer),
 * /metrics after real decisions over SPOP, and --workers N sharing one SPOP port with the
 * primary aggregating metrics and readiness.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintDevToken } from '../../src/auth/index.js';
import { type AgentProcess, REPO_ROOT, startAgent } from '../helpers/agent-process.js';
import { httpRequest } from '../helpers/http.js';
import { freePort } from '../helpers/net.js';
import { authorizeOnce } from '../helpers/spop-client.js';

async function get(port: number, path: string) {
  return httpRequest(`http://127.0.0.1:${port}${path}`);
}

/** Sum of a metric's samples whose label set contains `labels` (e.g. `reason="ok"`). */
function sample(metrics: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(name) || line.startsWith('#')) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (labels !== '' && !rest.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe('operations endpoints of a single agent process', () => {
  let agent: AgentProcess;
  beforeAll(async () => {
    const deadPort = await freePort(); // an OIDC provider that is not there
    agent = await startAgent({
      config: {
        devIssuer: true,
        issuers: [
          {
            id: 'gone',
            issuer: `http://127.0.0.1:${deadPort}/realms/x`,
            audiences: ['prefect'],
            algorithms: ['RS256'],
            keys: { type: 'oidc', timeoutMs: 500, retryIntervalSeconds: 60 },
          },
        ],
      },
    });
  });
  afterAll(() => agent?.dispose());

  it('is alive, and not ready while one issuer has no keys', async () => {
    expect((await get(agent.metricsPort, '/healthz')).status).toBe(200);
    const ready = await get(agent.metricsPort, '/readyz');
    expect(ready.status).toBe(503);
    const body = JSON.parse(ready.body) as { ready: boolean; issuers: { id: string; ready: boolean }[] };
    expect(body.ready).toBe(false);
    expect(body.issuers.map((i) => [i.id, i.ready])).toEqual([
      ['gone', false],
      ['dev', true],
    ]);
  });

  it('counts decisions, cache lookups and SPOP frames in /metrics', async () => {
    const token = await mintDevToken({ sub: 'mia-metrics', roles: ['viewer'] });
    expect(await authorizeOnce(agent.spopPort, token, '/api/flows/filter')).toMatchObject({ allow: true });
    expect(await authorizeOnce(agent.spopPort, token, '/api/flows/filter')).toMatchObject({ cache: 'hit' });
    expect(await authorizeOnce(agent.spopPort, token, '/api/admin/settings')).toMatchObject({ status: 403 });
    const res = await get(agent.metricsPort, '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const m = res.body;
    expect(sample(m, 'spoe_authz_decisions_total', 'status="200",reason="ok",tag="safe-retry"')).toBe(2);
    expect(sample(m, 'spoe_authz_decisions_total', 'status="403",reason="forbidden"')).toBe(1);
    expect(sample(m, 'spoe_authz_decision_duration_seconds_count')).toBe(3);
    expect(sample(m, 'spoe_authz_token_cache_lookups_total', 'result="hit"')).toBe(2);
    expect(sample(m, 'spoe_authz_token_cache_lookups_total', 'result="miss"')).toBe(1);
    expect(sample(m, 'spoe_authz_spop_notify_frames_total')).toBe(3);
    expect(sample(m, 'spoe_authz_spop_ack_frames_total')).toBe(3);
    expect(sample(m, 'spoe_authz_issuer_ready', 'issuer="gone"')).toBe(0);
    expect(sample(m, 'spoe_authz_jwks_fetch_failures_total', 'issuer="gone"')).toBeGreaterThanOrEqual(1);
  });
});

/** `serve --workers 2` with the dev issuer (tsx compiles in each process: allow for it). */
function startTwoWorkers(): Promise<AgentProcess> {
  return startAgent({ config: { devIssuer: true }, args: ['--workers', '2'], readyTimeoutMs: 40_000 });
}

/** The pids that logged `msg` (from record `since` on). */
function pidsLogging(agent: AgentProcess, msg: string, since = 0): Set<unknown> {
  return new Set(
    agent
      .records()
      .slice(since)
      .filter((r) => r.msg === msg)
      .map((r) => r.pid),
  );
}

/** Waits (up to 20 s) until both workers logged "agent listening" from their own pid. */
async function bothListening(agent: AgentProcess): Promise<number> {
  for (let i = 0; i < 100 && pidsLogging(agent, 'agent listening').size < 2; i++)
    await new Promise((r) => setTimeout(r, 200));
  return pidsLogging(agent, 'agent listening').size;
}

describe('--workers 2', () => {
  let agent: AgentProcess;
  beforeAll(async () => {
    agent = await startTwoWorkers();
  });
  afterAll(() => agent?.dispose());

  it('runs two workers on one SPOP port; the primary aggregates readiness and metrics; SIGTERM stops all', async () => {
    expect(await bothListening(agent)).toBe(2);

    let ready = await get(agent.metricsPort, '/readyz');
    for (let i = 0; i < 50 && ready.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 200));
      ready = await get(agent.metricsPort, '/readyz');
    }
    expect(ready.status).toBe(200);
    expect((JSON.parse(ready.body) as { issuers: unknown[] }).issuers).toHaveLength(2);

    const token = await mintDevToken({ sub: 'wally-workers', roles: ['viewer'] });
    for (let i = 0; i < 6; i++) {
      expect(await authorizeOnce(agent.spopPort, token, '/api/flows/filter')).toMatchObject({ allow: true });
    }
    const m = (await get(agent.metricsPort, '/metrics')).body;
    // Summed over both workers by the primary.
    expect(sample(m, 'spoe_authz_spop_notify_frames_total')).toBe(6);
    expect(sample(m, 'spoe_authz_decisions_total', 'reason="ok"')).toBe(6);
    expect(sample(m, 'spoe_authz_issuer_ready', 'issuer="dev"')).toBe(1);

    const exit = await agent.stop();
    expect(exit.code).toBe(0);
    expect(
      agent
        .records()
        .filter((r) => r.msg === 'stopped')
        .map((r) => r.pid),
    ).toHaveLength(2);
  });
});

describe('--workers 2 and SIGHUP', () => {
  let agent: AgentProcess;
  beforeAll(async () => {
    agent = await startTwoWorkers();
  });
  afterAll(() => agent?.dispose());

  it('the primary relays SIGHUP: every worker reloads, and decisions on new connections follow', async () => {
    const pids = (msg: string, since = 0) => pidsLogging(agent, msg, since);
    expect(await bothListening(agent)).toBe(2);
    const token = await mintDevToken({ sub: 'hal-hup', roles: ['viewer'] });
    for (let i = 0; i < 4; i++) {
      expect(await authorizeOnce(agent.spopPort, token, '/api/flows/filter')).toMatchObject({ allow: true });
    }

    const since = agent.mark();
    await agent.writeConfig({
      devIssuer: true,
      policy: {
        rules: [
          { name: 'ops.deny.flows-filter', effect: 'deny', methods: ['POST'], path: '/api/flows/filter' },
        ],
      },
    });
    agent.signal('SIGHUP');
    for (let i = 0; i < 100 && pids('config reloaded', since).size < 2; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(pids('config reloaded', since).size).toBe(2);
    // Each on a fresh connection: the kernel spreads them over both workers.
    for (let i = 0; i < 6; i++) {
      expect(await authorizeOnce(agent.spopPort, token, '/api/flows/filter')).toMatchObject({
        allow: false,
        status: 403,
      });
    }
  });
});

describe('--workers 2 when workers die', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spoe-authz-workers-'));
    await writeFile(join(dir, 'agent.json'), JSON.stringify({ devIssuer: true, audit: 'off' }));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** `serve --workers 2` with no metrics listener, its JSON log lines collected. */
  function serveWorkers(spopPort: number) {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'src/cli.ts'),
        'serve',
        '--config',
        join(dir, 'agent.json'),
        '--workers',
        '2',
        '--listen',
        `127.0.0.1:${spopPort}`,
        '--metrics-listen',
        'off',
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const records: { msg?: string; pid?: number }[] = [];
    let partial = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        try {
          records.push(JSON.parse(l) as { msg?: string; pid?: number });
        } catch {}
      }
    });
    child.stderr.resume();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, records, exited };
  }

  async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('workers killed after start are replaced; with no metrics listener the primary stays up meanwhile', async () => {
    const port = await freePort();
    const { child, records, exited } = serveWorkers(port);
    let code: number | null | undefined;
    void exited.then((c) => {
      code = c;
    });
    try {
      const listeners = () => records.filter((r) => r.msg === 'agent listening').map((r) => r.pid);
      await until('two workers listening', () => listeners().length >= 2);
      // Both at once: for a moment the primary has no worker and no listener of its own.
      for (const pid of listeners()) process.kill(pid as number, 'SIGKILL');
      await until('two replacement workers', () => listeners().length >= 4, 40_000);
      expect(code).toBeUndefined(); // the primary did not exit while it had no worker
      const token = await mintDevToken({ sub: 'rex-replaced', roles: ['viewer'] });
      expect(await authorizeOnce(port, token, '/api/flows/filter')).toMatchObject({ allow: true });
      expect(records.some((r) => r.msg === 'worker exited; starting another')).toBe(true);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 90_000);

  it('a worker that cannot start (its SPOP port is taken) stops the agent with exit 1', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const { records, exited } = serveWorkers((busy.address() as AddressInfo).port);
      expect(await exited).toBe(1);
      expect(records.some((r) => r.msg === 'a worker failed to start; stopping')).toBe(true);
      expect(records.some((r) => r.msg === 'worker exited; starting another')).toBe(false);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  }, 60_000);
});
