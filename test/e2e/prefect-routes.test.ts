// End to end through the shipped HAProxy config: client → HAProxy → (SPOE) real agent process →
// Prefect stub. Roles, 401/403 answers, identity headers, rate limits and websockets, as a
// Prefect user or worker sees them. One stack for the whole file; every test uses its own
// subjects so the per-subject rate limit (set low here) never couples tests.
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { HaproxyInstance } from '../helpers/haproxy.js';
import { requireHaproxy } from '../helpers/haproxy.js';
import { devToken, type SentRequest, type Stack, send, startStack, uuid } from './stack.js';

const { describeHaproxy } = requireHaproxy();

/** Requests per subject per 10 s before HAProxy answers 429 (RATE_LIMIT_USER). */
const USER_RATE = 8;
/** The same for requests the agent tagged worker-poll (RATE_LIMIT_WORKER_POLL). */
const WORKER_POLL_RATE = 14;

describeHaproxy('Prefect through the shipped HAProxy config and the agent', () => {
  let stack: Stack;
  let hap: HaproxyInstance;

  beforeAll(async () => {
    stack = await startStack({
      agent: { config: { devIssuer: true, audit: 'all' } },
      haproxyEnv: { RATE_LIMIT_USER: String(USER_RATE), RATE_LIMIT_WORKER_POLL: String(WORKER_POLL_RATE) },
    });
    hap = stack.hap;
  });
  afterAll(() => stack?.stop());

  /** What the stub received for this request, or undefined when it never reached Prefect. */
  const atPrefect = (r: SentRequest) => stack.stub.withHeader('x-test-id', r.testId)[0];

  it('a viewer can list flows but cannot create a flow run; an operator can', async () => {
    const viewer = await devToken('vera-viewer', ['viewer']);
    const operator = await devToken('otto-operator', ['operator']);
    const createRun = `/api/deployments/${uuid()}/create_flow_run`;

    const list = await send(hap, 'POST', '/api/flows/filter', { token: viewer, body: '{}' });
    expect(list.status).toBe(200);
    expect(JSON.parse(list.body)).toMatchObject({ stub: 'prefect', path: '/api/flows/filter' });
    expect(atPrefect(list)?.method).toBe('POST');

    const denied = await send(hap, 'POST', createRun, { token: viewer, body: '{}' });
    expect(denied.status).toBe(403);
    expect(denied.headers['www-authenticate']).toMatch(/^Bearer realm="prefect", error="insufficient_scope"/);
    expect(JSON.parse(denied.body)).toEqual({ detail: 'forbidden', reason: 'forbidden' });
    expect(atPrefect(denied)).toBeUndefined();

    const created = await send(hap, 'POST', createRun, { token: operator, body: '{}' });
    expect(created.status).toBe(200);
    expect(atPrefect(created)?.headers['x-prefect-role']).toBe('operator');
  });

  it('a worker can poll its work pool', async () => {
    const worker = await devToken('wanda-worker', ['worker']);
    const poll = await send(hap, 'POST', '/api/work_pools/k8s-pool/get_scheduled_flow_runs', {
      token: worker,
      body: '{}',
    });
    expect(poll.status).toBe(200);
    const seen = atPrefect(poll);
    expect(seen?.path).toBe('/api/work_pools/k8s-pool/get_scheduled_flow_runs');
    expect(seen?.headers['x-forwarded-user']).toBe('wanda-worker');
    expect(seen?.headers['x-prefect-role']).toBe('worker');
  });

  it('Prefect receives the path the agent judged, not a non-canonical form of it', async () => {
    const viewer = await devToken('nico-normal', ['viewer']);
    const id = uuid();
    const cases = [
      // raw request-target -> what must reach Prefect (query string kept)
      ['POST', '/api/admin/../flows/filter', '/api/flows/filter'],
      ['POST', '/api//flows///filter?limit=5', '/api/flows/filter?limit=5'],
      ['GET', `/api/./fl%6Fws/${id}`, `/api/flows/${id}`],
      ['GET', `/api/flows/${id}`, `/api/flows/${id}`],
    ] as const;
    for (const [method, raw, expected] of cases) {
      const r = await send(hap, method, raw, {
        token: viewer,
        rawPath: true,
        ...(method === 'POST' ? { body: '{}' } : {}),
      });
      expect(r.status, raw).toBe(200);
      expect(atPrefect(r)?.url, raw).toBe(expected);
    }
    // A path that only judged as allowed once normalised is refused when it normalises to a
    // route the role may not use, whatever its raw form.
    const sneaky = await send(hap, 'POST', '/api/flows/../admin/settings', {
      token: viewer,
      rawPath: true,
      body: '{}',
    });
    expect(sneaky.status).toBe(403);
    expect(atPrefect(sneaky)).toBeUndefined();
  });

  it('no token gets 401 with WWW-Authenticate; an expired token gets 401 invalid_token', async () => {
    const none = await send(hap, 'POST', '/api/flows/filter', { body: '{}' });
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="prefect"');
    expect(JSON.parse(none.body)).toEqual({ detail: 'unauthorized', reason: 'missing_token' });
    expect(atPrefect(none)).toBeUndefined();

    // Issued two hours ago for one hour: well past the issuer's 30 s clock tolerance.
    const stale = await devToken('vera-viewer', ['viewer'], {
      now: Date.now() - 7_200_000,
      ttlSeconds: 3600,
    });
    const expired = await send(hap, 'POST', '/api/flows/filter', { token: stale, body: '{}' });
    expect(expired.status).toBe(401);
    expect(expired.headers['www-authenticate']).toBe(
      'Bearer realm="prefect", error="invalid_token", error_description="expired"',
    );
    expect(atPrefect(expired)).toBeUndefined();
  });

  it('spoofed identity headers never reach Prefect', async () => {
    const spoof = {
      'X-Forwarded-User': 'admin',
      'X-Prefect-Role': 'admin',
      'X-Forwarded-Email': 'root@example.com',
      'X-Forwarded-Groups': 'admins',
    };
    // Allowed with a token: Prefect sees the agent's verdict, not the client's claims.
    const viewer = await devToken('sam-spoofer', ['viewer']);
    const allowed = await send(hap, 'GET', '/api/flows/abc', { token: viewer, headers: spoof });
    expect(allowed.status).toBe(200);
    const seen = atPrefect(allowed);
    expect(seen?.headers['x-forwarded-user']).toBe('sam-spoofer');
    expect(seen?.headers['x-prefect-role']).toBe('viewer');
    expect(seen?.headers['x-forwarded-email']).toBeUndefined();
    expect(seen?.headers['x-forwarded-groups']).toBeUndefined();
    expect(JSON.parse(allowed.body)).toMatchObject({
      'x-forwarded-user': 'sam-spoofer',
      'x-prefect-role': 'viewer',
    });

    // Allowed without a token (the health route is anonymous): no user, role "anonymous".
    const anonymous = await send(hap, 'GET', '/api/health', { headers: spoof });
    expect(anonymous.status).toBe(200);
    const anon = atPrefect(anonymous);
    expect(anon?.headers['x-prefect-role']).toBe('anonymous');
    for (const h of ['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups'])
      expect(anon?.headers[h]).toBeUndefined();

    // Spoofing alone grants nothing.
    const denied = await send(hap, 'POST', '/api/flows/filter', { headers: spoof, body: '{}' });
    expect(denied.status).toBe(401);
    expect(atPrefect(denied)).toBeUndefined();
  });

  it('one subject over its rate gets 429 while another is unaffected', async () => {
    const greedy = await devToken('gary-greedy', ['viewer']);
    const polite = await devToken('paula-polite', ['viewer']);
    const statuses: number[] = [];
    for (let i = 0; i < USER_RATE + 3; i++) {
      statuses.push((await send(hap, 'POST', '/api/flows/filter', { token: greedy, body: '{}' })).status);
    }
    // The first USER_RATE fit the budget; the rest are over it (the 10 s window cannot have
    // slid past requests sent one after another).
    expect(statuses.slice(0, USER_RATE)).toEqual(Array(USER_RATE).fill(200));
    expect(statuses.slice(USER_RATE)).toEqual([429, 429, 429]);

    const limited = await send(hap, 'POST', '/api/flows/filter', { token: greedy, body: '{}' });
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('10');
    expect(atPrefect(limited)).toBeUndefined();

    const other = await send(hap, 'POST', '/api/flows/filter', { token: polite, body: '{}' });
    expect(other.status).toBe(200);
    expect(atPrefect(other)?.headers['x-forwarded-user']).toBe('paula-polite');
  });

  it('a polling worker has its own budget: past the user limit it is not throttled until its own', async () => {
    const worker = await devToken('pete-poller', ['worker']);
    const poll = '/api/work_pools/k8s-pool/get_scheduled_flow_runs';
    const statuses: number[] = [];
    for (let i = 0; i < WORKER_POLL_RATE + 2; i++) {
      statuses.push((await send(hap, 'POST', poll, { token: worker, body: '{}' })).status);
    }
    // Well past USER_RATE, polls still pass: the agent tagged them worker-poll.
    expect(statuses.slice(0, WORKER_POLL_RATE)).toEqual(Array(WORKER_POLL_RATE).fill(200));
    expect(statuses.slice(WORKER_POLL_RATE)).toEqual([429, 429]);
    const last = await send(hap, 'POST', poll, { token: worker, body: '{}' });
    expect(last.status).toBe(429);
    expect(atPrefect(last)).toBeUndefined();
  });

  it('HAProxy replays a failed request only when the agent tagged it safe-retry', async () => {
    const operator = await devToken('rita-retry', ['operator']);
    // A read (tagged safe-retry): Prefect answers 503 once, HAProxy retries, the client sees 200.
    const read = await send(hap, 'POST', '/api/flow_runs/filter', {
      token: operator,
      body: '{}',
      headers: { 'x-stub-fail-once': `read-${uuid()}` },
    });
    expect(read.status).toBe(200);
    expect(stack.stub.withHeader('x-test-id', read.testId)).toHaveLength(2);
    // A write (not tagged): the 503 goes back to the client, the request reached Prefect once.
    const write = await send(hap, 'POST', `/api/deployments/${uuid()}/create_flow_run`, {
      token: operator,
      body: '{}',
      headers: { 'x-stub-fail-once': `write-${uuid()}` },
    });
    expect(write.status).toBe(503);
    expect(stack.stub.withHeader('x-test-id', write.testId)).toHaveLength(1);
  });

  it('a websocket upgrade with a valid token reaches the backend', async () => {
    const viewer = await devToken('wes-websocket', ['viewer']);
    const { status, socket, testId } = await upgrade(hap, '/api/events/out', viewer);
    try {
      expect(status).toBe(101);
      const seen = stack.stub.withHeader('x-test-id', testId)[0];
      expect(seen?.upgrade).toBe(true);
      expect(seen?.headers['x-forwarded-user']).toBe('wes-websocket');
      // The tunnel carries bytes both ways (the stub echoes).
      socket?.write('ping');
      const echoed = await new Promise<string>((resolve) =>
        socket?.once('data', (d: Buffer) => resolve(String(d))),
      );
      expect(echoed).toBe('ping');
    } finally {
      socket?.destroy();
    }

    // The same upgrade without a token is refused before it reaches Prefect.
    const anonymous = await upgrade(hap, '/api/events/out', undefined);
    anonymous.socket?.destroy();
    expect(anonymous.status).toBe(401);
    expect(stack.stub.withHeader('x-test-id', anonymous.testId)).toEqual([]);
  });
});

/** A websocket handshake through HAProxy: the status, and the upgraded socket when 101. */
function upgrade(
  hap: HaproxyInstance,
  path: string,
  token: string | undefined,
): Promise<{ status: number; socket: Socket | null; testId: string }> {
  const testId = uuid();
  const headers: Record<string, string> = {
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-version': '13',
    'sec-websocket-key': Buffer.from(testId.slice(0, 16)).toString('base64'),
    'x-test-id': testId,
  };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
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
