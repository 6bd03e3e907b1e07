/**
 * Memory of the real agent process with a full token cache, and under token turnover.
 *
 *   npm run bench:memory -- [--tokens 100000] [--token-bytes 800] [--turnover 60]
 *                           [--variants default,semi-space-2] [--baseline DIR] [--json FILE]
 *                           [--heap-snapshot FILE] [--fill-passes 1]
 *
 * For each variant (a set of Node options for the agent) it starts the built agent
 * (`node dist/cli.js serve`) with an HS256 issuer and `cache.maxEntries` = --tokens, then:
 *   1. idle: RSS and V8 heap used after start;
 *   2. fill: every token of set A once through `spoe-authz load` (each verified and cached;
 *      with --fill-passes 2 each is then used again, so that each holds a remembered decision),
 *      then RSS and heap used 2 s later;
 *   3. turnover: set A and B (2x --tokens distinct tokens) round-robin for --turnover seconds,
 *      so every request misses, is verified and evicts the oldest entry: RSS and heap used
 *      sampled every second (median and max of the last two thirds, and the slope).
 * Tokens are shaped like an identity provider's access token (issuer URL, subject, email,
 * groups, scopes, ids) and padded to about --token-bytes characters. HS256 keeps the signing
 * of 2x100k tokens to a second; the cache holds the same entries whatever the algorithm.
 * RSS comes from /proc, heap used from the agent's own /metrics (nodejs_heap_size_used_bytes).
 * --baseline DIR adds a first row with the build in DIR (another checkout, `npm run build` done
 * there) under default options, to compare two commits in one run. --heap-snapshot FILE writes
 * each variant's heap after filling to FILE.<variant> (open it in Chrome DevTools, Memory): what
 * an entry holds. Writing it makes the process allocate a lot, so the turnover figures of such
 * a run mean nothing.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { readProc } from '../src/load/proc.js';
import { freePort, httpGet, waitForPort } from './lib/net.js';

const ROOT = new URL('../', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/cli.js');

const VARIANTS: Record<string, readonly string[]> = {
  default: [],
  'semi-space-2': ['--max-semi-space-size=2'],
  'semi-space-4': ['--max-semi-space-size=4'],
  /** A 2 MB young generation and old-generation GCs at 1.25x the live size (costs CPU: BENCHMARKS.md). */
  lean: ['--max-semi-space-size=2', '--heap-growing-percent=25'],
  /** Old-generation GCs at 1.25x the live size, the young generation as V8 sizes it. */
  'growing-25': ['--heap-growing-percent=25'],
  /** growing-25 with the young generation capped at 8 MB semi-spaces (V8's default is 16 MB). */
  'growing-25-semi-8': ['--heap-growing-percent=25', '--max-semi-space-size=8'],
  'growing-25-semi-4': ['--heap-growing-percent=25', '--max-semi-space-size=4'],
};

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: '100000' },
    'token-bytes': { type: 'string', default: '800' },
    turnover: { type: 'string', default: '60' },
    variants: { type: 'string', default: 'default,semi-space-2' },
    baseline: { type: 'string' },
    json: { type: 'string' },
    'heap-snapshot': { type: 'string' },
    'fill-passes': { type: 'string', default: '1' },
  },
});
const N = Number(values.tokens);
const TOKEN_BYTES = Number(values['token-bytes']);
const TURNOVER_S = Number(values.turnover);
const FILL_PASSES = Number(values['fill-passes']);
const variantNames = (values.variants ?? '').split(',').filter(Boolean);
for (const v of variantNames) if (!(v in VARIANTS)) throw new Error(`unknown variant ${v}`);

const ISS = 'https://login.example.com/oauth2/default';
const AUD = 'prefect';
const SECRET = randomBytes(32);
const b64u = (b: Buffer | string) => Buffer.from(b).toString('base64url');
const HEADER = b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'bench-1' }));

