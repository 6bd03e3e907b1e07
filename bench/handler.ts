/**
 * The agent's per-NOTIFY work without sockets, against the null agent's, in one process:
 *   NOTIFY payload decode -> handler -> ACK encoded into a FrameWriter
 * on NOTIFYs as the load script sends them (the shipped SPOE args, one reused dev token, the
 * eight Prefect worker routes or the one GET of bench:e2e). Variants, interleaved per round:
 *   null     the null agent's handler (bench/null-agent.ts): the same SET-VARs, nothing read
 *   agent    the product's handler (createAuthorizeHandler + engine + metrics, audit off)
 * The difference is what authorization costs on a cached token beyond SPOP itself: the
 * in-process view of bench:e2e's row 3 against row 5. Prints ns per NOTIFY (median of rounds)
 * and the ratio.
 *
 *   npx tsx bench/handler.ts [--rounds 9] [--ops 200000] [--routes all|get]
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createAuthorizeHandler } from '../src/agent/handler.js';
import { mintDevToken } from '../src/auth/index.js';
import { createEngine, parseAgentConfig } from '../src/config/load.js';
import { authorizationArg, NotifyEncoder, PREFECT_ROUTES } from '../src/load/notify.js';
import { AgentMetrics } from '../src/metrics.js';
import { FrameHeader, readFrameHeader } from '../src/spop/decode.js';
import { FrameWriter, type NotifyHandler, SpopServer } from '../src/spop/index.js';
import { decodeNotifyPayload } from '../src/spop/notify.js';
import { Reader } from '../src/spop/reader.js';
import { nullAnswerActions } from './lib/null-answer.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '9' },
    ops: { type: 'string', default: '200000' },
    routes: { type: 'string', default: 'all' },
  },
});
const rounds = Number(values.rounds);
const ops = Number(values.ops);
const routes = values.routes === 'get' ? [PREFECT_ROUTES[1]!] : PREFECT_ROUTES;

// NOTIFY frames as the load script writes them, one per route, length prefix stripped.
const token = await mintDevToken({ sub: 'bench-0', roles: ['worker'], ttlSeconds: 3600 });
const encoder = new NotifyEncoder(0, routes);
const frames: Buffer[] = [];
for (let i = 0; i < routes.length * 4; i++) {
  const w = new FrameWriter();
  encoder.write(w, 2 * i + 1, 1, i, authorizationArg(token), i);
  const wire = w.take()!;
  frames.push(Buffer.from(wire.subarray(4)));
}

const silent = pino({ level: 'silent' });
const config = parseAgentConfig({ devIssuer: true, audit: 'off', metrics: { listen: null } });
const engine = createEngine(config, { logger: silent });
await engine.start();
const metrics = new AgentMetrics({ engine: () => engine, spop: new SpopServer({ handler: () => [] }) });
const agent = createAuthorizeHandler({
  engine,
  audit: 'off',
  auditLogger: silent,
  onDecision: (d, s) => metrics.onDecision(d, s),
});
const ALLOW = nullAnswerActions();
const nullAgent: NotifyHandler = () => ALLOW;

const ctx = { connectionId: 1 } as never;
const writer = new FrameWriter();

function run(handler: NotifyHandler, n: number): number {
  const start = process.hrtime.bigint();
  const r = new Reader(frames[0]!);
  const h = new FrameHeader();
  for (let i = 0; i < n; i++) {
    const buf = frames[i % frames.length]!;
    r.reset(buf, 0, buf.length);
    readFrameHeader(r, h);
    const notify = decodeNotifyPayload(r, buf, h.streamId, h.frameId);
    const result = handler(notify, ctx);
    if (result instanceof Promise) throw new Error('a cached decision must be synchronous');
    writer.ack(h.streamId, h.frameId, result);
    if ((i & 63) === 63) writer.take();
  }
  writer.take();
  return Number(process.hrtime.bigint() - start) / n;
}

// The first decision verifies the token (asynchronously); every later one finds it cached.
{
  const buf = frames[0]!;
  const r = new Reader(buf);
  const h = new FrameHeader();
  readFrameHeader(r, h);
  await agent(decodeNotifyPayload(r, buf, h.streamId, h.frameId), ctx);
}
// Warm up both (JIT, token cache, remembered decisions), and check that every answer is an
// allow from a cached token: a bench of denials would measure the wrong path.
run(nullAgent, 50_000);
run(agent, 50_000);
const before = engine.stats();
run(agent, 10_000);
const after = engine.stats();
if (after.allowed - before.allowed !== 10_000 || after.cache.hits - before.cache.hits !== 10_000)
  throw new Error(`expected 10,000 cached allows, got ${JSON.stringify({ before, after })}`);
const ns: Record<'null' | 'agent', number[]> = { null: [], agent: [] };
for (let round = 0; round < rounds; round++) {
  ns.null.push(run(nullAgent, ops));
  ns.agent.push(run(agent, ops));
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const m = { null: median(ns.null), agent: median(ns.agent) };
process.stdout.write(
  `${cpus().length} x ${cpus()[0]?.model.trim()}, Node ${process.version}; ${routes.length} route(s), ` +
    `${rounds} rounds x ${ops} NOTIFYs, medians\n` +
    `null agent  ${m.null.toFixed(0)} ns/NOTIFY  (rounds: ${ns.null.map((v) => v.toFixed(0)).join(' ')})\n` +
    `agent       ${m.agent.toFixed(0)} ns/NOTIFY  (rounds: ${ns.agent.map((v) => v.toFixed(0)).join(' ')})\n` +
    `authorization on a cached token: +${(m.agent - m.null).toFixed(0)} ns per NOTIFY (agent / null ${(m.agent / m.null).toFixed(2)}x)\n`,
);
engine.close();
