// The agent dies (SIGKILL) under steady traffic through the shipped HAProxy config: every request
// fails closed with 503 quickly, on every HAProxy line, and none reaches Prefect without the
// agent's verdict. The shipped files are tuned for this (haproxy/README.md, "When the agent
// dies"): a request waits for its 503 no longer than DEAD_AGENT_BOUND_MS.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { requireHaproxy } from '../helpers/haproxy.js';
import { devToken, type Stack, send, startStack } from './stack.js';

const { describeHaproxy } = requireHaproxy();

/** The promise of the shipped files: about 250 ms. */
const DEAD_AGENT_BOUND_MS = 250;
/** Concurrent clients, each sending its next request as soon as the last one is answered. */
const CLIENTS = 8;

interface Sent {
  start: number;
  end: number;
  status: number;
  testId: string;
  /** The SPOE error code HAProxy put in X-Authz-Error (txn.auth.error). */
  spoeError: string | undefined;
}

describeHaproxy('a killed agent under steady traffic', (v) => {
  // 2.6-3.0 keep a few requests queued for a dead agent until `timeout processing`: there the
  // bound needs the documented SPOE_TIMEOUT_PROCESSING=150ms (haproxy/README.md).
  const spopMux = v.major > 3 || (v.major === 3 && v.minor >= 1);
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({
      agent: { config: { devIssuer: true } },
      haproxyEnv: {
        // Hundreds of requests for one subject: above the shipped rate limit.
        RATE_LIMIT_USER: '1000000',
        ...(spopMux ? {} : { SPOE_TIMEOUT_PROCESSING: '150ms' }),
      },
    });
  }, 60_000);
  afterAll(() => stack?.stop());

  it(`fails every request closed within ${DEAD_AGENT_BOUND_MS} ms, and lets none through unverified`, async () => {
    const { hap, agent, stub } = stack;
    const token = await devToken('kim-killed', ['viewer']);
    const sent: Sent[] = [];
    let stopAt = Number.POSITIVE_INFINITY;
    const client = async (): Promise<void> => {
      while (performance.now() < stopAt) {
        const start = performance.now();
        const r = await send(hap, 'GET', '/api/flows/abc', { token });
        const spoeError = /spoe-error=(\w+)/.exec(String(r.headers['x-authz-error'] ?? ''))?.[1];
        sent.push({ start, end: performance.now(), status: r.status, testId: r.testId, spoeError });
      }
    };
    // Warm: the agent answers and HAProxy holds its connections.
    for (let i = 0; i < 3; i++)
      expect((await send(hap, 'GET', '/api/flows/abc', { token })).status).toBe(200);
    const clients = Array.from({ length: CLIENTS }, client);
    await sleep(500);

    const killedAt = performance.now();
    agent.signal('SIGKILL');
    while (agent.running()) await sleep(5);
    const deadAt = performance.now();
    // Past the health check's detection of the dead agent, into the all-DOWN state.
    stopAt = performance.now() + 2500;
    await Promise.all(clients);

    const before = sent.filter((s) => s.end < killedAt);
    const after = sent.filter((s) => s.start > deadAt);
    expect(before.length).toBeGreaterThan(0);
    expect(before.map((s) => s.status).filter((st) => st !== 200)).toEqual([]);
    expect(after.length).toBeGreaterThan(CLIENTS);
    // Nothing without a verdict: once the agent is gone every answer is 503 and none of those
    // requests reached Prefect; every request Prefect saw carried the agent's identity header.
    expect(new Set(after.map((s) => s.status))).toEqual(new Set([503]));
    for (const s of sent.filter((x) => x.status !== 200))
      expect(stub.withHeader('x-test-id', s.testId)).toEqual([]);
    for (const s of sent.filter((x) => x.status === 200))
      expect(stub.withHeader('x-test-id', s.testId)[0]?.headers['x-forwarded-user']).toBe('kim-killed');
    // How long each failed request waited for its 503, counted from when it was sent or from the
    // agent's death, whichever came later.
    const waits = sent.filter((s) => s.status === 503).map((s) => s.end - Math.max(s.start, deadAt));
    const worst = Math.max(...waits);
    console.log(
      `dead agent on ${v.version}: ${waits.length} requests 503, worst wait ${worst.toFixed(0)} ms, ` +
        `spoe errors ${[...new Set(sent.map((s) => s.spoeError).filter(Boolean))].sort().join(',')}, ` +
        `p50 ${waits.sort((a, b) => a - b)[Math.floor(waits.length / 2)]?.toFixed(1)} ms`,
    );
    expect(worst).toBeLessThanOrEqual(DEAD_AGENT_BOUND_MS);
  });
});