function token(i: number, nowSec: number): string {
  const claims: Record<string, unknown> = {
    iss: ISS,
    aud: AUD,
    sub: `00u${i.toString(36).padStart(8, '0')}`,
    email: `user${i}@example.com`,
    groups: ['prefect-workers', 'everyone'],
    scp: ['openid', 'profile', 'email'],
    cid: '0oa1bench2client3',
    jti: randomUUID(),
    iat: nowSec,
    exp: nowSec + 3600,
  };
  const bare = `${HEADER}.${b64u(JSON.stringify(claims))}`.length + 44;
  if (bare < TOKEN_BYTES) claims.pad = 'x'.repeat(Math.floor(((TOKEN_BYTES - bare) * 3) / 4));
  const input = `${HEADER}.${b64u(JSON.stringify(claims))}`;
  return `${input}.${b64u(createHmac('sha256', SECRET).update(input).digest())}`;
}

interface Sample {
  readonly rssMb: number;
  readonly heapUsedMb: number;
}

async function sample(pid: number, metricsPort: number): Promise<Sample> {
  const proc = readProc(pid);
  const { body } = await httpGet(metricsPort, '/metrics');
  const heap = /^spoe_authz_nodejs_heap_size_used_bytes (\d+)/m.exec(body);
  return {
    rssMb: (proc?.rssBytes ?? 0) / 1e6,
    heapUsedMb: Number(heap?.[1] ?? 0) / 1e6,
  };
}

/** Runs `spoe-authz load` to the end; resolves with its decisions/s. */
function runLoad(port: number, file: string, pool: number, extra: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        CLI,
        'load',
        '--target',
        `127.0.0.1:${port}`,
        '--token-file',
        file,
        '--tokens',
        `pool:${pool}`,
        '--quiet',
        '--json',
        ...extra,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let report = '';
    child.stdout.on('data', (chunk: Buffer) => {
      report += chunk.toString('utf8');
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve((JSON.parse(report) as { throughput: number }).throughput)
        : reject(new Error(`load exited ${code}:\n${report}`)),
    );
  });
}

/** Writes the agent's heap to `file` (Node's --heapsnapshot-signal, into the agent's cwd). */
async function heapSnapshot(
  agent: ChildProcess,
  dir: string,
  file: string,
  answering: () => Promise<unknown>,
): Promise<void> {
  const before = new Set(readdirSync(dir));
  agent.kill('SIGUSR2');
  for (let i = 0; i < 600; i++) {
    await sleep(100);
    const made = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    // Node writes the file on the main thread: once the agent answers again, it is complete.
    if (made !== undefined) {
      for (let tries = 0; ; tries++) {
        try {
          await answering();
          break;
        } catch (e) {
          if (tries >= 20) throw e;
        }
      }
      renameSync(join(dir, made), file);
      return;
    }
  }
  throw new Error('no heap snapshot within 60 s');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? 0;

async function runVariant(name: string, dir: string, fileA: string, fileAB: string, cli = CLI) {
  const port = await freePort();
  const metricsPort = await freePort();
  const config = join(dir, `${name.replace(/\W/g, '-')}.yaml`);
  writeFileSync(
    config,
    JSON.stringify({
      log: { level: 'warn' },
      audit: 'off',
      cache: { maxEntries: N },
      issuers: [
        {
          id: 'idp',
          issuer: ISS,
          audiences: [AUD],
          algorithms: ['HS256'],
          keys: { type: 'secret', value: SECRET.toString('base64url'), encoding: 'base64url' },
          roles: { claims: ['groups'], map: { 'prefect-workers': 'worker' } },
        },
      ],
    }),
  );
  const agent = spawn(
    process.execPath,
    [
      ...(VARIANTS[name] ?? []),
      ...(values['heap-snapshot'] === undefined ? [] : ['--heapsnapshot-signal=SIGUSR2']),
      cli,
      'serve',
      '--config',
      config,
      '--listen',
      `127.0.0.1:${port}`,
      '--metrics-listen',
      `127.0.0.1:${metricsPort}`,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], cwd: dir },
  );
  let exited: Error | undefined;
  agent.on('exit', (code) => {
    exited = new Error(`agent exited ${code}`);
  });
  try {
    await waitForPort(port, () => exited);
    const pid = agent.pid!;
    await sleep(1000);
    const idle = await sample(pid, metricsPort);
    await runLoad(port, fileA, N, ['--requests', String(N * FILL_PASSES)]);
    await sleep(2000);
    const filled = await sample(pid, metricsPort);
    if (values['heap-snapshot'] !== undefined) {
      await heapSnapshot(agent, dir, `${values['heap-snapshot']}.${name}`, () => sample(pid, metricsPort));
    }
    const turnover: Sample[] = [];
    const load = runLoad(port, fileAB, 2 * N, ['--duration', String(TURNOVER_S), '--warmup', '0']);
    let done = false;
    load.finally(() => {
      done = true;
    });
    while (!done) {
      await sleep(1000);
      if (!done) turnover.push(await sample(pid, metricsPort));
    }
    const turnoverRate = await load;
    const steady = turnover.slice(Math.floor(turnover.length / 3));
    const first = steady[0] ?? filled;
    const last = steady.at(-1) ?? filled;
    const minutes = Math.max(1 / 60, (steady.length - 1) / 60);
    return {
      variant: name,
      nodeOptions: (VARIANTS[name] ?? []).join(' '),
      idle,
      filled,
      perEntryBytes: ((filled.heapUsedMb - idle.heapUsedMb) * 1e6) / N,
      turnover: {
        rssMedianMb: median(steady.map((s) => s.rssMb)),
        rssMaxMb: Math.max(...steady.map((s) => s.rssMb)),
        heapUsedMedianMb: median(steady.map((s) => s.heapUsedMb)),
        heapUsedMaxMb: Math.max(...steady.map((s) => s.heapUsedMb)),
        rssSlopeMbPerMin: (last.rssMb - first.rssMb) / minutes,
        decisionsPerSecond: turnoverRate,
      },
    };
  } finally {
    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
  }
}

