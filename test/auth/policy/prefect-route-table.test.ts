// The prefect preset held to Prefect's own route table (test/fixtures/prefect/routes.json: every
// /api route of Prefect 3.8, with its source file) and to the call sequences of Prefect's own
// clients (sequences.json). Every route gets, for every role, the decision the fixture states
// on purpose: allowed, denied by a named rule, or denied by the final default.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AuthzEngine, Decision } from '../../../src/auth/index.js';
import { BUILTIN_IMPLIES, BUILTIN_ROLES, type BuiltinRole } from '../../../src/auth/policy/role-model.js';
import { TEST_ISS, testEngine } from '../helpers/engine.js';
import { makeKey, NOW_MS, sign } from '../helpers/keys.js';
import { request } from '../helpers/request.js';

const FIXTURES = new URL('../../fixtures/prefect/', import.meta.url);

interface Route {
  method: string;
  path: string;
  source: string;
  mutation: boolean;
  allow: string[];
  deny: 'rule' | 'default';
  query?: string;
  headers?: Record<string, string>;
  body?: unknown;
  websocket?: boolean;
  note?: string;
}

interface Step {
  method: string;
  path: string;
  query?: string;
  headers?: Record<string, string>;
  body?: unknown;
  websocket?: boolean;
}

interface Sequence {
  name: string;
  role: BuiltinRole;
  sources: string[];
  steps: Step[];
  ui?: Step[];
}

const table = JSON.parse(readFileSync(new URL('routes.json', FIXTURES), 'utf8')) as {
  prefect: { checkedAgainst: string[]; sources: Record<string, { commit: string }> };
  routes: Route[];
};
const { sequences } = JSON.parse(readFileSync(new URL('sequences.json', FIXTURES), 'utf8')) as {
  sequences: Sequence[];
};

type Who = 'anonymous' | 'token' | BuiltinRole;
const WHO: readonly Who[] = ['anonymous', 'token', ...BUILTIN_ROLES];

/** Sample values for Prefect's path parameters. */
const PARAMS: Record<string, string> = {
  id: '3fa85f64-5717-4562-b3fc-2c963f66afa6',
  schedule_id: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
  resource_id: 'prefect.deployment.3fa85f64-5717-4562-b3fc-2c963f66afa6',
  lease_id: '1ea5e000-0000-4000-8000-000000000002',
  name: 'k8s-prod',
  work_pool_name: 'k8s-prod',
  key: 'report',
  flow_name: 'etl',
  deployment_name: 'daily',
  slug: 'aws-credentials',
  block_document_name: 'prod',
  checksum: 'sha256:abc',
  tag: 'db',
  id_or_name: 'db',
  countable: 'day',
  view: 'aggregate-worker-metadata',
};

function concrete(path: string): string {
  return `/api${path.replace(/\{([a-z_]+)\}/g, (_, p: string) => {
    const v = PARAMS[p];
    if (v === undefined) throw new Error(`no sample for {${p}} in ${path}`);
    return v;
  })}`;
}

/** Roles a role holds, itself included (the built-in implications). */
function held(who: BuiltinRole): Set<string> {
  return new Set([who, ...BUILTIN_IMPLIES[who]]);
}

function allowedFor(route: Route, who: Who): boolean {
  if (route.allow.includes('anonymous')) return true;
  if (who === 'anonymous') return false;
  if (route.allow.includes('token')) return true;
  if (who === 'token') return false;
  const roles = held(who);
  return route.allow.some((r) => roles.has(r));
}

const tokens = new Map<Who, string>();
let engine: AuthzEngine;

beforeAll(async () => {
  const key = await makeKey('ES256', 'k');
  engine = testEngine(key, () => NOW_MS);
  for (const who of WHO) {
    if (who === 'anonymous') continue;
    const roles = who === 'token' ? [] : [who];
    tokens.set(who, await sign(key, { iss: TEST_ISS, aud: 'prefect', sub: `sub-${who}`, claims: { roles } }));
  }
});

