// Two agents behind the shipped HAProxy config (SPOE_AGENT1 and SPOE_AGENT2): HAProxy spreads
// the decisions over both, and when one stops, the SPOP health check takes it out of the
// rotation and the other answers everything: no 503 once the check has seen it go.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AgentProcess, startAgent } from '../helpers/agent-process.js';
import { type HaproxyInstance, requireHaproxy } from '../helpers/haproxy.js';
import { httpRequest } from '../helpers/http.js';
import { type PrefectStub, startPrefectStub } from '../helpers/prefect-stub.js';
import { devToken, send, startShippedHaproxy } from './stack.js';

const { describeHaproxy } = requireHaproxy();

describeHaproxy('two agents behind the shipped HAProxy config', () => {
  let stub: PrefectStub;
  let agents: AgentProcess[] = [];
  let hap: HaproxyInstance;

  beforeAll(async () => {
    stub = await startPrefectStub();
    agents = await Promise.all([
      startAgent({ config: { devIssuer: true } }),
      startAgent({ config: { devIssuer: true } }),
    ]);
    hap = await startShippedHaproxy({
      agent: agents[0]!.spopAddress,
      backend: stub.address,
      env: { SPOE_AGENT2: agents[1]!.spopAddress },
    });
  }, 60_000);
  afterAll(async () => {
    await hap?.stop();
    await Promise.all(agents.map((a) => a.dispose()));
    await stub?.close();
  });

  async function status(server: string): Promise<string | undefined> {
    const rows = await hap.showStat();
    return rows.find((r) => r.pxname === 'spoe-agents' && r.svname === server)?.status;
  }

  /** Decisions an agent has made, from its own /metrics. */
  async function decisions(agent: AgentProcess): Promise<number> {
    const body = (await httpRequest(`http://127.0.0.1:${agent.metricsPort}/metrics`)).body;
    let n = 0;
    for (const line of body.split('\n')) {
      if (line.startsWith('spoe_authz_decisions_total{')) n += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return n;
  }

  it('both agents answer while both are up', async () => {
    for (let i = 0; i < 50 && ((await status('agent1')) !== 'UP' || (await status('agent2')) !== 'UP'); i++)
      await sleep(100);
    expect([await status('agent1'), await status('agent2')]).toEqual(['UP', 'UP']);
    const token = await devToken('tess-two', ['viewer']);
    for (let i = 0; i < 40; i++) {
      expect((await send(hap, 'GET', '/api/flows/abc', { token })).status).toBe(200);
    }
    const [one, two] = await Promise.all(agents.map(decisions));
    expect((one as number) + (two as number)).toBe(40);
    expect(one).toBeGreaterThan(0);
    expect(two).toBeGreaterThan(0);
  });

  it('with agent1 stopped, agent2 answers everything once the check marks agent1 DOWN', async () => {
    await agents[0]!.stop();
    // `check inter 1s fall 2`: DOWN within a few seconds.
    for (let i = 0; i < 100 && (await status('agent1')) !== 'DOWN'; i++) await sleep(100);
    expect(await status('agent1')).toBe('DOWN');
    const before = await decisions(agents[1]!);
    const token = await devToken('tess-two', ['viewer']);
    const answers: number[] = [];
    for (let i = 0; i < 30; i++) answers.push((await send(hap, 'GET', '/api/flows/abc', { token })).status);
    expect(answers).toEqual(Array(30).fill(200));
    expect((await decisions(agents[1]!)) - before).toBe(30);
  });
});
