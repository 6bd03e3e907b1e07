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
 * `--tokens unique`: a fresh RS256 token per NOTIFY (an issuer of the load script's own, the
 * token cache a quarter of the pool, so every decision verifies a signature), and the null
 * agent checks one RS256 signature per NOTIFY (bench/null-agent.ts --verify-pem): the
 * in-process view of bench:e2e's row 4 against row 6, i.e. what the agent's miss path costs
 * beyond the signature check itself.
 *
 * `--tokens pool:N`: N distinct tokens (ES256, an issuer of the load script's own), all cached,
 * taking turns: every decision is a cache hit, most of them outside the token cache's front
 * (token-cache.ts), so they pay for finding the token by its digest; the null agent allows.
 *
 *   npx tsx bench/handler.ts [--tokens reuse|unique|pool:N] [--rounds 9] [--ops 200000] [--routes all|get]
 */
import { createPublicKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createAuthorizeHandler } from '../src/agent/handler.js';
import { mintDevToken } from '../src/auth/index.js';
import { createEngine, parseAgentConfig } from '../src/config/load.js';
import { ownIssuer } from '../src/load/issuer.js';
import { authorizationArg, NotifyEncoder, PREFECT_ROUTES } from '../src/load/notify.js';
import { AgentMetrics } from '../src/metrics.js';
import { FrameHeader, readFrameHeader } from '../src/spop/decode.js';
import { FrameWriter, type NotifyHandler, SpopServer } from '../src/spop/index.js';
import { decodeNotifyPayload } from '../src/spop/notify.js';
import { Reader } from '../src/spop/reader.js';
import { nullAnswerActions, nullHandler } from './lib/null-answer.js';

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: 'reuse' },
    rounds: { type: 'string' },
    ops: { type: 'string' },
    routes: { type: 'string', default: 'all' },
  },
});
const poolMatch = /^pool:(\d+)$/.exec(values.tokens);
if (values.tokens !== 'reuse' && values.tokens !== 'unique' && poolMatch === null)
  throw new Error('--tokens reuse|unique|pool:N');
const unique = values.tokens === 'unique';
/** --tokens pool:N: N cached tokens taking turns, or 0. */
const cachedPool = poolMatch === null ? 0 : Number(poolMatch[1]);
const rounds = Number(values.rounds ?? (unique ? 5 : 9));
const ops = Number(values.ops ?? (unique ? 20_000 : 200_000));
const routes = values.routes === 'get' ? [PREFECT_ROUTES[1]!] : PREFECT_ROUTES;
/** --tokens unique: the pool; the token cache holds a quarter of it, so cycling always misses. */
const POOL = 4_000;

// Reused: the dev issuer's token. Unique: an RS256 issuer of the load script's own, POOL tokens.
// Pool: an ES256 issuer of its own, cachedPool tokens.
const issuer = unique ? await ownIssuer('RS256') : cachedPool > 0 ? await ownIssuer('ES256') : null;
const nowSec = Math.floor(Date.now() / 1000);
const tokens =
  issuer === null
    ? [await mintDevToken({ sub: 'bench-0', roles: ['worker'], ttlSeconds: 3600 })]
    : await Promise.all(
        Array.from({ length: unique ? POOL : cachedPool }, (_, i) => issuer.sign(`bench-${i}`, nowSec, 3600)),
      );

// NOTIFY frames as the load script writes them, cycling through the routes, length prefix stripped.
const encoder = new NotifyEncoder(0, routes);
const frames: Buffer[] = [];
for (let i = 0; i < Math.max(routes.length * 4, tokens.length); i++) {
  const w = new FrameWriter();
  encoder.write(w, 2 * i + 1, 1, i, authorizationArg(tokens[i % tokens.length]!), i);
  const wire = w.take()!;
  frames.push(Buffer.from(wire.subarray(4)));
}

