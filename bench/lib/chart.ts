/**
 * The SVG chart of bench:e2e's rows that BENCHMARKS.md embeds: throughput on the left, p50 and
 * p99 latency on the right, one line per row. Plain SVG text, no dependency; the numbers are
 * printed beside each bar so the chart reads without a scale.
 */

export interface ChartRow {
  readonly label: string;
  readonly rps: number;
  /** Latency in ms. */
  readonly p50: number;
  readonly p99: number;
}

const ROW_H = 26;
const TOP = 56;
const LABEL_W = 300;
const BAR_W = 260;
const GAP = 110;
const FAMILY = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"';
const FONT = `${FAMILY} font-size="12"`;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const fmtRps = (n: number) => `${(n / 1000).toFixed(n >= 100_000 ? 0 : 1)}k/s`;
const fmtMs = (n: number) => (n >= 10 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n.toFixed(2));

export function renderChart(title: string, subtitle: string, rows: readonly ChartRow[]): string {
  const maxRps = Math.max(1, ...rows.map((r) => r.rps));
  const maxMs = Math.max(0.001, ...rows.map((r) => r.p99));
  const x1 = LABEL_W;
  const x2 = LABEL_W + BAR_W + GAP;
  const width = x2 + BAR_W + GAP;
  const height = TOP + rows.length * ROW_H + 34;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="12" y="20" ${FAMILY} font-size="15" font-weight="600" fill="#111">${esc(title)}</text>`,
    `<text x="12" y="38" ${FONT} fill="#555">${esc(subtitle)}</text>`,
    `<text x="${x1}" y="${TOP - 4}" ${FONT} font-weight="600" fill="#111">requests/s (higher is better)</text>`,
    `<text x="${x2}" y="${TOP - 4}" ${FONT} font-weight="600" fill="#111">latency ms: p50 (dark), p99 (light)</text>`,
  ];
  rows.forEach((r, i) => {
    const y = TOP + i * ROW_H + 6;
    const w1 = Math.max(1, (r.rps / maxRps) * BAR_W);
    const w50 = Math.max(1, (r.p50 / maxMs) * BAR_W);
    const w99 = Math.max(1, (r.p99 / maxMs) * BAR_W);
    out.push(
      `<text x="12" y="${y + 13}" ${FONT} fill="#111">${esc(r.label)}</text>`,
      `<rect x="${x1}" y="${y}" width="${w1.toFixed(1)}" height="16" fill="#2f6fb0"/>`,
      `<text x="${(x1 + w1 + 6).toFixed(1)}" y="${y + 13}" ${FONT} fill="#111">${fmtRps(r.rps)}</text>`,
      `<rect x="${x2}" y="${y}" width="${w99.toFixed(1)}" height="16" fill="#e3a33b" fill-opacity="0.45"/>`,
      `<rect x="${x2}" y="${y + 4}" width="${w50.toFixed(1)}" height="8" fill="#b5651d"/>`,
      `<text x="${(x2 + w99 + 6).toFixed(1)}" y="${y + 13}" ${FONT} fill="#111">${fmtMs(r.p50)} / ${fmtMs(r.p99)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}
