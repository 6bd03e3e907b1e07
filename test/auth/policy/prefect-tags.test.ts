/**
 * The tags haproxy.cfg acts on: `worker-poll` (own rate limit), `safe-retry` (L7 retries
 * allowed) and `websocket`; and that nothing with side effects is tagged safe-retry.
 */
import { describe, expect, it } from 'vitest';
import { AuthzEngine, devIssuerConfig, mintDevToken } from '../../../src/auth/index.js';

const UUID = '6f1c5e2a-0000-4000-8000-000000000001';

async function decide(roles: string[], method: string, path: string, query: string | null = null) {
  const engine = AuthzEngine.create({ issuers: [devIssuerConfig()] });
  await engine.start();
  const token = await mintDevToken({ sub: `s-${roles.join('-')}`, roles });
  const d = await engine.decide({
    method,
    path,
    query,
    host: null,
    authorization: `Bearer ${token}`,
    cookie: null,
    src: '127.0.0.1',
  });
  engine.close();
  return d;
}

describe('Prefect preset tags', () => {
  it.each([
    [['worker'], 'POST', '/api/work_pools/k8s/get_scheduled_flow_runs', 'worker-poll'],
    [['worker'], 'POST', '/api/work_pools/k8s/workers/heartbeat', 'worker-poll'],
    [['worker'], 'GET', `/api/flow_runs/${UUID}`, 'safe-retry'],
    [['worker'], 'POST', '/api/flow_runs/filter', 'safe-retry'],
    [['worker'], 'GET', '/api/events/in', 'websocket'],
    [['worker'], 'GET', '/api/events/out', 'websocket'],
    [['worker'], 'GET', '/api/work_pools/k8s/workers/connect', 'websocket'],
    [['viewer'], 'GET', '/api/events/out', 'websocket'],
    [['viewer'], 'GET', '/api/logs/out', 'websocket'],
    [['viewer'], 'GET', `/api/deployments/${UUID}`, 'safe-retry'],
    [['viewer'], 'POST', '/api/flow_runs/filter', 'safe-retry'],
    [['viewer'], 'POST', '/api/ui/flows/count-deployments', 'safe-retry'],
    [['viewer'], 'GET', '/api/admin/version', 'safe-retry'],
    [['admin'], 'GET', '/api/admin/settings', 'safe-retry'],
    [['admin'], 'GET', `/api/block_documents/${UUID}`, 'secrets', 'include_secrets=true'],
  ])('%j %s %s is allowed with tag %s', async (roles, method, path, tag, query?: string) => {
    const d = await decide(roles, method, path, query ?? null);
    expect(d).toMatchObject({ allow: true, tag });
  });

  it.each([
    [['worker'], 'POST', '/api/flow_runs/'],
    [['worker'], 'POST', `/api/flow_runs/${UUID}/set_state`],
    [['operator'], 'POST', `/api/deployments/${UUID}/create_flow_run`],
    [['developer'], 'DELETE', `/api/deployments/${UUID}`],
    [['admin'], 'POST', '/api/flows/bulk_delete'],
    [['admin'], 'PUT', '/api/admin/storage'],
  ])('%j %s %s (a write) is allowed but never tagged safe-retry', async (roles, method, path) => {
    const d = await decide(roles, method, path);
    expect(d.allow).toBe(true);
    expect(d.tag).not.toBe('safe-retry');
  });
});
