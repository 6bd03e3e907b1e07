import type { PrefectPresetConfig, RuleConfigInput } from './policy-config.js';

/**
 * Built-in policy for a self-hosted Prefect server, after authz-reference.md 3.2 (route
 * inventory) and 3.9 (role model). Rules are data: the same shape as custom rules, evaluated
 * after them, first match wins, no match denies.
 *
 * Reading guide. Roles are conditions, so an allow rule for role X is skipped for other roles
 * and evaluation goes on. Where a broad rule further down (viewer: every GET) would grant
 * something only some roles may have, an explicit deny comes first. Deny rules here are not
 * anonymous: a request without a token falls through to the default deny and gets 401, not 403.
 *
 * Paths are relative to `basePath` (default /api). UUID path parameters are plain `:id`
 * segments: Prefect answers 422 for a non-UUID, and the segment count already tells routes apart.
 */

/**
 * POSTs that only read (authz-reference 3.2 "Read-only POST matcher"). Block documents: /count
 * only; /filter can ask for secrets in its body and has its own rule below.
 */
const READ_ONLY_POSTS: Array<[slug: string, path: string]> = [
  [
    'collections.filter+count+paginate',
    '/(flows|flow_runs|task_runs|deployments|work_pools|work_queues|artifacts|block_types|block_schemas|concurrency_limits|variables|automations|saved_searches|logs|events|task_workers)/(filter|count|paginate)',
  ],
  ['artifacts.latest.filter+count+paginate', '/artifacts/latest/(filter|count|paginate)'],
  ['v2.concurrency_limits.filter+count+paginate', '/v2/concurrency_limits/(filter|count|paginate)'],
  ['block_documents.count', '/block_documents/count'],
  [
    'work_pools.pool.queues+workers.filter+count+paginate',
    '/work_pools/:pool/(queues|workers)/(filter|count|paginate)',
  ],
  ['flow_runs+task_runs.history', '/(flow_runs|task_runs)/history'],
  ['flow_runs.lateness', '/flow_runs/lateness'],
  ['flow_runs.id.input.filter', '/flow_runs/:id/input/filter'],
  ['events.count-by', '/events/count-by/:countable'],
  ['ui', '/ui/**'],
  ['work_pools.pool.concurrency_status', '/work_pools/:pool/concurrency_status'],
  ['work_queues.id.concurrency_status', '/work_queues/:id/concurrency_status'],
];

/**
 * Tags haproxy.cfg acts on: `worker-poll` has its own, higher rate limit; `safe-retry` lets
 * HAProxy replay the request on a failed backend (GET/HEAD and read-only POSTs only);
 * `websocket` marks upgrades. One tag per rule.
 */
export const TAG = {
  workerPoll: 'worker-poll',
  safeRetry: 'safe-retry',
  websocket: 'websocket',
} as const;

/** Worker calls made on a timer, many per minute per worker (and per served flow). */
const WORKER_POLLS = [
  '/work_pools/:pool/get_scheduled_flow_runs',
  '/work_pools/:pool/workers/heartbeat',
  '/deployments/get_scheduled_flow_runs',
];

/** Websocket upgrades (GET) that only read: viewers and workers. */
const READ_SOCKETS = ['/events/out', '/logs/out'];

/** Websocket upgrades (GET) that write: only workers and admins. */
const WRITE_SOCKETS = [
  '/events/in',
  '/work_pools/:pool/workers/connect',
  '/task_runs/subscriptions/scheduled',
];

