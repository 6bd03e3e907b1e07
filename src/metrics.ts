/**
 * Prometheus metrics (prom-client). Decisions are counted as they happen (one cached child
 * per label set, so the hot path does no label hashing); engine, JWKS and SPOP figures are
 * read from their live counters at scrape time.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AuthzEngine, Decision } from './auth/index.js';
import type { SpopServer } from './spop/index.js';

const P = 'spoe_authz_';

export interface MetricsSources {
  engine(): AuthzEngine;
  readonly spop: SpopServer;
}

type CounterChild = { inc(value?: number): void };

export class AgentMetrics {
  readonly registry: Registry;
  private readonly decisions: Counter<'status' | 'reason' | 'tag'>;
  private readonly latency: Histogram;
  private readonly children = new Map<string, CounterChild>();

  constructor(sources: MetricsSources, registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    collectDefaultMetrics({ register: registry, prefix: P });
    this.decisions = new Counter({
      name: `${P}decisions_total`,
      help: 'Authorization decisions by HTTP status, reason and policy tag',
      labelNames: ['status', 'reason', 'tag'] as const,
      registers,
    });
    this.latency = new Histogram({
      name: `${P}decision_duration_seconds`,
      help: 'Time from NOTIFY decoded to decision made (verification included on cache misses)',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });

    const engineCounter = (name: string, help: string, labelNames: string[], read: (c: Counter) => void) =>
      new Counter({
        name: `${P}${name}`,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          read(this);
        },
      });
    // `aggregator`: how --workers N combines the workers' values (default: sum).
    const engineGauge = (
      name: string,
      help: string,
      labelNames: string[],
      read: (g: Gauge) => void,
      aggregator: 'sum' | 'min' | 'max' = 'sum',
    ) =>
      new Gauge({
        name: `${P}${name}`,
        help,
        labelNames,
        registers,
        aggregator,
        collect() {
          this.reset();
          read(this);
        },
      });

    engineCounter('token_cache_lookups_total', 'Verified-token cache lookups by result', ['result'], (c) => {
      const s = sources.engine().stats().cache;
      c.inc({ result: 'hit' }, s.hits);
      c.inc({ result: 'miss' }, s.misses);
      c.inc({ result: 'negative' }, s.negativeHits);
      c.inc({ result: 'coalesced' }, s.coalesced);
    });
    engineGauge('token_cache_entries', 'Entries in the token caches', ['cache'], (g) => {
      const s = sources.engine().stats().cache;
      g.set({ cache: 'verified' }, s.entries);
      g.set({ cache: 'negative' }, s.negativeEntries);
    });
    engineCounter('verifications_total', 'Signature verifications attempted', [], (c) => {
      c.inc(sources.engine().stats().verifications);
    });
    engineCounter('jwks_fetches_total', 'Key set fetches per issuer', ['issuer'], (c) => {
      for (const i of sources.engine().issuerStatus()) c.inc({ issuer: i.id }, i.fetches);
    });
    engineCounter('jwks_fetch_failures_total', 'Failed key set fetches per issuer', ['issuer'], (c) => {
      for (const i of sources.engine().issuerStatus()) c.inc({ issuer: i.id }, i.failures);
    });
    engineGauge(
      'jwks_age_seconds',
      'Seconds since the last successful key fetch',
      ['issuer'],
      (g) => {
        for (const i of sources.engine().issuerStatus()) {
          if (i.lastSuccessAgeMs !== null) g.set({ issuer: i.id }, i.lastSuccessAgeMs / 1000);
        }
      },
      'max',
    );
    engineGauge(
      'jwks_keys',
      'Keys currently usable per issuer',
      ['issuer'],
      (g) => {
        for (const i of sources.engine().issuerStatus()) g.set({ issuer: i.id }, i.keyCount);
      },
      'min',
    );
    engineGauge(
      'issuer_ready',
      '1 when the issuer has keys to verify with',
      ['issuer'],
      (g) => {
        for (const i of sources.engine().issuerStatus()) g.set({ issuer: i.id }, i.ready ? 1 : 0);
      },
      'min',
    );

    const spop = sources.spop;
    engineGauge('spop_connections', 'Open SPOP connections', [], (g) => g.set(spop.stats.connections));
    engineCounter('spop_notify_frames_total', 'NOTIFY frames received', [], (c) =>
      c.inc(spop.stats.notifies),
    );
    engineCounter('spop_ack_frames_total', 'ACK frames sent', [], (c) => c.inc(spop.stats.acks));
    engineCounter('spop_handler_errors_total', 'NOTIFYs answered with the fail-closed ACK', [], (c) =>
      c.inc(spop.stats.handlerErrors),
    );
    engineCounter(
      'spop_disconnects_total',
      'AGENT-DISCONNECT frames sent by status code',
      ['status'],
      (c) => {
        for (const [status, n] of Object.entries(spop.stats.disconnectsByStatus)) c.inc({ status }, n);
      },
    );
  }

  /** Hot path: one decision made. */
  onDecision(d: Decision, seconds: number): void {
    const key = `${d.status}|${d.reason}|${d.tag ?? ''}`;
    let child = this.children.get(key);
    if (child === undefined) {
      child = this.decisions.labels(String(d.status), d.reason, d.tag ?? '');
      this.children.set(key, child);
    }
    child.inc();
    this.latency.observe(seconds);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
