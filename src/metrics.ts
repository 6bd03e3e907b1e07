/**
 * Prometheus metrics (prom-client). Decisions are counted as they happen (one cached child
 * per label set, so the hot path does no label hashing); engine, JWKS and SPOP figures are
 * read from their live counters at scrape time.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { AuthzEngine, Decision } from './auth/index.js';
import type { SpopServer } from './spop/index.js';

const P = 'spoe_authz_';

export interface MetricsSources {
  engine(): AuthzEngine;
  readonly spop: SpopServer;
}

interface DecisionCount {
  readonly labels: { status: string; reason: string; tag: string };
  n: number;
}

/**
 * A label-less histogram with an allocation-free observe(), exposed through prom-client's
 * registry (which only calls get(); the cluster aggregator sums it like any histogram).
 */
export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly bounds: readonly number[];
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(name: string, help: string, bounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    if (i < b.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: object[] } {
    const values: object[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i]!;
      values.push({ labels: { le: this.bounds[i] }, value: cumulative, metricName: `${this.name}_bucket` });
    }
    values.push({ labels: { le: '+Inf' }, value: this.count, metricName: `${this.name}_bucket` });
    values.push({ labels: {}, value: this.sum, metricName: `${this.name}_sum` });
    values.push({ labels: {}, value: this.count, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class AgentMetrics {
  readonly registry: Registry;
  /** Per label set: plain numbers on the hot path, read by the counter at scrape time. */
  private readonly decisionCounts = new Map<string, DecisionCount>();
  private readonly countsByDecision = new WeakMap<Decision, DecisionCount>();
  private readonly latency: FastHistogram;
  private readonly reloads = { ok: 0, failed: 0, lastOk: true };

  constructor(sources: MetricsSources, registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    collectDefaultMetrics({ register: registry, prefix: P });
    const counts = this.decisionCounts;
    new Counter({
      name: `${P}decisions_total`,
      help: 'Authorization decisions by HTTP status, reason and policy tag',
      labelNames: ['status', 'reason', 'tag'] as const,
      registers,
      collect() {
        this.reset();
        for (const c of counts.values()) this.inc(c.labels, c.n);
      },
    });
    this.latency = new FastHistogram(
      `${P}decision_duration_seconds`,
      'Time from NOTIFY decoded to decision made (verification included on cache misses)',
      [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    );
    registry.registerMetric(this.latency as unknown as Parameters<Registry['registerMetric']>[0]);

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
    engineCounter(
      'signature_checks_total',
      'Signature checks by verifier: node:crypto on the event loop (fast_sync) or the thread pool (fast_pool), or jose',
      ['verifier'],
      (c) => {
        const v = sources.engine().stats().verifiers;
        c.inc({ verifier: 'fast_sync' }, v.fastSync);
        c.inc({ verifier: 'fast_pool' }, v.fastPool);
        c.inc({ verifier: 'jose' }, v.jose);
      },
    );
    engineCounter('jwks_fetches_total', 'Key set fetches per issuer', ['issuer'], (c) => {
      for (const i of sources.engine().issuerStatus()) c.inc({ issuer: i.id }, i.fetches);
    });
    engineCounter('jwks_fetch_failures_total', 'Failed key set fetches per issuer', ['issuer'], (c) => {
      for (const i of sources.engine().issuerStatus()) c.inc({ issuer: i.id }, i.failures);
    });
    engineCounter(
      'jwks_rejections_total',
      'Fetched key sets refused (the last good set kept) per issuer and reason: no_usable_key, invalid_key',
      ['issuer', 'reason'],
      (c) => {
        for (const i of sources.engine().issuerStatus()) {
          for (const [reason, n] of Object.entries(i.rejections)) c.inc({ issuer: i.id, reason }, n);
        }
      },
    );
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

    // The keys file (apiKeys): absent when it is not configured. Every --workers process reads
    // the same file: the gauge aggregates to the largest count, not the sum.
    engineGauge(
      'api_keys',
      'Entries of the keys file by type (revoked ones counted apart)',
      ['type'],
      (g) => {
        const c = sources.engine().stats().credentials;
        if (c === null) return;
        g.set({ type: 'api-key' }, c.apiKeys);
        g.set({ type: 'auth-string' }, c.authStrings);
        g.set({ type: 'revoked' }, c.revoked);
      },
      'max',
    );
    engineCounter('keys_file_reloads_total', 'Keys file re-reads by result', ['result'], (c) => {
      const k = sources.engine().stats().credentials;
      if (k === null) return;
      c.inc({ result: 'ok' }, k.reloads);
      c.inc({ result: 'invalid' }, k.reloadFailures);
    });
    engineCounter(
      'auth_string_hashes_total',
      'Auth-string scrypt checks: computed, or refused at the bound',
      ['result'],
      (c) => {
        const k = sources.engine().stats().credentials;
        if (k === null) return;
        c.inc({ result: 'computed' }, k.hashes);
        c.inc({ result: 'refused' }, k.hashesRefused);
      },
    );

    const spop = sources.spop;
    engineGauge('spop_connections', 'Open SPOP connections', [], (g) => g.set(spop.stats.connections));
    engineCounter('spop_notify_frames_total', 'NOTIFY frames received', [], (c) =>
      c.inc(spop.stats.notifies),
    );
    engineCounter('spop_ack_frames_total', 'ACK frames sent', [], (c) => c.inc(spop.stats.acks));
    engineGauge('spop_max_connections', 'SPOP connections accepted before AGENT-DISCONNECT 13', [], (g) =>
      g.set(spop.maxConnections),
    );
    engineCounter(
      'spop_handler_errors_total',
      'NOTIFYs answered with the fail-closed ACK, by why (timeout, throw, reject, invalid-result)',
      ['reason'],
      (c) => {
        for (const [reason, n] of Object.entries(spop.stats.handlerErrorsByReason)) c.inc({ reason }, n);
      },
    );
    engineCounter(
      'spop_connections_evicted_total',
      'SPOP connections closed (AGENT-DISCONNECT 13) to make room for a new one at spop.maxConnections',
      [],
      (c) => c.inc(spop.stats.evictions),
    );
    engineCounter(
      'spop_connections_refused_total',
      'New connections closed (AGENT-DISCONNECT 13) at spop.maxConnections: every connection was busy',
      [],
      (c) => c.inc(spop.stats.refused),
    );
    const reloads = this.reloads;
    engineCounter(
      'config_reloads_total',
      'Config reloads (SIGHUP) by result: ok, failed (old config kept)',
      ['result'],
      (c) => {
        c.inc({ result: 'ok' }, reloads.ok);
        c.inc({ result: 'failed' }, reloads.failed);
      },
    );
    engineGauge(
      'config_last_reload_successful',
      '0 when the last reload failed: the agent serves an older config than its file',
      [],
      (g) => g.set(reloads.lastOk ? 1 : 0),
      'min',
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

  /** A config reload (SIGHUP) applied, or refused with the old config kept. */
  onConfigReload(ok: boolean): void {
    if (ok) this.reloads.ok++;
    else this.reloads.failed++;
    this.reloads.lastOk = ok;
  }

  /** Hot path: one decision made. */
  onDecision(d: Decision, seconds: number): void {
    // prom-client's child.inc + Histogram.observe cost ~0.5 us per decision on this VM
    // (BENCHMARKS.md profile); plain numbers here, formatted at scrape time.
    // Remembered decisions (cache hits) recur: their counter is found by identity.
    let c = d.cache === 'hit' ? this.countsByDecision.get(d) : undefined;
    if (c === undefined) {
      c = this.countFor(d);
      if (d.cache === 'hit') this.countsByDecision.set(d, c);
    }
    c.n++;
    this.latency.observe(seconds);
  }

  private countFor(d: Decision): DecisionCount {
    const key = `${d.status}|${d.reason}|${d.tag ?? ''}`;
    let c = this.decisionCounts.get(key);
    if (c === undefined) {
      c = { labels: { status: String(d.status), reason: d.reason, tag: d.tag ?? '' }, n: 0 };
      this.decisionCounts.set(key, c);
    }
    return c;
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