/** Machine role: workers, flow-run processes, task workers (authz-reference 3.3, 3.9). */
const WORKER: Array<[methods: string[], path: string]> = [
  [['GET'], '/work_pools/:pool'],
  [['POST'], WORKER_POLLS[0] as string],
  [['POST'], WORKER_POLLS[1] as string],
  [['POST'], '/work_pools/:pool/concurrency_status'],
  [['POST'], '/work_pools/:pool/workers/filter'],
  [['POST'], '/work_pools/:pool/queues/filter'],
  [['GET'], '/work_pools/:pool/queues/:queue'],
  // Prefect's event client reads the run's work queue to attach it to every event it sends.
  [['GET'], '/work_queues/:id'],
  // Served flows (flow.serve, prefect.serve) poll here.
  [['POST'], WORKER_POLLS[2] as string],
  [['POST'], '/work_pools'],
  [['PATCH'], '/work_pools/:pool'],
  [['GET'], '/deployments/:id'],
  [['GET'], '/deployments/name/:flow/:deployment'],
  [['POST'], '/deployments/:id/create_flow_run'],
  [['GET'], '/flows/:id'],
  [['GET'], '/flows/name/:name'],
  [['POST'], '/flows'],
  [['POST'], '/flow_runs'],
  [['GET', 'PATCH'], '/flow_runs/:id'],
  [['POST'], '/flow_runs/filter'],
  [['POST'], '/flow_runs/:id/(set_state|input)'],
  [['POST'], '/flow_runs/:id/input/filter'],
  [['GET', 'DELETE'], '/flow_runs/:id/input/:key'],
  [['PATCH'], '/flow_runs/:id/labels'],
  [['POST'], '/task_runs'],
  // DELETE: a task worker deletes a scheduled run of a task it does not serve.
  [['GET', 'PATCH', 'DELETE'], '/task_runs/:id'],
  [['POST'], '/task_runs/:id/set_state'],
  [['POST'], '/task_runs/filter'],
  [['POST'], '/logs'],
  [['POST'], '/events'],
  [['POST'], '/artifacts'],
  [['PATCH'], '/artifacts/:id'],
  [['POST'], '/artifacts/filter'],
  [['POST'], '/artifacts/latest/filter'],
  [['GET'], '/artifacts/:key/latest'],
  [['GET'], '/block_documents/:id'],
  [['GET'], '/block_types/slug/:slug'],
  [['GET'], '/block_types/slug/:slug/block_documents/name/:name'],
  [['GET'], '/block_schemas/checksum/:checksum'],
  [['GET'], '/variables/:id'],
  [['GET'], '/variables/name/:name'],
  [['POST'], '/variables/filter'],
  // Variable.set from flow code: create, or overwrite by name.
  [['POST'], '/variables'],
  [['PATCH'], '/variables/name/:name'],
  [['GET'], '/admin/storage'],
  [['POST'], '/concurrency_limits/(increment|decrement)'],
  [['POST'], '/v2/concurrency_limits/(increment|decrement|increment-with-lease|decrement-with-lease)'],
  [['POST'], '/v2/concurrency_limits/leases/:lease/renew'],
  [['GET'], '/concurrency_limits/tag/:tag'],
  [['GET'], '/v2/concurrency_limits/:name'],
  [['GET'], WRITE_SOCKETS[0] as string],
  [['GET'], WRITE_SOCKETS[1] as string],
  [['GET'], WRITE_SOCKETS[2] as string],
  [['GET'], '/events/out'],
];

const SOCKETS = new Set([...READ_SOCKETS, ...WRITE_SOCKETS]);

/** The tag of a worker rule: polls, sockets, plain reads (retry-safe), or none. */
function workerTag(methods: readonly string[], path: string): string | undefined {
  if (WORKER_POLLS.includes(path)) return TAG.workerPoll;
  if (SOCKETS.has(path)) return TAG.websocket;
  if (methods.length === 1 && methods[0] === 'GET') return TAG.safeRetry;
  if (methods[0] === 'POST' && /\/(filter|count|paginate)$/.test(path)) return TAG.safeRetry;
  return undefined;
}

/** Block reads a worker may make with include_secrets (job-variable templating, flow-run blocks). */
const WORKER_SECRET_READS = [
  '/block_documents/:id',
  '/block_types/slug/:slug/block_documents/name/:name',
  '/block_types/slug/:slug',
  '/block_schemas/checksum/:checksum',
];