const dir = mkdtempSync(join(tmpdir(), 'bench-memory-'));
try {
  const nowSec = Math.floor(Date.now() / 1000);
  const all = Array.from({ length: 2 * N }, (_, i) => token(i, nowSec));
  const fileA = join(dir, 'a.txt');
  const fileAB = join(dir, 'ab.txt');
  writeFileSync(fileA, `${all.slice(0, N).join('\n')}\n`);
  writeFileSync(fileAB, `${all.join('\n')}\n`);
  console.log(
    `bench:memory: ${N.toLocaleString('en-US')} cached tokens of ${all[0]!.length} characters, ` +
      `turnover ${TURNOVER_S} s; ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, node ${process.version}`,
  );
  const rows = [];
  if (values.baseline !== undefined) {
    const base = values.baseline;
    const commit = execFileSync('git', ['-C', base, 'rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
    }).trim();
    rows.push(await runVariant(`baseline ${commit}`, dir, fileA, fileAB, join(base, 'dist/cli.js')));
  }
  for (const name of variantNames) rows.push(await runVariant(name, dir, fileA, fileAB));
  const f = (n: number) => n.toFixed(0).padStart(6);
  console.log(
    '\nvariant          idle RSS  filled RSS  heap used  per entry | turnover RSS med/max  heap med/max  RSS slope  decisions/s',
  );
  for (const r of rows) {
    console.log(
      `${r.variant.padEnd(16).slice(0, 16)} ${f(r.idle.rssMb)} MB   ${f(r.filled.rssMb)} MB  ${f(r.filled.heapUsedMb)} MB  ${f(r.perEntryBytes)} B  |` +
        `   ${f(r.turnover.rssMedianMb)}/${f(r.turnover.rssMaxMb)} MB   ${f(r.turnover.heapUsedMedianMb)}/${f(r.turnover.heapUsedMaxMb)} MB  ${r.turnover.rssSlopeMbPerMin.toFixed(1).padStart(6)} MB/min ${f(r.turnover.decisionsPerSecond)}`,
    );
  }
  if (values.json)
    writeFileSync(
      values.json,
      `${JSON.stringify({ tokens: N, tokenLength: all[0]!.length, rows }, null, 2)}\n`,
    );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
