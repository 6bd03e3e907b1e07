import { beforeAll, describe, expect, it } from 'vitest';
import type { AuthzEngine, PolicyConfigInput } from '../../../src/auth/index.js';
import { prefectPresetRules } from '../../../src/auth/policy/prefect-preset.js';
import { TEST_ISS, testEngine } from '../helpers/engine.js';
import { makeKey, NOW_MS, sign, type TestKey } from '../helpers/keys.js';
import { request } from '../helpers/request.js';

const ISS = TEST_ISS;
const ID = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
type Who = 'anonymous' | 'token' | 'viewer' | 'operator' | 'worker' | 'developer' | 'admin';
type Expect = 'allow' | 401 | 403;

let key: TestKey;
const tokens = new Map<Who, string>();

function engine(policy: PolicyConfigInput = {}): AuthzEngine {
  return testEngine(key, () => NOW_MS, { policy });
}

beforeAll(async () => {
  key = await makeKey('ES256', 'k');
  for (const who of ['token', 'viewer', 'operator', 'worker', 'developer', 'admin'] as const) {
    const roles = who === 'token' ? [] : [who];
    tokens.set(
      who,
      await sign(key, { iss: ISS, aud: 'prefect', sub: who, claims: { roles, pools: ['k8s-prod'] } }),
    );
  }
});

async function check(e: AuthzEngine, who: Who, method: string, path: string, query?: string, ui?: boolean) {
  const d = await e.decide(
    request(method, path, { token: tokens.get(who) ?? null, query: query ?? null, prefectUi: ui ?? false }),
  );
  return d.allow ? 'allow' : d.status;
}