/** Runner-style actions (Cloud "Runner"). */
const OPERATOR: Array<[methods: string[], path: string]> = [
  [['POST'], '/deployments/:id/create_flow_run'],
  [['POST'], '/deployments/:id/create_flow_run/bulk'],
  [['POST'], '/deployments/:id/schedule'],
  [['POST'], '/deployments/:id/(pause_deployment|resume_deployment)'],
  [['POST'], '/flow_runs/:id/(set_state|resume|input)'],
  [['POST'], '/flow_runs/bulk_set_state'],
  // The UI's "change state" on a task run.
  [['POST'], '/task_runs/:id/set_state'],
  [['PATCH'], '/flow_runs/:id/labels'],
  [['POST'], '/concurrency_limits/tag/:tag/reset'],
  [['POST'], '/work_queues/:id/get_runs'],
];

const WRITE = ['POST', 'PUT', 'PATCH', 'DELETE'];

/** Deployers and CI. */
const DEVELOPER: Array<[methods: string[], path: string]> = [
  [['POST'], '/flows'],
  [['POST'], '/deployments'],
  [['PATCH', 'DELETE'], '/deployments/:id'],
  [['POST'], '/deployments/:id/schedules'],
  [['PATCH', 'DELETE'], '/deployments/:id/schedules/:schedule'],
  [WRITE, '/(block_documents|variables|automations)/**'],
  [WRITE, '/(work_pools|work_queues|artifacts)/**'],
  [WRITE, '/(concurrency_limits|saved_searches)/**'],
  [WRITE, '/v2/concurrency_limits/**'],
  [['POST'], '/(block_types|block_schemas)'],
  // Block.save() and `prefect block register` update the block type they register.
  [['PATCH'], '/block_types/:id'],
  // The automation editor renders its templates here (/automations/templates/validate is above).
  [['POST'], '/templates/validate'],
  [['DELETE'], '/(flow_runs|task_runs)/:id'],
];

/** Admin-only writes a developer's broad rules above would otherwise cover. */
const ADMIN_ONLY_WRITES: Array<[methods: string[], path: string]> = [
  [['POST'], '/:resource/bulk_delete'],
  [['DELETE'], '/work_pools/:pool/workers/:worker'],
];

/** Readable, unique rule names: prefect.<role>.<methods>.<path with params and groups flattened>. */
function ruleName(role: string, methods: readonly string[], path: string): string {
  const slug = path
    .slice(1)
    .replaceAll('/', '.')
    .replace(/[:()]/g, '')
    .replaceAll('|', '+')
    .replaceAll('**', 'all');
  return `prefect.${role}.${methods.join('+').toLowerCase()}.${slug}`;
}

