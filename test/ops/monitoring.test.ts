/**
 * The Grafana dashboard and the Prometheus alerting rules in deploy/ against what a real agent
 * exports: every metric they name is in a real agent's /metrics (driven to produce a sample of
 * each, so that label names are checked too), every label they group or match by is on those
 * metrics; the rules pass `promtool check rules`, and `promtool test rules` shows each alert
 * firing on the series that should raise it and silent on a healthy agent's.
 * Without promtool the promtool tests skip with a printed reason; under CI=true they fail.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { mintDevToken } from '../../src/auth/index.js';
import { FrameType } from '../../src/spop/index.js';
import { jwks, makeKey, sign, type TestKey } from '../auth/helpers/keys.js';
import { type AgentProcess, REPO_ROOT, runCli, startAgent } from '../helpers/agent-process.js';
import { httpRequest } from '../helpers/http.js';
import { type JwksServer, startJwksServer } from '../helpers/jwks-server.js';
import { SpopTestClient } from '../helpers/spop-client.js';

const run = promisify(execFile);
const RULES = join(REPO_ROOT, 'deploy/prometheus/spoe-authz.rules.yml');
const RULE_TESTS = join(REPO_ROOT, 'deploy/prometheus/spoe-authz.rules.test.yml');
const DASHBOARD = join(REPO_ROOT, 'deploy/grafana/spoe-authz.dashboard.json');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
const rules: Rule[] = (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap(
  (g) => g.rules,
);
interface Panel {
  type: string;
  id: number;
  title: string;
  targets?: { expr: string; legendFormat?: string; datasource?: { uid: string } }[];
  datasource?: { uid: string };
}
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; definition?: string }[] };
};

/** Labels every scraped series gets from Prometheus (not from the agent). */
const TARGET_LABELS = new Set(['job', 'instance']);
/** Series Prometheus makes itself: `up` per scrape target. */
const SYNTHETIC: Record<string, Set<string>> = { up: new Set() };

/** One PromQL expression (or Grafana query) as the metrics it reads and the labels it uses. */
interface Usage {
  where: string;
  metrics: Set<string>;
  labels: Set<string>;
}

function usageOf(where: string, expr: string, templates: string[] = []): Usage {
  const metrics = new Set<string>();
  const labels = new Set<string>();
  const src = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""'); // label values cannot be names
  for (const m of src.matchAll(/\b(spoe_authz_[a-z0-9_]+|up)\b(\{([^}]*)\})?/g)) {
    metrics.add(m[1]!);
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.add(l[1]!);
  }
  for (const m of src.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g))
    for (const l of m[1]!.split(',')) if (l.trim() !== '') labels.add(l.trim());
  for (const m of src.matchAll(/label_values\([^,]*,\s*([a-zA-Z_]+)\)/g)) labels.add(m[1]!);
  for (const t of templates) {
    for (const m of t.matchAll(/\{\{\s*\$labels\.([a-zA-Z_]+)\s*\}\}/g)) labels.add(m[1]!);
    for (const m of t.matchAll(/\{\{\s*([a-zA-Z_]+)\s*\}\}/g)) labels.add(m[1]!);
  }
  return { where, metrics, labels };
}

const usages: Usage[] = [
  ...rules.map((r) =>
    usageOf(`alert ${r.alert}`, r.expr, [r.annotations.summary ?? '', r.annotations.description ?? '']),
  ),
  ...dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => usageOf(`panel "${p.title}"`, t.expr, [t.legendFormat ?? ''])),
  ),
  ...dashboard.templating.list
    .filter((v) => v.definition !== undefined)
    .map((v) => usageOf(`variable $${v.name}`, v.definition!)),
];

/** Sample names of a Prometheus text exposition, each with the label names seen on it. */
function parseExposition(text: string): {
  text: string;
  families: Set<string>;
  samples: Map<string, Set<string>>;
} {
  const families = new Set<string>();
  const samples = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) /.exec(line);
    if (type) families.add(type[1]!);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? /.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const names = samples.get(m[1]!) ?? new Set<string>();
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) names.add(l[1]!);
    samples.set(m[1]!, names);
  }
  return { text, families, samples };
}