// (who, method, path, query, X-Prefect-UI) -> expected. Paths as clients send them.
const table: Array<[Who, string, string, string | null, boolean, Expect]> = [
  // anonymous
  ['anonymous', 'GET', '/api/health', null, false, 'allow'],
  ['anonymous', 'GET', '/api/ready', null, false, 'allow'],
  ['anonymous', 'GET', '/api/version', null, false, 'allow'],
  ['anonymous', 'HEAD', '/api/hello', null, false, 'allow'],
  ['anonymous', 'GET', '/', null, false, 'allow'],
  ['anonymous', 'GET', '/ui-settings', null, false, 'allow'],
  ['anonymous', 'GET', '/flow-runs/flow-run/abc', null, false, 'allow'],
  ['anonymous', 'POST', '/api/health', null, false, 401],
  ['anonymous', 'GET', '/api/admin/version', null, false, 401],
  ['anonymous', 'GET', '/api/flows/x', null, false, 401],
  ['anonymous', 'POST', '/api/flows/filter', null, false, 401],
  ['anonymous', 'GET', '/api/admin/settings', null, false, 401],
  ['anonymous', 'GET', '/api/events/in', null, false, 401],
  ['anonymous', 'GET', '/api', null, false, 401],
  ['anonymous', 'POST', '/', null, false, 401],
  // any valid token, no role
  ['token', 'GET', '/api/admin/version', null, false, 'allow'],
  ['token', 'GET', '/api/csrf-token', 'client=abc', false, 'allow'],
  ['token', 'GET', '/api/openapi.json', null, false, 'allow'],
  ['token', 'GET', '/api/docs', null, false, 'allow'],
  ['token', 'GET', '/api/health', null, false, 'allow'],
  ['token', 'GET', `/api/flows/${ID}`, null, false, 403],
  ['token', 'POST', '/api/flows/filter', null, false, 403],
  // viewer
  ['viewer', 'GET', `/api/flows/${ID}`, null, false, 'allow'],
  ['viewer', 'GET', `/api/flow_runs/${ID}/graph-v2`, null, false, 'allow'],
  ['viewer', 'GET', '/api/admin/storage', null, false, 'allow'],
  ['viewer', 'GET', '/api/events/out', null, false, 'allow'],
  ['viewer', 'GET', '/api/logs/out', null, false, 'allow'],
  ['viewer', 'POST', '/api/flows/filter', null, false, 'allow'],
  ['viewer', 'POST', '/api/flow_runs/count', null, false, 'allow'],
  ['viewer', 'POST', '/api/deployments/paginate', null, false, 'allow'],
  ['viewer', 'POST', '/api/flow_runs/history', null, false, 'allow'],
  ['viewer', 'POST', '/api/flow_runs/lateness', null, false, 'allow'],
  ['viewer', 'POST', `/api/flow_runs/${ID}/input/filter`, null, false, 'allow'],
  ['viewer', 'POST', '/api/events/count-by/day', null, false, 'allow'],
  ['viewer', 'POST', '/api/ui/flows/count-deployments', null, false, 'allow'],
  ['viewer', 'POST', '/api/work_pools/k8s/workers/filter', null, false, 'allow'],
  ['viewer', 'POST', '/api/work_pools/k8s/concurrency_status', null, false, 'allow'],
  ['viewer', 'POST', '/api/artifacts/latest/count', null, false, 'allow'],
  ['viewer', 'POST', '/api/v2/concurrency_limits/filter', null, false, 'allow'],
  ['viewer', 'POST', `/api/work_queues/${ID}/get_runs`, null, true, 'allow'],
  ['viewer', 'POST', `/api/work_queues/${ID}/get_runs`, null, false, 403],
  ['viewer', 'PUT', '/api/saved_searches/', null, false, 403],
  ['viewer', 'DELETE', `/api/saved_searches/${ID}`, null, false, 403],
  ['viewer', 'POST', '/api/block_documents/count', null, false, 'allow'],
  ['viewer', 'POST', '/api/block_documents/filter', null, false, 403],
  ['viewer', 'GET', `/api/block_documents/${ID}`, null, false, 'allow'],
  ['viewer', 'GET', `/api/block_documents/${ID}`, 'include_secrets=true', false, 403],
  ['viewer', 'GET', `/api/block_documents/${ID}`, 'include_secrets=True', false, 403],
  ['viewer', 'GET', `/api/block_documents/${ID}`, 'include_secrets=1', false, 403],
  ['viewer', 'GET', `/api/block_documents/${ID}`, 'include_secrets=false&include_secrets=yes', false, 403],
  ['viewer', 'GET', `/api/block_documents/${ID}`, 'include%5Fsecrets=on', false, 403],
  ['viewer', 'GET', `/api/block_documents/${ID}`, 'include_secrets=false', false, 'allow'],
  ['viewer', 'GET', '/api/block_types/slug/aws/block_documents', 'include_secrets=true', false, 403],
  ['viewer', 'GET', '/api/admin/settings', null, false, 403],
  ['viewer', 'GET', '/api/events/in', null, false, 403],
  ['viewer', 'GET', '/api/work_pools/k8s/workers/connect', null, false, 403],
  ['viewer', 'GET', '/api/task_runs/subscriptions/scheduled', null, false, 403],
  ['viewer', 'POST', `/api/deployments/${ID}/create_flow_run`, null, false, 403],
  ['viewer', 'POST', `/api/flow_runs/${ID}/set_state`, null, false, 403],
  ['viewer', 'POST', '/api/work_pools/k8s/get_scheduled_flow_runs', null, false, 403],
  ['viewer', 'DELETE', `/api/flows/${ID}`, null, false, 403],
  ['viewer', 'PATCH', `/api/deployments/${ID}`, null, false, 403],
  ['viewer', 'POST', '/api/logs/', null, false, 403],
  // operator
  ['operator', 'POST', '/api/flows/filter', null, false, 'allow'],
  ['operator', 'POST', `/api/deployments/${ID}/create_flow_run`, null, false, 'allow'],
  ['operator', 'POST', `/api/deployments/${ID}/create_flow_run/bulk`, null, false, 'allow'],
  ['operator', 'POST', `/api/deployments/${ID}/pause_deployment`, null, false, 'allow'],
  ['operator', 'POST', `/api/flow_runs/${ID}/set_state`, null, false, 'allow'],
  ['operator', 'POST', `/api/flow_runs/${ID}/resume`, null, false, 'allow'],
  ['operator', 'POST', '/api/flow_runs/bulk_set_state', null, false, 'allow'],
  ['operator', 'POST', '/api/concurrency_limits/tag/db/reset', null, false, 'allow'],
  ['operator', 'POST', `/api/work_queues/${ID}/get_runs`, null, false, 'allow'],
  ['operator', 'GET', `/api/block_documents/${ID}`, 'include_secrets=true', false, 403],
  ['operator', 'PATCH', `/api/deployments/${ID}`, null, false, 403],
  ['operator', 'POST', '/api/deployments/', null, false, 403],
  ['operator', 'DELETE', `/api/flow_runs/${ID}`, null, false, 403],
  ['operator', 'POST', '/api/work_pools/k8s/get_scheduled_flow_runs', null, false, 403],
  ['operator', 'GET', '/api/admin/settings', null, false, 403],
  // worker (machine role: not a viewer)
  ['worker', 'GET', '/api/admin/version', null, false, 'allow'],
  ['worker', 'GET', '/api/work_pools/k8s', null, false, 'allow'],
  ['worker', 'POST', '/api/work_pools/k8s/get_scheduled_flow_runs', null, false, 'allow'],
  ['worker', 'POST', '/api/work_pools/k8s/workers/heartbeat', null, false, 'allow'],
  ['worker', 'GET', '/api/work_pools/k8s/workers/connect', null, false, 'allow'],
  ['worker', 'POST', '/api/work_pools/', null, false, 'allow'],
  ['worker', 'GET', `/api/deployments/${ID}`, null, false, 'allow'],
  ['worker', 'GET', '/api/deployments/name/etl/daily', null, false, 'allow'],
  ['worker', 'POST', '/api/flow_runs/', null, false, 'allow'],
  ['worker', 'PATCH', `/api/flow_runs/${ID}`, null, false, 'allow'],
  ['worker', 'POST', `/api/flow_runs/${ID}/set_state`, null, false, 'allow'],
  ['worker', 'POST', '/api/flow_runs/filter', null, false, 'allow'],
  ['worker', 'PATCH', `/api/flow_runs/${ID}/labels`, null, false, 'allow'],
  ['worker', 'POST', '/api/task_runs/', null, false, 'allow'],
  ['worker', 'POST', `/api/task_runs/${ID}/set_state`, null, false, 'allow'],
  ['worker', 'POST', '/api/logs/', null, false, 'allow'],
  ['worker', 'POST', '/api/events', null, false, 'allow'],
  ['worker', 'GET', '/api/events/in', null, false, 'allow'],
  ['worker', 'GET', '/api/task_runs/subscriptions/scheduled', null, false, 'allow'],
  ['worker', 'GET', `/api/block_documents/${ID}`, 'include_secrets=true', false, 'allow'],
  [
    'worker',
    'GET',
    '/api/block_types/slug/aws-credentials/block_documents/name/prod',
    'include_secrets=true',
    false,
    'allow',
  ],
  ['worker', 'GET', '/api/block_types/slug/aws/block_documents', 'include_secrets=true', false, 403],
  ['worker', 'GET', '/api/variables/name/env', null, false, 'allow'],
  ['worker', 'GET', '/api/admin/storage', null, false, 'allow'],
  ['worker', 'POST', '/api/v2/concurrency_limits/increment-with-lease', null, false, 'allow'],
  ['worker', 'POST', `/api/v2/concurrency_limits/leases/${ID}/renew`, null, false, 'allow'],
  ['worker', 'POST', `/api/deployments/${ID}/create_flow_run`, null, false, 'allow'],
  ['worker', 'GET', `/api/flows/${ID}`, null, false, 'allow'],
  ['worker', 'POST', '/api/flow_runs/history', null, false, 403],
  ['worker', 'POST', '/api/deployments/filter', null, false, 403],
  ['worker', 'GET', '/api/admin/settings', null, false, 403],
  ['worker', 'DELETE', `/api/flow_runs/${ID}`, null, false, 403],
  ['worker', 'POST', '/api/deployments/', null, false, 403],
  // developer
  ['developer', 'POST', '/api/deployments/', null, false, 'allow'],
  ['developer', 'PATCH', `/api/deployments/${ID}`, null, false, 'allow'],
  ['developer', 'DELETE', `/api/deployments/${ID}`, null, false, 'allow'],
  ['developer', 'POST', `/api/deployments/${ID}/schedules`, null, false, 'allow'],
  ['developer', 'DELETE', `/api/deployments/${ID}/schedules/${ID}`, null, false, 'allow'],
  ['developer', 'POST', '/api/block_documents/', null, false, 'allow'],
  ['developer', 'POST', '/api/block_documents/filter', null, false, 'allow'],
  ['developer', 'GET', '/api/block_types/slug/aws/block_documents', 'include_secrets=true', false, 'allow'],
  ['developer', 'PATCH', '/api/variables/name/env', null, false, 'allow'],
  ['developer', 'PUT', `/api/automations/${ID}`, null, false, 'allow'],
  ['developer', 'DELETE', `/api/automations/owned-by/${ID}`, null, false, 'allow'],
  ['developer', 'POST', '/api/work_pools/k8s/queues', null, false, 'allow'],
  ['developer', 'POST', '/api/v2/concurrency_limits/', null, false, 'allow'],
  ['developer', 'POST', '/api/block_types/', null, false, 'allow'],
  ['developer', 'DELETE', `/api/flow_runs/${ID}`, null, false, 'allow'],
  ['developer', 'POST', `/api/deployments/${ID}/create_flow_run`, null, false, 'allow'],
  ['developer', 'POST', '/api/work_pools/k8s/get_scheduled_flow_runs', null, false, 'allow'],
  ['developer', 'POST', '/api/flows/filter', null, false, 'allow'],
  ['developer', 'GET', '/api/admin/settings', null, false, 403],
  ['developer', 'POST', '/api/flow_runs/bulk_delete', null, false, 403],
  ['developer', 'DELETE', '/api/work_pools/k8s/workers/w1', null, false, 403],
  ['developer', 'DELETE', `/api/flows/${ID}`, null, false, 403],
  ['developer', 'POST', '/api/block_types/install_system_block_types', null, false, 403],
  ['developer', 'PUT', '/api/admin/storage', null, false, 403],
  // admin
  ['admin', 'GET', '/api/admin/settings', null, false, 'allow'],
  ['admin', 'PUT', '/api/admin/storage', null, false, 'allow'],
  ['admin', 'POST', '/api/flow_runs/bulk_delete', null, false, 'allow'],
  ['admin', 'DELETE', `/api/flows/${ID}`, null, false, 'allow'],
  ['admin', 'POST', '/api/block_types/install_system_block_types', null, false, 'allow'],
  ['admin', 'GET', `/api/block_documents/${ID}`, 'include_secrets=true', false, 'allow'],
  ['admin', 'POST', '/api/admin/database/clear', null, false, 'allow'],
  ['admin', 'DELETE', '/', null, false, 403],
  // path tricks
  ['viewer', 'GET', '/api/../api/admin/settings', null, false, 403],
  ['viewer', 'GET', '//api//admin/settings', null, false, 403],
  ['viewer', 'GET', '/api/%61dmin/settings', null, false, 403],
  ['viewer', 'GET', '/api/admin/settings/', null, false, 403],
  ['viewer', 'GET', '/api/%2e%2e/api/admin/settings', null, false, 403],
  ['viewer', 'GET', '/api/admin%2Fsettings', null, false, 403],
  ['viewer', 'GET', '/api\\admin\\settings', null, false, 403],
  ['viewer', 'POST', '/api/flows/x/../filter', null, false, 'allow'],
  ['viewer', 'POST', `/api/deployments/${ID}/./create_flow_run`, null, false, 403],
  ['anonymous', 'GET', '/api/health/../admin/settings', null, false, 401],
  ['anonymous', 'GET', '/ui/../api/flows', null, false, 401],
];

