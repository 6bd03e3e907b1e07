// The agent's life cycle as HAProxy sees it, through the shipped config: a SIGHUP with a new
// policy changes decisions on the connections HAProxy already has open, and a stopped agent
// means 503 (fail closed) until it is back. The tests run in order on one stack.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { HaproxyInstance, StatRow } from '../helpers/haproxy.js';
import { requireHaproxy } from '../helpers/haproxy.js';
import { devToken, type Stack, send, startStack, uuid } from './stack.js';

const { describeHaproxy } = requireHaproxy();

/** Debug level: the agent logs every SPOP connection's HELLO and close (with its `conn` id). */
const BASE_CONFIG = { devIssuer: true, audit: 'all', log: { level: 'debug' } } as const;

describeHaproxy('agent reload and restart behind the shipped HAProxy config', (v) => {
  // 3.1+ (the spop multiplexer) pools agent connections per thread and may open another one
  // for a request on a thread without an idle one: only 2.x keeps exactly the same set.
  const spopMux = v.major > 3 || (v.major === 3 && v.minor >= 1);
  let stack: Stack;
  let hap: HaproxyInstance;

  beforeAll(async () => {
    stack = await startStack({ agent: { config: BASE_CONFIG } });
    hap = stack.hap;
  });
  afterAll(() => stack?.stop());

  /**
   * HAProxy's counters for the agent server: connections opened and open now, errors. Open agent
   * connections are sessions (`scur`) on 2.x; on 3.1+ they sit in the server's idle pool between
   * events (`srv_icur`), and every event is a short stream (`stot` grows), so both are summed.
   */
  async function agentServerStats(): Promise<Pick<StatRow, string>> {
    const row = (await hap.showStat()).find((r) => r.pxname === 'spoe-agents' && r.svname === 'agent1');
    if (row === undefined) throw new Error('no spoe-agents/agent1 in show stat');
    const { connect, econ, eresp, cli_abrt, srv_abrt, wretr, wredis } = row;
    const open = String(Number(row.scur) + Number(row.srv_icur || 0));
    const errors = { econ, eresp, cli_abrt, srv_abrt, wretr, wredis };
    return (spopMux ? errors : { open, connect, ...errors }) as Pick<StatRow, string>;
  }

  it('SIGHUP with a new policy changes decisions without dropping HAProxy’s agent connections', async () => {
    const { agent } = stack;
    const viewer = await devToken('hugo-hup', ['viewer']);
    const deployment = uuid();
    const listFlows = () => send(hap, 'POST', '/api/flows/filter', { token: viewer, body: '{}' });
    const runIt = () =>
      send(hap, 'POST', `/api/deployments/${deployment}/create_flow_run`, { token: viewer });
    const runOther = () => send(hap, 'POST', `/api/deployments/${uuid()}/create_flow_run`, { token: viewer });

    // Before: the preset. Parallel requests make HAProxy open agent connections on every thread.
    const warm = await Promise.all(Array.from({ length: 16 }, listFlows));
    expect(warm.map((r) => r.status)).toEqual(Array(16).fill(200));
    expect((await runIt()).status).toBe(403);

    const before = await agentServerStats();
    const openRow = (await hap.showStat()).find((r) => r.pxname === 'spoe-agents' && r.svname === 'agent1');
    expect(Number(openRow?.scur) + Number(openRow?.srv_icur || 0)).toBeGreaterThan(0);
    const mark = agent.mark();
    const serving = new Set(
      agent
        .records()
        .filter((r) => r.msg === 'hello')
        .map((r) => r.conn),
    );
    expect(serving.size).toBeGreaterThan(0);

    await agent.reload({
      ...BASE_CONFIG,
      policy: {
        rules: [
          { name: 'e2e.deny.flows-filter', effect: 'deny', methods: ['POST'], path: '/api/flows/filter' },
          {
            name: 'e2e.viewer.run-one-deployment',
            methods: ['POST'],
            path: `/api/deployments/${deployment}/create_flow_run`,
            roles: ['viewer'],
          },
        ],
      },
    });

    // After: the new rules decide (one revokes, one grants); the rest of the preset still holds.
    const logAt = hap.logs().length;
    const revoked = await listFlows();
    expect(revoked.status).toBe(403);
    expect(JSON.parse(revoked.body)).toEqual({ detail: 'forbidden', reason: 'forbidden' });
    await hap.waitForLog(/ reason=forbidden tag=- rule=e2e\.deny\.flows-filter /, 5000, logAt);
    expect((await runIt()).status).toBe(200);
    expect((await runOther()).status).toBe(403);
    for (let i = 0; i < 6; i++) expect((await listFlows()).status).toBe(403);

    // The same agent connections carried those decisions: HAProxy counted no connection error or
    // abort on the agent (2.x: and opened no new session)...
    expect(await agentServerStats()).toEqual(before);
    // ...and the agent closed none of them and sent no DISCONNECT (2.x: nor saw a new HELLO,
    // health checks aside).
    const since = agent.records().slice(mark);
    expect(since.filter((r) => r.msg === 'connection closed' && serving.has(r.conn))).toEqual([]);
    expect(since.filter((r) => (r.msg === 'hello' && !spopMux) || /DISCONNECT/.test(String(r.msg)))).toEqual(
      [],
    );
    expect(agent.pid()).toBe(agent.records()[mark - 1]?.pid);
  });

  it('SIGHUP with a broken config keeps the running one (and logs the field path)', async () => {
    const { agent } = stack;
    const viewer = await devToken('bea-broken', ['viewer']);
    // The policy of the previous test is in force: listing flows is denied.
    expect((await send(hap, 'POST', '/api/flows/filter', { token: viewer, body: '{}' })).status).toBe(403);

    const mark = agent.mark();
    await agent.writeConfig({
      ...BASE_CONFIG,
      policy: { rules: [{ path: '/api/**', roles: ['superuser'] }] },
    });
    agent.signal('SIGHUP');
    const failed = await agent.waitForLog(/^config reload failed/, { since: mark });
    expect(failed.err).toEqual([
      expect.stringMatching(/^policy\.rules\.0\.roles\.0: unknown role "superuser"/),
    ]);

    expect((await send(hap, 'POST', '/api/flows/filter', { token: viewer, body: '{}' })).status).toBe(403);
    expect(agent.running()).toBe(true);

    // Back to the preset (the next test restarts the agent from this file).
    await agent.reload(BASE_CONFIG);
    expect((await send(hap, 'POST', '/api/flows/filter', { token: viewer, body: '{}' })).status).toBe(200);
  });

  it('a stopped agent means 503, never allow; service returns when it restarts', async () => {
    const { agent, stub } = stack;
    const operator = await devToken('rita-restart', ['operator']);
    const run = () => send(hap, 'POST', `/api/deployments/${uuid()}/create_flow_run`, { token: operator });
    expect((await run()).status).toBe(200);

    const stopped = await agent.stop();
    expect(stopped.code).toBe(0);

    for (let i = 0; i < 3; i++) {
      const r = await run();
      expect(r.status).toBe(503);
      expect(r.headers['x-authz-error']).toMatch(/^agent-unavailable; spoe-error=\d+$/);
      expect(JSON.parse(r.body)).toEqual({ detail: 'authorization unavailable' });
      expect(stub.withHeader('x-test-id', r.testId)).toEqual([]);
    }

    await agent.start();
    // HAProxy's spop-check (every 250 ms while DOWN, rise 2) puts the agent back; until then, 503.
    const seen: number[] = [];
    for (const deadline = Date.now() + 20_000; ; ) {
      const r = await run();
      seen.push(r.status);
      if (r.status === 200) {
        expect(stub.withHeader('x-test-id', r.testId)[0]?.headers['x-forwarded-user']).toBe('rita-restart');
        break;
      }
      if (Date.now() > deadline) throw new Error(`no 200 after the restart; statuses: ${seen.join(',')}`);
      await sleep(200);
    }
    expect(seen.filter((s) => s !== 200 && s !== 503)).toEqual([]);
  });
});