export function prefectPresetRules(options: PrefectPresetConfig): RuleConfigInput[] {
  const base = options.basePath;
  const api = (path: string) => `${base}${path}`;
  const rules: RuleConfigInput[] = [];
  const add = (rule: RuleConfigInput) => rules.push(rule);
  const poolClaim = (path: string): Record<string, { param: string }> | undefined =>
    options.workPoolClaim !== undefined && path.startsWith('/work_pools/:pool')
      ? { [options.workPoolClaim]: { param: 'pool' } }
      : undefined;

  add({
    name: 'prefect.health',
    methods: ['GET'],
    path: api('/(health|ready|version|hello)'),
    anonymous: true,
    tag: 'health',
  });
  add({
    name: 'prefect.admin.secrets',
    methods: ['GET'],
    path: api('/**'),
    query: { include_secrets: { truthy: true } },
    roles: ['admin'],
    tag: 'secrets',
  });
  add({
    name: 'prefect.admin.read',
    methods: ['GET'],
    path: api('/**'),
    roles: ['admin'],
    tag: TAG.safeRetry,
  });
  add({ name: 'prefect.admin', path: api('/**'), roles: ['admin'] });

  // Secrets: block reads with include_secrets (query). The JSON-body variant on
  // POST /block_documents/filter is judged on its body further down.
  add({
    name: 'prefect.developer.get.secrets',
    methods: ['GET'],
    path: api('/**'),
    query: { include_secrets: { truthy: true } },
    roles: ['developer'],
    tag: 'secrets',
  });
  for (const path of WORKER_SECRET_READS) {
    add({
      name: ruleName('worker', ['GET'], `${path}/secrets`),
      methods: ['GET'],
      path: api(path),
      query: { include_secrets: { truthy: true } },
      roles: ['worker'],
      tag: 'secrets',
    });
  }
  add({
    name: 'prefect.deny.secrets',
    effect: 'deny',
    path: api('/**'),
    query: { include_secrets: { truthy: true } },
    tag: 'secrets',
  });
  add({ name: 'prefect.deny.admin-settings', effect: 'deny', path: api('/admin/settings') });
  for (const [methods, path] of ADMIN_ONLY_WRITES) {
    add({ name: ruleName('deny', methods, path), effect: 'deny', methods, path: api(path) });
  }

  // Any valid token: what every Prefect client calls first.
  const read = { methods: ['GET'], tag: TAG.safeRetry };
  add({ name: 'prefect.base', ...read, path: api('/(csrf-token|docs|redoc|openapi.json)') });
  add({ name: 'prefect.base.version', ...read, path: api('/admin/version') });
  add({ name: 'prefect.base.docs', ...read, path: api('/docs/**') });

  for (const [allMethods, path] of WORKER) {
    const claims = poolClaim(path);
    // A GET shares a route with writes (GET+PATCH /flow_runs/:id): split it so the read is retry-safe.
    const groups =
      allMethods.length > 1 && allMethods.includes('GET')
        ? [['GET'], allMethods.filter((m) => m !== 'GET')]
        : [allMethods];
    for (const methods of groups) {
      const tag = workerTag(methods, path);
      add({
        name: ruleName('worker', methods, path),
        methods,
        path: api(path),
        roles: ['worker'],
        ...(claims ? { claims } : {}),
        ...(tag ? { tag } : {}),
      });
    }
  }

  for (const path of WRITE_SOCKETS) {
    add({ name: ruleName('deny', ['GET'], path), effect: 'deny', methods: ['GET'], path: api(path) });
  }
  for (const [methods, path] of OPERATOR) {
    add({ name: ruleName('operator', methods, path), methods, path: api(path), roles: ['operator'] });
  }
  for (const [methods, path] of DEVELOPER) {
    add({ name: ruleName('developer', methods, path), methods, path: api(path), roles: ['developer'] });
  }
  // Secrets asked for in the body (developers and admins matched above).
  add({
    name: 'prefect.deny.body-secrets',
    effect: 'deny',
    methods: ['POST'],
    path: api('/block_documents/filter'),
    body: { include_secrets: { truthy: true } },
    tag: 'secrets',
  });

  for (const path of READ_SOCKETS) {
    add({
      name: ruleName('viewer', ['GET'], path),
      methods: ['GET'],
      path: api(path),
      roles: ['viewer'],
      tag: TAG.websocket,
    });
  }
  add({ name: 'prefect.viewer.read', ...read, path: api('/**'), roles: ['viewer'] });
  for (const [slug, path] of READ_ONLY_POSTS) {
    add({
      name: `prefect.viewer.post.${slug}`,
      methods: ['POST'],
      path: api(path),
      roles: ['viewer'],
      tag: TAG.safeRetry,
    });
  }
  // The Blocks page: block documents without secrets. HAProxy sends this route's body.
  add({
    name: 'prefect.viewer.post.block_documents.filter',
    methods: ['POST'],
    path: api('/block_documents/filter'),
    body: { include_secrets: { truthy: false } },
    roles: ['viewer'],
    tag: TAG.safeRetry,
  });
  add({
    name: 'prefect.viewer.ui-get-runs',
    methods: ['POST'],
    path: api('/work_queues/:id/get_runs'),
    prefectUi: true,
    roles: ['viewer'],
  });

  if (options.ui !== 'deny') {
    add({
      name: 'prefect.ui',
      methods: ['GET'],
      path: '/**',
      pathNot: [api('/**')],
      anonymous: options.ui === 'anonymous',
      tag: 'ui',
    });
  }
  return rules;
}
