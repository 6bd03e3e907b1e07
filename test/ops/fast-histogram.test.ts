/** The decision-latency histogram: Prometheus bucket semantics (le, cumulative) through a real registry. */
import { Registry } from 'prom-client';
import { expect, it } from 'vitest';
import { FastHistogram } from '../../src/metrics.js';

it('counts each value in the first bucket whose bound is >= it, cumulatively, with sum and count', async () => {
  const h = new FastHistogram('t_seconds', 'test', [0.1, 0.5, 1]);
  for (const v of [0.05, 0.1, 0.3, 0.5, 0.9, 7]) h.observe(v);
  const r = new Registry();
  r.registerMetric(h as unknown as Parameters<Registry['registerMetric']>[0]);
  const text = await r.metrics();
  expect(text).toContain('# TYPE t_seconds histogram');
  expect(text).toContain('t_seconds_bucket{le="0.1"} 2\n');
  expect(text).toContain('t_seconds_bucket{le="0.5"} 4\n');
  expect(text).toContain('t_seconds_bucket{le="1"} 5\n');
  expect(text).toContain('t_seconds_bucket{le="+Inf"} 6\n');
  expect(text).toContain('t_seconds_sum 8.85\n');
  expect(text).toContain('t_seconds_count 6');
});