function decide(who: Who, step: Step | Route): Decision | Promise<Decision> {
  const body = step.body === undefined ? null : Buffer.from(JSON.stringify(step.body));
  return engine.decide({
    ...request(step.method, concrete(step.path), {
      token: tokens.get(who) ?? null,
      query: step.query ?? null,
      prefectUi: step.headers?.['x-prefect-ui'] === 'true',
    }),
    body,
    bodySize: body?.length ?? null,
  });
}

const label = (r: Route) =>
  `${r.method} ${r.path}${r.query ? `?${r.query}` : ''}${r.body !== undefined ? ` ${JSON.stringify(r.body)}` : ''}${r.headers ? ' (X-Prefect-UI)' : ''}`;

describe('the route table', () => {
  it('names the Prefect version and the source of every route', () => {
    expect(table.prefect.checkedAgainst).toContain('3.8.3');
    for (const r of table.routes) {
      expect(r.source, label(r)).toMatch(/^src\/prefect\/server\/api\/[a-z0-9_/]+\.py$/);
      expect(['rule', 'default'], label(r)).toContain(r.deny);
      expect(r.allow.length, label(r)).toBeGreaterThan(0);
    }
    for (const commit of Object.values(table.prefect.sources).map((s) => s.commit)) {
      expect(commit).toMatch(/^[0-9a-f]{40}$/);
    }
  });

  it('lists each route variant once', () => {
    const keys = table.routes.map(label);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('holds the websockets Prefect clients open', () => {
    expect(table.routes.filter((r) => r.websocket).map((r) => r.path)).toEqual([
      '/task_runs/subscriptions/scheduled',
      '/logs/out',
      '/work_pools/{work_pool_name}/workers/connect',
      '/events/in',
      '/events/out',
    ]);
  });
});

describe.each(table.routes.map((r) => [label(r), r] as const))('%s', (_name, route) => {
  it.each(WHO)('%s', async (who) => {
    const d = await decide(who, route);
    if (allowedFor(route, who)) {
      expect(d.reason).toBe('ok');
      return;
    }
    expect(d.allow).toBe(false);
    if (who === 'anonymous') {
      expect(d.status).toBe(401);
      return;
    }
    expect({ status: d.status, byRule: d.rule !== null }).toEqual({
      status: 403,
      byRule: route.deny === 'rule',
    });
  });
});

describe('every mutation', () => {
  const mutations = table.routes.filter((r) => r.mutation);
  it.each(mutations.map((r) => [label(r), r] as const))('%s is denied to a viewer', async (_n, route) => {
    expect((await decide('viewer', route)).allow).toBe(false);
  });
  it('is listed (there are mutations in every resource)', () => {
    expect(mutations.length).toBeGreaterThan(80);
  });
});

describe.each(sequences.map((s) => [s.name, s] as const))('sequence: %s', (_name, seq) => {
  it.each(seq.steps.map((s) => [`${s.method} ${s.path}${s.query ? `?${s.query}` : ''}`, s] as const))(
    `%s is allowed for ${seq.role}`,
    async (_n, step) => {
      const d = await decide(seq.role, step);
      expect({ reason: d.reason, rule: d.rule }).toMatchObject({ reason: 'ok' });
    },
  );
  if (seq.ui) {
    it.each(seq.ui.map((s) => [`${s.method} ${s.path}`, s] as const))('UI shell %s', async (_n, step) => {
      const d = await engine.decide(request(step.method, step.path, { token: tokens.get(seq.role) ?? null }));
      expect(d.reason).toBe('ok');
    });
  }
  it('calls only routes of the table', () => {
    const patterns = table.routes.map(
      (r) => new RegExp(`^${r.method} ${r.path.replace(/\{[a-z_]+\}/g, '[^/]+')}$`),
    );
    for (const step of seq.steps) {
      const line = `${step.method} ${step.path}`;
      expect(
        patterns.some((p) => p.test(line)),
        line,
      ).toBe(true);
    }
  });
});
