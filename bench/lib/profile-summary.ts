/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by file, top N,
 * and inclusive time of the functions named in --total (comma list), all as % of busy time.
 *   npx tsx bench/lib/profile-summary.ts <file.cpuprofile> [N] [--total onData,decide,flush]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write('usage: profile-summary <file.cpuprofile> [top]\n');
  process.exit(2);
}
const top = Number(process.argv[3] ?? 25);
const totalArg = process.argv.indexOf('--total');
const inclusiveNames = totalArg > 0 ? (process.argv[totalArg + 1] ?? '').split(',') : [];
const prof = JSON.parse(readFileSync(file, 'utf8')) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
for (let i = 0; i < prof.samples.length; i++) {
  const id = prof.samples[i]!;
  self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
}
// Busy time: everything but (idle).
let total = 0;
for (const [id, us] of self) if (byId.get(id)!.callFrame.functionName !== '(idle)') total += us;
const byFn = new Map<string, number>();
const byFile = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id)!;
  const url = n.callFrame.url.replace(/^file:\/\/.*?\/(node_modules|src)\//, '$1/');
  const fn = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
  byFn.set(fn, (byFn.get(fn) ?? 0) + us);
  const f = url === '' ? `(${n.callFrame.functionName})` : url.replace(/^node:.*/, 'node:internal');
  byFile.set(f, (byFile.get(f) ?? 0) + us);
}
const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
process.stdout.write(`total ${(total / 1e6).toFixed(2)} s sampled\n\nself time by function:\n`);
for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top))
  process.stdout.write(`${pct(v)}  ${k}\n`);
process.stdout.write('\nself time by file:\n');
for (const [k, v] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, top))
  process.stdout.write(`${pct(v)}  ${k}\n`);

if (inclusiveNames.length > 0) {
  // Inclusive time: self time of the node and every descendant, counted once per subtree root
  // (a recursive function is not counted twice).
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  process.stdout.write('\ninclusive time:\n');
  for (const name of inclusiveNames) {
    let us = 0;
    for (const [id, t] of self) {
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        if (byId.get(cur)!.callFrame.functionName === name) {
          us += t;
          break;
        }
      }
    }
    process.stdout.write(`${pct(us)}  ${name}\n`);
  }
}