const silent = pino({ level: 'silent' });
const dir = await mkdtemp(join(tmpdir(), 'bench-handler-'));
const config = parseAgentConfig({
  ...(issuer === null ? { devIssuer: true } : await issuer.agentConfig(dir)),
  ...(unique
    ? { cache: { maxEntries: POOL / 4 } }
    : cachedPool > 0
      ? { cache: { maxEntries: cachedPool } }
      : {}),
  audit: 'off',
  metrics: { listen: null },
});
const engine = createEngine(config, { logger: silent });
await engine.start();
const metrics = new AgentMetrics({ engine: () => engine, spop: new SpopServer({ handler: () => [] }) });
const agent = createAuthorizeHandler({
  engine,
  audit: 'off',
  auditLogger: silent,
  onDecision: (d, s) => metrics.onDecision(d, s),
});
const nullAllow = nullAnswerActions();
const nullAgent: NotifyHandler = nullHandler(nullAllow, unique ? createPublicKey(issuer!.publicPem!) : null);
// The null agent must allow these NOTIFYs (with --tokens unique: check their signatures), or
// it would answer a cheap deny and the comparison would be void.
for (const buf of frames.slice(0, 16)) {
  const r = new Reader(buf);
  const h = new FrameHeader();
  readFrameHeader(r, h);
  if (
    nullAgent(decodeNotifyPayload(r, buf, h.streamId, h.frameId), { connectionId: 1 } as never) !== nullAllow
  )
    throw new Error('the null agent does not allow these NOTIFYs');
}

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
    if (result instanceof Promise) throw new Error('decisions here must be synchronous (cached, or RS256)');
    writer.ack(h.streamId, h.frameId, result);
    if ((i & 63) === 63) writer.take();
  }
  writer.take();
  return Number(process.hrtime.bigint() - start) / n;
}

// Reused and pool: the first decision per token verifies it (asynchronously); every later one
// finds it cached.
if (!unique) {
  for (const buf of frames.slice(0, tokens.length)) {
    const r = new Reader(buf);
    const h = new FrameHeader();
    readFrameHeader(r, h);
    await agent(decodeNotifyPayload(r, buf, h.streamId, h.frameId), ctx);
  }
}
// Warm up both (JIT, token cache, remembered decisions), and check that every answer is an
// allow from a cached token (reused) or a verified one (unique): a bench of denials would
// measure the wrong path.
const warm = unique ? 8_000 : 50_000;
run(nullAgent, warm);
run(agent, warm);
const before = engine.stats();
run(agent, 10_000);
const after = engine.stats();
const allowed = after.allowed - before.allowed;
const expected = unique ? after.verifications - before.verifications : after.cache.hits - before.cache.hits;
if (allowed !== 10_000 || expected !== 10_000)
  throw new Error(
    `expected 10,000 ${unique ? 'verified' : 'cached'} allows, got ${JSON.stringify({ before, after })}`,
  );
const ns: Record<'null' | 'agent', number[]> = { null: [], agent: [] };
for (let round = 0; round < rounds; round++) {
  ns.null.push(run(nullAgent, ops));
  ns.agent.push(run(agent, ops));
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const m = { null: median(ns.null), agent: median(ns.agent) };
process.stdout.write(
  `${cpus().length} x ${cpus()[0]?.model.trim()}, Node ${process.version}; ${routes.length} route(s), ` +
    `${rounds} rounds x ${ops} NOTIFYs, ${unique ? `fresh RS256 tokens (pool ${POOL}, cache ${POOL / 4})` : cachedPool > 0 ? `${cachedPool} cached ES256 tokens taking turns` : 'one reused token'}, medians\n` +
    `${unique ? 'null + RS256' : 'null agent  '}  ${m.null.toFixed(0)} ns/NOTIFY  (rounds: ${ns.null.map((v) => v.toFixed(0)).join(' ')})\n` +
    `agent         ${m.agent.toFixed(0)} ns/NOTIFY  (rounds: ${ns.agent.map((v) => v.toFixed(0)).join(' ')})\n` +
    `${unique ? 'the miss path beyond one signature check' : 'authorization on a cached token'}: ` +
    `+${(m.agent - m.null).toFixed(0)} ns per NOTIFY (agent / null ${(m.agent / m.null).toFixed(2)}x)\n`,
);
engine.close();
await rm(dir, { recursive: true, force: true });
