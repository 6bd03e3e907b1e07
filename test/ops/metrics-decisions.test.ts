/**
 * spoe_authz_decisions_total and the latency histogram as /metrics renders them, fed the way
 * the handler feeds them: remembered decisions (cache hits, the same object again and again)
 * and fresh ones with equal labels must land in one series each.
 */
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { makeDecision, NO_CLAIMS } from '../../src/auth/decision.js';
import { AuthzEngine } from '../../src/auth/engine.js';
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

describe('signature checks by verifier', () => {
  it('counts which verifier checked each signature: HMAC on the event loop, a jku header in jose', async () => {
    const secret = Buffer.alloc(32, 7);
    const engine = AuthzEngine.create(
      {
        issuers: [
          {
            id: 'edge',
            issuer: 'urn:edge',
            audiences: ['prefect'],
            algorithms: ['HS256'],
            keys: { type: 'secret', value: secret.toString('base64'), encoding: 'base64' },
          },
        ],
      },
      { logger: pino({ level: 'silent' }) },
    );
    await engine.start();
    const spop = new SpopServer({ handler: () => [] });
    const m = new AgentMetrics({ engine: () => engine, spop }, new Registry());
    const sign = (header: Record<string, unknown>, sub: string) =>
      new SignJWT({})
        .setProtectedHeader(header as { alg: string })
        .setIssuer('urn:edge')
        .setAudience('prefect')
        .setSubject(sub)
        .setExpirationTime('1h')
        .sign(secret);
    const request = (token: string) => ({
      method: 'GET',
      path: '/api/health',
      query: null,
      host: null,
      authorization: `Bearer ${token}`,
      cookie: null,
      tokenHeader: null,
      src: null,
      prefectUi: false,
      id: null,
    });
    for (const sub of ['a', 'b']) await engine.decide(request(await sign({ alg: 'HS256' }, sub)));
    // A header member the fast path does not take on (jku): jose verifies it (and fetches nothing).
    const viaJose = await engine.decide(
      request(await sign({ alg: 'HS256', jku: 'https://x.invalid/k' }, 'c')),
    );
    expect(viaJose.reason).toBe('ok');
    expect(engine.stats().verifiers).toEqual({ fastSync: 2, fastPool: 0, jose: 1 });
    const { body } = await m.render();
    expect(series(body, 'spoe_authz_signature_checks_total{').sort()).toEqual([
      'spoe_authz_signature_checks_total{verifier="fast_pool"} 0',
      'spoe_authz_signature_checks_total{verifier="fast_sync"} 2',
      'spoe_authz_signature_checks_total{verifier="jose"} 1',
    ]);
    engine.close();
  });

  it('spoe_authz_spop_connections_evicted_total follows the SPOP server', async () => {
    const spop = new SpopServer({ handler: () => [] });
    const engine = createEngine(parseAgentConfig({ devIssuer: true, metrics: { listen: null } }), {
      logger: pino({ level: 'silent' }),
    });
    const m = new AgentMetrics({ engine: () => engine, spop }, new Registry());
    spop.stats.evictions = 3;
    expect(series((await m.render()).body, 'spoe_authz_spop_connections_evicted_total ')).toEqual([
      'spoe_authz_spop_connections_evicted_total 3',
    ]);
  });
});