/** One HELLO and one authorize NOTIFY; resolves with the ACK's variables. */
async function authorize(port: number, token: string): Promise<Record<string, unknown>> {
  const client = await SpopTestClient.connect(port);
  try {
    await client.hello({ capabilities: 'pipelining' });
    client.sendNotify(1, 1, 'authorize', [
      { name: 'method', value: 'GET' },
      { name: 'path', value: '/api/flows/abc' },
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

describe('dashboard and alerting rules against a real agent', () => {
  let agent: AgentProcess;
  let idp: JwksServer;
  let key: TestKey;
  let exposition: ReturnType<typeof parseExposition>;
  let dir: string;

  beforeAll(async () => {
    // A keys file (apiKeys) with one API key, as `spoe-authz apikey create` writes it.
    dir = mkdtempSync(join(tmpdir(), 'spoe-authz-monitoring-'));
    const keysFile = join(dir, 'api-keys.json');
    const created = await runCli([
      'apikey',
      'create',
      '--keys-file',
      keysFile,
      '--sub',
      'mo-machine',
      '--roles',
      'viewer',
    ]);
    expect(created.code, created.stderr).toBe(0);
    key = await makeKey('RS256', 'k1');
    idp = await startJwksServer(jwks(key));
    agent = await startAgent({
      config: {
        devIssuer: true,
        spop: { handlerTimeoutMs: 200, maxConnections: 2, limitPolicy: 'refuse' },
        apiKeys: { file: keysFile, pollSeconds: 0.5 },
        issuers: [
          {
            id: 'idp',
            issuer: idp.issuer,
            audiences: ['prefect'],
            algorithms: ['RS256'],
            keys: { type: 'jwks-url', url: idp.jwksUrl, cooldownSeconds: 0, timeoutMs: 3000 },
          },
        ],
      },
    });
    // Drive every series the rules and the dashboard read: decisions and their latency, a
    // JWKS fetch that worked and one that failed, a handler timeout (a kid-miss refetch that
    // hangs), and a connection refused at spop.maxConnections.
    const viewer = await mintDevToken({ sub: 'mo-monitoring', roles: ['viewer'] });
    expect(await authorize(agent.spopPort, viewer)).toMatchObject({ allow: true });
    idp.setMode('hang');
    const rotated = await makeKey('RS256', 'k2');
    const unknownKid = await sign(rotated, { iss: idp.issuer, aud: 'prefect' });
    expect(await authorize(agent.spopPort, unknownKid)).toMatchObject({ allow: false, status: 503 });
    idp.setMode('error');
    await agent.waitForLog((r) => /fetch/i.test(String(r.msg)) && r.level === 40, { timeoutMs: 10_000 });
    // The closed connections above must be gone on the agent's side before filling it up.
    const metrics = () => httpRequest(`http://127.0.0.1:${agent.metricsPort}/metrics`);
    for (let i = 0; i < 100 && !/^spoe_authz_spop_connections 0$/m.test((await metrics()).body); i++)
      await new Promise((r) => setTimeout(r, 50));
    const held = [await SpopTestClient.connect(agent.spopPort), await SpopTestClient.connect(agent.spopPort)];
    for (const c of held) await c.hello({ capabilities: 'pipelining' });
    const refused = await SpopTestClient.connect(agent.spopPort);
    expect((await refused.next()).type).toBe(FrameType.AGENT_DISCONNECT);
    for (const c of [...held, refused]) c.socket.destroy();
    // An edit of the keys file the agent refuses: it keeps the entries it had.
    let mark = agent.mark();
    writeFileSync(keysFile, '{ not json');
    await agent.waitForLog(/^keys file not reloaded/, { since: mark, timeoutMs: 10_000 });
    // A reload the agent refuses (the file no longer validates): it keeps its config.
    mark = agent.mark();
    await agent.writeConfig('issuers: [{ id: broken }]\n');
    agent.signal('SIGHUP');
    await agent.waitForLog(/^config reload failed/, { since: mark });
    const res = await metrics();
    expect(res.status).toBe(200);
    exposition = parseExposition(res.body);
  }, 60_000);
  afterAll(async () => {
    await agent?.dispose();
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reads the metrics the agent exports (names taken from expressions, not hand-listed)', () => {
    const used = new Set(usages.flatMap((u) => [...u.metrics]));
    // The rules and the dashboard between them cover what operators alert on and look at.
    for (const m of [
      'spoe_authz_decisions_total',
      'spoe_authz_decision_duration_seconds_bucket',
      'spoe_authz_spop_handler_errors_total',
      'spoe_authz_issuer_ready',
      'spoe_authz_jwks_age_seconds',
      'spoe_authz_jwks_fetch_failures_total',
      'spoe_authz_spop_connections',
      'spoe_authz_spop_max_connections',
      'spoe_authz_spop_disconnects_total',
      'spoe_authz_spop_connections_refused_total',
      'spoe_authz_spop_connections_evicted_total',
      'spoe_authz_config_last_reload_successful',
      'spoe_authz_jwks_rejections_total',
      'spoe_authz_keys_file_reloads_total',
      'spoe_authz_auth_string_hashes_total',
    ])
      expect(used, m).toContain(m);
    const missing = [...used].filter((m) => !(m in SYNTHETIC) && !exposition.samples.has(m));
    expect(missing, 'metrics used but not in the agent /metrics (or without a sample there)').toEqual([]);
  });

  it('groups, matches and templates only by labels those metrics carry', () => {
    const wrong: string[] = [];
    for (const u of usages) {
      const available = new Set(TARGET_LABELS);
      for (const m of u.metrics) {
        for (const l of SYNTHETIC[m] ?? exposition.samples.get(m) ?? []) available.add(l);
      }
      for (const l of u.labels) if (!available.has(l)) wrong.push(`${u.where}: label ${l}`);
    }
    expect(wrong).toEqual([]);
  });

  it('the exposition has the series the alerts key on, with the values that were driven', () => {
    const value = (sample: string) =>
      Number(new RegExp(`^${sample.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(exposition.text)?.[1]);
    expect(value('spoe_authz_config_last_reload_successful')).toBe(0);
    expect(value('spoe_authz_keys_file_reloads_total{result="invalid"}')).toBe(1);
    expect(value('spoe_authz_config_reloads_total{result="failed"}')).toBe(1);
    expect(value('spoe_authz_spop_connections_refused_total')).toBe(1);
    expect(value('spoe_authz_spop_handler_errors_total{reason="timeout"}')).toBe(1);
    expect(exposition.samples.get('spoe_authz_spop_handler_errors_total')).toEqual(new Set(['reason']));
    expect(exposition.samples.get('spoe_authz_decisions_total')).toEqual(
      new Set(['status', 'reason', 'tag']),
    );
    expect(exposition.families).toContain('spoe_authz_spop_max_connections');
  });
});

describe('alerting rules: structure and README', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

  it('each alert has a severity, a summary, a description and a README entry', () => {
    expect(rules.length).toBeGreaterThan(0);
    for (const r of rules) {
      expect(['critical', 'warning'], r.alert).toContain(r.labels.severity);
      expect(r.annotations.summary, r.alert).toBeTruthy();
      expect(r.annotations.description, r.alert).toBeTruthy();
      expect(readme.includes(`\`${r.alert}\``), `README mentions ${r.alert}`).toBe(true);
    }
  });

  it('the promtool tests make every alert fire at least once and check a healthy agent stays silent', () => {
    const tests = (
      parse(readFileSync(RULE_TESTS, 'utf8')) as {
        tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
      }
    ).tests;
    const fired = new Set(
      tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)),
    );
    const silent = new Set(
      tests[0]!.alert_rule_test.filter((a) => a.exp_alerts.length === 0).map((a) => a.alertname),
    );
    for (const r of rules) {
      expect(fired, `a test where ${r.alert} fires`).toContain(r.alert);
      expect(silent, `the healthy case checks ${r.alert}`).toContain(r.alert);
    }
  });

  it('the dashboard has unique panel ids and every query goes through the $datasource variable', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax
      for (const t of p.targets ?? []) expect(t.datasource?.uid, p.title).toBe('${datasource}');
    }
  });
});

async function findPromtool(): Promise<string | null> {
  try {
    await run('promtool', ['--version']);
    return 'promtool';
  } catch {
    return null;
  }
}
const promtool = await findPromtool();
if (promtool === null && process.env.CI === 'true')
  throw new Error('promtool is required under CI=true (Debian package prometheus; .ci/run installs it)');
if (promtool === null)
  console.warn('skipping promtool tests: promtool not found (apt-get install prometheus provides it)');

describe.skipIf(promtool === null)('promtool', () => {
  it('check rules: the rules file is valid', async () => {
    const { stdout } = await run(promtool!, ['check', 'rules', RULES]);
    expect(stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('test rules: every alert fires when it should and not otherwise', async () => {
    const { stdout } = await run(promtool!, ['test', 'rules', RULE_TESTS]);
    expect(stdout).toContain('SUCCESS');
  });
});
