import { describe, expect, it } from 'vitest';
import { renderChart } from '../../bench/lib/chart.js';

describe('bench:e2e chart', () => {
  const svg = renderChart('title <&>', 'abc1234, 2026-12-03, a machine', [
    { label: '1. no authorization', rps: 50_000, p50: 3.2, p99: 9.5 },
    { label: '3. agent, token reused', rps: 25_000, p50: 7.1, p99: 19 },
  ]);

  it('is one SVG document with escaped text', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('title &lt;&amp;&gt;');
    expect(svg).not.toContain('title <&>');
    // Well-formed: no element repeats an attribute (an XML error; browsers then show nothing).
    for (const tag of svg.match(/<[a-z]+ [^>]*>/g) ?? []) {
      const names = [...tag.matchAll(/ ([a-z-]+)="/g)].map((m) => m[1]);
      expect(new Set(names).size, tag).toBe(names.length);
    }
  });

  it('draws each row with its figures, bars in proportion', () => {
    expect(svg).toContain('50.0k/s');
    expect(svg).toContain('25.0k/s');
    expect(svg).toContain('3.2 / 9.5');
    const widths = [
      ...svg.matchAll(/<rect x="300" y="\d+" width="([\d.]+)" height="16" fill="#2f6fb0"\/>/g),
    ].map((m) => Number(m[1]));
    expect(widths).toHaveLength(2);
    expect(widths[0]! / widths[1]!).toBeCloseTo(2, 5);
  });
});
