// API keys and Prefect auth strings through the shipped HAProxy config: keys made by the real
// CLI (`spoe-authz apikey`), the real agent watching the keys file, and requests carrying the
// headers Prefect's own client sends (src/prefect/client/orchestration/__init__.py: PREFECT_API_KEY
// as `Authorization: Bearer <key>`, PREFECT_API_AUTH_STRING as `Authorization: Basic
// base64(auth_string)`; base.py: the User-Agent, X-PREFECT-API-VERSION and CSRF headers).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { main } from '../../src/cli.js';
import { capture } from '../helpers/capture.js';
import { type HaproxyInstance, requireHaproxy } from '../helpers/haproxy.js';
import { httpRequest } from '../helpers/http.js';
import { encodeFrame, FrameReader, nextFrame } from '../helpers/ws-frame.js';
import { type Stack, send, startStack } from './stack.js';

const { describeHaproxy } = requireHaproxy();

/** What Prefect 3.8's client sends on every request (client/base.py, orchestration/__init__.py). */
const PREFECT_HEADERS = { 'user-agent': 'prefect/3.8.3 (API 0.8.4)', 'x-prefect-api-version': '0.8.4' };
const CSRF = { 'prefect-csrf-token': randomUUID(), 'prefect-csrf-client': randomUUID() };
const bearer = (key: string) => ({ ...PREFECT_HEADERS, authorization: `Bearer ${key}` });
/** `base64.b64encode(auth_string.encode("utf-8"))`, as the client builds it. */
const basic = (authString: string) => ({
  ...PREFECT_HEADERS,
  authorization: `Basic ${Buffer.from(authString, 'utf8').toString('base64')}`,
});

async function apikey(args: string[]): Promise<string> {
  const { value: code, text } = await capture(
    'stdout',
    async () => (await capture('stderr', () => main(['apikey', ...args]))).value,
  );
  if (code !== 0) throw new Error(`apikey ${args.join(' ')}: exit ${code}`);
  return text.trim();
}

