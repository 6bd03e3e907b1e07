/**
 * spoe_authz_decisions_total and the latency histogram as /metrics renders them, fed the way
 * the handler feeds them: remembered decisions (cache hits, the same object again and again)
 * and fresh ones with equal labels must land in one series each.
 */
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { makeDecision, NO_CLAIMS } from '../../src/auth/decision.js';
import { createEngine, parseAgentConfig } from '../../src/config/load.js';
import { AgentMetrics } from '../../src/metrics.js';
import { SpopServer } from '../../src/spop/index.js';

function metrics(): AgentMetrics {
  const spop = new SpopServer({ handler: () => [] });
  const engine = createEngine(parseAgentConfig({ devIssuer: true, metrics: { listen: null } }), {
    logger: pino({ level: 'silent' }),
  });
  return new AgentMetrics({ engine: () => engine, spop }, new Registry());
}

function series(body: string, name: string): string[] {
  return body.split('\n').filter((l) => l.startsWith(name));
}

describe('decision metrics', () => {
  it('counts a remembered decision on every call, and equal labels in one series', async () => {
    const m = metrics();
    const hit = Object.freeze(makeDecision('ok', 's', 'i', 'worker', 'worker-poll', 'r', 'hit', NO_CLAIMS));
    const hitSameLabels = Object.freeze(
      makeDecision('ok', 'other', 'i', 'viewer', 'worker-poll', 'r2', 'hit', NO_CLAIMS),
    );
    const miss = makeDecision('ok', 's', 'i', 'worker', 'worker-poll', 'r', 'miss', NO_CLAIMS);
    const deny = makeDecision('forbidden', 's', 'i', 'viewer', null, null, 'hit', NO_CLAIMS);
    for (let i = 0; i < 5; i++) m.onDecision(hit, 0.000_001);
    m.onDecision(hitSameLabels, 0.000_001);
    m.onDecision(miss, 0.002);
    m.onDecision(deny, 0.000_001);
    m.onDecision(deny, 0.000_001);
    const { body } = await m.render();
    expect(series(body, 'spoe_authz_decisions_total{').sort()).toEqual([
      'spoe_authz_decisions_total{status="200",reason="ok",tag="worker-poll"} 7',
      'spoe_authz_decisions_total{status="403",reason="forbidden",tag=""} 2',
    ]);
    expect(series(body, 'spoe_authz_decision_duration_seconds_count')).toEqual([
      'spoe_authz_decision_duration_seconds_count 9',
    ]);
  });
});
