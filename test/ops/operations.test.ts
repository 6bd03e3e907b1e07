/**
 * What operators rely on, against the real agent process: /healthz, /readyz (per issuer),
 * /metrics after real decisions over SPOP, and --workers N sharing one SPOP port with the
 * primary aggregating metrics and readiness.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintDevToken } from '../../src/auth/index.js';
import { FrameType } from '../../src/spop/index.js';
import { type AgentProcess, startAgent } from '../helpers/agent-process.js';
import { httpRequest } from '../helpers/http.js';
import { freePort } from '../helpers/net.js';
import { SpopTestClient } from '../helpers/spop-client.js';

/** One HELLO + one authorize NOTIFY on a fresh connection; returns the ACK's vars. */
async function authorize(port: number, token: string, path: string): Promise<Record<string, unknown>> {
  const client = await SpopTestClient.connect(port);
  try {
    await client.hello({ capabilities: 'pipelining' });
    client.sendNotify(1, 1, 'authorize', [
      { name: 'method', value: 'POST' },
      { name: 'path', value: path },
      { name: 'authorization', value: `Bearer ${token}` },
    ]);
    const ack = await client.next();
    if (ack.type !== FrameType.ACK || !('actions' in ack))
      throw new Error(`expected an ACK, got ${ack.type}`);
    return Object.fromEntries(ack.actions.map((a) => [a.name, a.op === 'set' ? a.value.value : undefined]));
  } finally {
    client.socket.destroy();
  }
}

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
    expect(await authorize(agent.spopPort, token, '/api/flows/filter')).toMatchObject({ allow: true });
    expect(await authorize(agent.spopPort, token, '/api/flows/filter')).toMatchObject({ cache: 'hit' });
    expect(await authorize(agent.spopPort, token, '/api/admin/settings')).toMatchObject({ status: 403 });
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

describe('--workers 2', () => {
  let agent: AgentProcess;
  beforeAll(async () => {
    agent = await startAgent({
      config: { devIssuer: true },
      args: ['--workers', '2'],
      readyTimeoutMs: 40_000,
    });
  });
  afterAll(() => agent?.dispose());

  it('runs two workers on one SPOP port; the primary aggregates readiness and metrics; SIGTERM stops all', async () => {
    // Both workers log "agent listening" from their own pid.
    const listening = async () =>
      new Set(
        agent
          .records()
          .filter((r) => r.msg === 'agent listening')
          .map((r) => r.pid),
      ).size;
    for (let i = 0; i < 100 && (await listening()) < 2; i++) await new Promise((r) => setTimeout(r, 200));
    expect(await listening()).toBe(2);

    let ready = await get(agent.metricsPort, '/readyz');
    for (let i = 0; i < 50 && ready.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 200));
      ready = await get(agent.metricsPort, '/readyz');
    }
    expect(ready.status).toBe(200);
    expect((JSON.parse(ready.body) as { issuers: unknown[] }).issuers).toHaveLength(2);

    const token = await mintDevToken({ sub: 'wally-workers', roles: ['viewer'] });
    for (let i = 0; i < 6; i++) {
      expect(await authorize(agent.spopPort, token, '/api/flows/filter')).toMatchObject({ allow: true });
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