describeHaproxy('API keys and auth strings through HAProxy', () => {
  let dir: string;
  let file: string;
  let stack: Stack;
  let hap: HaproxyInstance;
  let workerKey: string;
  let expiringKey: string;
  let authString: string;

  let agentConfig: Record<string, unknown>;
  /** The CLI reads the agent's own config, as an operator runs it: `-c /etc/spoe-authz/config.yaml`. */
  const kf = () => ['-c', join(dir, 'agent.json')];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'e2e-apikeys-'));
    file = join(dir, 'api-keys.json');
    agentConfig = {
      audit: 'all',
      apiKeys: { file, pollSeconds: 0.5 },
      policy: { prefect: { workPoolClaim: 'prefect_work_pools' } },
    };
    writeFileSync(join(dir, 'agent.json'), JSON.stringify(agentConfig));
    workerKey = await apikey([
      'create',
      ...kf(),
      '--sub',
      'worker-prod',
      '--roles',
      'worker',
      '--work-pool',
      'prod',
    ]);
    expiringKey = await apikey([
      'create',
      ...kf(),
      '--sub',
      'short-lived',
      '--roles',
      'worker',
      '--expires',
      '4s',
    ]);
    authString = await apikey([
      'create',
      ...kf(),
      '--sub',
      'ci',
      '--roles',
      'viewer',
      '--type',
      'auth-string',
    ]);
    stack = await startStack({
      agent: { config: agentConfig },
    });
    hap = stack.hap;
  }, 90_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a worker with PREFECT_API_KEY: its calls reach Prefect as the key subject', async () => {
    const calls: Array<[string, string, Record<string, string>]> = [
      ['GET', '/api/admin/version', {}],
      ['GET', `/api/csrf-token?client=${CSRF['prefect-csrf-client']}`, {}],
      ['POST', '/api/work_pools/prod/workers/heartbeat', CSRF],
      ['POST', '/api/work_pools/prod/get_scheduled_flow_runs', CSRF],
    ];
    for (const [method, path, extra] of calls) {
      const res = await send(hap, method, path, { headers: { ...bearer(workerKey), ...extra }, body: '{}' });
      expect(res.status, `${method} ${path}: ${res.body}`).toBe(200);
      const seen = stack.stub.withHeader('x-test-id', res.testId)[0];
      expect(seen?.headers['x-forwarded-user']).toBe('worker-prod');
      expect(seen?.headers['x-prefect-role']).toBe('worker');
    }
    // Its key is held to its work pool, and to the worker role.
    const other = await send(hap, 'POST', '/api/work_pools/staging/get_scheduled_flow_runs', {
      headers: { ...bearer(workerKey), ...CSRF },
      body: '{}',
    });
    expect(other.status).toBe(403);
    expect((await send(hap, 'GET', '/api/admin/settings', { headers: bearer(workerKey) })).status).toBe(403);
  });

  it('an unknown or mistyped key is 401 bad_credentials and never reaches Prefect', async () => {
    for (const key of [
      `${workerKey.slice(0, -2)}${workerKey.endsWith('xx') ? 'yy' : 'xx'}`,
      'spoe_nothing',
    ]) {
      const res = await send(hap, 'GET', '/api/admin/version', { headers: bearer(key) });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ reason: 'bad_credentials' });
      expect(stack.stub.withHeader('x-test-id', res.testId)).toEqual([]);
    }
  });

  it('PREFECT_API_AUTH_STRING (Basic): allowed as its subject; a wrong password is 401', async () => {
    const ok = await send(hap, 'POST', '/api/flows/filter', {
      headers: { ...basic(authString), ...CSRF },
      body: '{}',
    });
    expect(ok.status).toBe(200);
    expect(stack.stub.withHeader('x-test-id', ok.testId)[0]?.headers['x-forwarded-user']).toBe('ci');
    const user = authString.slice(0, authString.indexOf(':'));
    const wrong = await send(hap, 'POST', '/api/flows/filter', {
      headers: basic(`${user}:wrong`),
      body: '{}',
    });
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.body)).toMatchObject({ reason: 'bad_credentials' });
  });

  it('websockets: the upgrade carries the credential (PREFECT_CLIENT_CUSTOM_HEADERS), the auth message follows', async () => {
    // Subprotocol `prefect`, the key on the upgrade, then Prefect's first message
    // {"type":"auth","token":<api key>} (events/clients.py), which HAProxy tunnels and the
    // agent never sees; the stub answers as Prefect's server does.
    for (const path of ['/api/events/out', '/api/events/in', '/api/task_runs/subscriptions/scheduled']) {
      const ws = await upgrade(hap, path, {
        authorization: `Bearer ${workerKey}`,
        'sec-websocket-protocol': 'prefect',
      });
      expect(ws.status, path).toBe(101);
      const socket = ws.socket as Socket;
      const reader = new FrameReader();
      socket.write(encodeFrame(JSON.stringify({ type: 'auth', token: workerKey }), { mask: true }));
      const reply = await nextFrame(socket, reader);
      socket.destroy();
      expect(JSON.parse(reply.payload.toString('utf8'))).toEqual({ type: 'auth_success' });
      const seen = stack.stub.withHeader('x-test-id', ws.testId)[0];
      expect(seen?.upgrade).toBe(true);
      expect(seen?.headers['x-forwarded-user']).toBe('worker-prod');
    }
    // The auth string on the upgrade (3.8.3+ sends it on events/in; custom headers elsewhere).
    const withBasic = await upgrade(hap, '/api/events/out', {
      authorization: basic(authString).authorization,
      'sec-websocket-protocol': 'prefect',
    });
    withBasic.socket?.destroy();
    expect(withBasic.status).toBe(101);
    // The worker channel (3.7+) always uses the subprotocol; the key's work pool applies.
    const channel = await upgrade(hap, '/api/work_pools/prod/workers/connect', {
      authorization: `Bearer ${workerKey}`,
      'sec-websocket-protocol': 'prefect',
    });
    channel.socket?.destroy();
    expect(channel.status).toBe(101);
    const elsewhere = await upgrade(hap, '/api/work_pools/staging/workers/connect', {
      authorization: `Bearer ${workerKey}`,
      'sec-websocket-protocol': 'prefect',
    });
    elsewhere.socket?.destroy();
    expect(elsewhere.status).toBe(403);
    const none = await upgrade(hap, '/api/events/in', {});
    none.socket?.destroy();
    expect(none.status).toBe(401);
  });

  it('the audit line and the metrics are those of a JWT decision', async () => {
    const mark = stack.agent.mark();
    await send(hap, 'GET', '/api/admin/version', { headers: bearer(workerKey) });
    const line = await stack.agent.waitForLog(
      (r) => r.msg === 'decision' && r.sub === 'worker-prod' && r.path === '/api/admin/version',
      {
        since: mark,
      },
    );
    expect(line).toMatchObject({ audit: true, allow: true, iss: 'api-key', role: 'worker', cache: 'miss' });
    expect(JSON.stringify(line)).not.toContain(workerKey.slice(18));
    const metrics = (await httpRequest(`http://127.0.0.1:${stack.agent.metricsPort}/metrics`)).body;
    expect(metrics).toMatch(
      /spoe_authz_decisions_total\{status="401",reason="bad_credentials",tag=""\} [1-9]/,
    );
    expect(metrics).toMatch(/spoe_authz_api_keys\{type="api-key"\} 2\n/);
    expect(metrics).toMatch(/spoe_authz_api_keys\{type="auth-string"\} 1\n/);
    expect(metrics).toMatch(/spoe_authz_auth_string_hashes_total\{result="computed"\} [1-9]/);
  });

  it('expiry applies on the clock, with no reload (the key was valid when made)', async () => {
    await vi.waitFor(
      async () => {
        const res = await send(hap, 'GET', '/api/admin/version', { headers: bearer(expiringKey) });
        expect(res.status).toBe(401);
        expect(JSON.parse(res.body)).toMatchObject({ reason: 'expired' });
      },
      { timeout: 15_000, interval: 250 },
    );
  });

  it('a broken keys file keeps the last good set (warning); `apikey revoke` applies within seconds', async () => {
    const mark = stack.agent.mark();
    const good = file;
    const saved = join(dir, 'good.json');
    renameSync(good, saved);
    writeFileSync(join(dir, 'broken.json'), '{ "version": 1, "keys": [');
    renameSync(join(dir, 'broken.json'), good);
    await stack.agent.waitForLog((r) => r.msg === 'keys file not reloaded; keeping the last good version', {
      since: mark,
    });
    expect((await send(hap, 'GET', '/api/admin/version', { headers: bearer(workerKey) })).status).toBe(200);
    renameSync(saved, good);
    await stack.agent.waitForLog((r) => r.msg === 'keys file reloaded', { since: mark });

    const id = workerKey.slice(5, 17);
    const { value: code } = await capture('stderr', () => main(['apikey', 'revoke', id, ...kf()]));
    expect(code).toBe(0);
    await vi.waitFor(
      async () => {
        const res = await send(hap, 'GET', '/api/admin/version', { headers: bearer(workerKey) });
        expect(res.status).toBe(401);
        expect(JSON.parse(res.body)).toMatchObject({ reason: 'revoked' });
      },
      { timeout: 10_000, interval: 100 },
    );
  });
});

/** A websocket handshake through HAProxy with Prefect's headers plus `extra`. */
function upgrade(
  hap: HaproxyInstance,
  path: string,
  extra: Record<string, string>,
): Promise<{ status: number; socket: Socket | null; testId: string }> {
  const testId = randomUUID();
  const headers: Record<string, string> = {
    ...PREFECT_HEADERS,
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-version': '13',
    'sec-websocket-key': Buffer.from(testId.slice(0, 16)).toString('base64'),
    'x-test-id': testId,
    ...extra,
  };
  return new Promise((resolve, reject) => {
    const req = request(hap.url(path), { headers, agent: false });
    req.setTimeout(10_000, () => req.destroy(new Error(`upgrade ${path}: no answer`)));
    req.once('upgrade', (res, socket) => resolve({ status: res.statusCode ?? 0, socket, testId }));
    req.once('response', (res) => {
      res.resume();
      res.once('end', () => resolve({ status: res.statusCode ?? 0, socket: null, testId }));
    });
    req.once('error', reject);
    req.end();
  });
}