describe('Prefect preset', () => {
  let preset: AuthzEngine;
  beforeAll(() => {
    preset = engine();
  });

  it.each(table)('%s %s %s ?%s ui=%s -> %s', async (who, method, path, query, ui, expected) => {
    expect(await check(preset, who, method, path, query ?? undefined, ui)).toBe(expected);
  });

  it('covers every role', () => {
    expect(new Set(table.map((row) => row[0]))).toEqual(
      new Set(['anonymous', 'token', 'viewer', 'operator', 'worker', 'developer', 'admin']),
    );
  });

  it('reports the granting role, the rule and the tag', async () => {
    const e = engine();
    const op = await e.decide(
      request('POST', `/api/deployments/${ID}/create_flow_run`, { token: tokens.get('operator') ?? null }),
    );
    expect(op).toMatchObject({
      role: 'operator',
      rule: 'prefect.operator.post.deployments.id.create_flow_run',
    });
    const dev = await e.decide(
      request('POST', '/api/flows/filter', { token: tokens.get('developer') ?? null }),
    );
    expect(dev).toMatchObject({
      role: 'developer',
      rule: 'prefect.viewer.post.collections.filter+count+paginate',
    });
    const secrets = await e.decide(
      request('GET', `/api/block_documents/${ID}`, {
        token: tokens.get('viewer') ?? null,
        query: 'include_secrets=1',
      }),
    );
    expect(secrets).toMatchObject({
      allow: false,
      role: 'viewer',
      rule: 'prefect.deny.secrets',
      tag: 'secrets',
    });
    const health = await e.decide(request('GET', '/api/health'));
    expect(health).toMatchObject({ allow: true, role: 'anonymous', rule: 'prefect.health', tag: 'health' });
  });

  it('has unique rule names', () => {
    const names = prefectPresetRules({ basePath: '/api', ui: 'anonymous' }).map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('honours another base path', async () => {
    const e = engine({ prefect: { basePath: '/prefect/api' } });
    expect(await check(e, 'viewer', 'POST', '/prefect/api/flows/filter')).toBe('allow');
    expect(await check(e, 'viewer', 'GET', '/prefect/api/admin/settings')).toBe(403);
    expect(await check(e, 'anonymous', 'GET', '/prefect/api/health')).toBe('allow');
    expect(await check(e, 'viewer', 'POST', '/api/flows/filter')).toBe(403);
  });

  it('can require a token for the UI shell, or not serve it', async () => {
    const auth = engine({ prefect: { ui: 'authenticated' } });
    expect(await check(auth, 'anonymous', 'GET', '/')).toBe(401);
    expect(await check(auth, 'token', 'GET', '/')).toBe('allow');
    const none = engine({ prefect: { ui: 'deny' } });
    expect(await check(none, 'admin', 'GET', '/')).toBe(403);
  });

  it('scopes worker pool routes by a claim when asked', async () => {
    const e = engine({ prefect: { workPoolClaim: 'pools' } });
    expect(await check(e, 'worker', 'POST', '/api/work_pools/k8s-prod/get_scheduled_flow_runs')).toBe(
      'allow',
    );
    expect(await check(e, 'worker', 'POST', '/api/work_pools/k8s-dev/get_scheduled_flow_runs')).toBe(403);
    expect(await check(e, 'worker', 'GET', '/api/work_pools/k8s-dev/workers/connect')).toBe(403);
  });

  it('lets custom rules go first', async () => {
    const e = engine({
      rules: [
        {
          name: 'no-deletes-from-outside',
          effect: 'deny',
          methods: ['DELETE'],
          path: '/api/**',
          tag: 'blocked',
        },
      ],
    });
    const d = await e.decide(request('DELETE', `/api/flows/${ID}`, { token: tokens.get('admin') ?? null }));
    expect(d).toMatchObject({
      allow: false,
      status: 403,
      rule: 'no-deletes-from-outside',
      tag: 'blocked',
      role: 'admin',
    });
  });
});
