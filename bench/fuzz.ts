/**
 * SPOP fuzzer: mutated HAProxy captures and random frames against a running agent over many
 * connections, checking what the agent promises whatever it is sent:
 *   - it does not crash (the process stays up, logs no error) and does not hang past its
 *     deadlines (every connection settles: ACK of a probe NOTIFY, or AGENT-DISCONNECT);
 *   - a bad frame gets an AGENT-DISCONNECT with a non-zero status (after the ACKs it owes), never
 *     a silent close; a silent or trickling connection gets status 2 from its deadline;
 *   - no allow without a valid token; an untouched NOTIFY with a valid token is allowed.
 * By default it spawns the agent (src/cli.ts serve) trusting a throw-away ES256 issuer whose
 * JWKS it serves on loopback; `--target` fuzzes an agent already running (the allow check only).
 * Prints frames/s every 5 s and each violation with the connection's bytes (hex); exits 1 on
 * any violation.
 *
 *   npm run fuzz -- [--duration S] [--connections N] [--seed N] [--target HOST:PORT] [--deadline-ms MS]
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEV_AUDIENCE } from '../src/auth/index.js';
import { type SpawnedAgent, spawnAgent } from '../src/load/agent-process.js';
import { LOAD_ISSUER, ownIssuer } from '../src/load/issuer.js';
import { formatTarget, parseTarget, type Target } from '../src/load/target.js';
import { corruptSignature } from '../src/load/tokens.js';
import { loadCaptures } from './fuzz/frames.js';
import { Rng } from './fuzz/random.js';
import { type FuzzContext, type Scenario, Session, type Violation } from './fuzz/session.js';
import { ValidTokens } from './fuzz/tokens.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    connections: { type: 'string', default: '32' },
    seed: { type: 'string' },
    target: { type: 'string' },
    'deadline-ms': { type: 'string' },
  },
});

function usage(message: string): never {
  console.error(`fuzz: ${message}`);
  process.exit(2);
}
const durationS = Number(values.duration);
const connections = Number(values.connections);
if (!(durationS > 0 && durationS <= 86_400)) usage('--duration must be 1..86400 seconds');
if (!(Number.isInteger(connections) && connections >= 2 && connections <= 2000))
  usage('--connections must be 2..2000');
const seed = values.seed === undefined ? (Math.random() * 0x1_0000_0000) >>> 0 : Number(values.seed) >>> 0;

/** The spawned agent's deadlines: short, so a hang shows in seconds, yet above a loaded machine's stalls. */
const AGENT_SPOP = {
  maxFrameSize: 16_380,
  helloTimeoutMs: 3_000,
  frameTimeoutMs: 3_000,
  handlerTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  maxConnections: 4_096,
};
/** Slack on top of the deadlines before an unsettled connection counts as a hang (machine load). */
const SLACK_MS = 15_000;

const rng = new Rng(seed);
const captures = [...loadCaptures().values()];

// Tokens: valid ones of our issuer, and ones that must be denied.
const issuer = await ownIssuer('ES256');
const now = Math.floor(Date.now() / 1000);
const ttl = Math.ceil(durationS) + 3_600;
const valid = await Promise.all(Array.from({ length: 16 }, (_, i) => issuer.sign(`fuzz-${i}`, now, ttl)));
const expired = await Promise.all(
  Array.from({ length: 4 }, (_, i) => issuer.sign(`old-${i}`, now - 7_200, 60)),
);
const other = await ownIssuer('ES256'); // same iss and kid scheme, a key the agent does not trust
const foreign = await Promise.all(Array.from({ length: 4 }, (_, i) => other.sign(`x-${i}`, now, ttl)));
const invalid = [
  ...expired,
  ...foreign,
  ...valid.slice(0, 4).map(corruptSignature),
  `${valid[0]!.split('.').slice(0, 2).join('.')}.`,
  'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.',
  'not-a-jwt',
  'a.b.c',
];

let agent: SpawnedAgent | null = null;
let dir: string | null = null;
let jwks: ReturnType<typeof createServer> | null = null;
let target: Target;
let hangMs: number;
if (values.target !== undefined) {
  const t = parseTarget(values.target);
  if (typeof t === 'string') usage(t);
  target = t;
  hangMs = Number(values['deadline-ms'] ?? 15_000);
} else {
  // The issuer on loopback: the agent fetches its JWKS over HTTP like from a real provider.
  jwks = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(req.url === '/jwks.json' ? issuer.jwks : {}));
  });
  await new Promise<void>((resolve) => jwks!.listen(0, '127.0.0.1', resolve));
  const addr = jwks.address();
  const jwksPort = typeof addr === 'object' && addr !== null ? addr.port : 0;
  dir = await mkdtemp(join(tmpdir(), 'spoe-authz-fuzz-'));
  const configPath = join(dir, 'agent.json');
  const config = {
    audit: 'off',
    log: { level: 'error' },
    metrics: { listen: null },
    spop: AGENT_SPOP,
    issuers: [
      {
        id: 'fuzz',
        issuer: LOAD_ISSUER,
        audiences: [DEV_AUDIENCE],
        algorithms: ['ES256'],
        keys: { type: 'jwks-url', url: `http://127.0.0.1:${jwksPort}/jwks.json` },
        roles: { claims: ['roles'], passthrough: true },
      },
    ],
    // Every route needs a valid token of role `worker`: an allow proves one was presented.
    policy: { preset: 'none', rules: [{ name: 'workers', effect: 'allow', path: '/**', roles: ['worker'] }] },
  };
  await writeFile(configPath, JSON.stringify(config, null, 2));
  agent = await spawnAgent({ configPath, logLevel: 'error' });
  target = agent.target;
  hangMs =
    Number(values['deadline-ms'] ?? 0) ||
    Math.max(AGENT_SPOP.helloTimeoutMs, AGENT_SPOP.frameTimeoutMs) + AGENT_SPOP.handlerTimeoutMs + SLACK_MS;
}

const ctx: FuzzContext = {
  target,
  ourMax: AGENT_SPOP.maxFrameSize,
  hangMs,
  frameTimeoutMs: AGENT_SPOP.frameTimeoutMs,
  valid,
  invalid,
  validTokens: new ValidTokens(valid),
  checkFalseDeny: agent !== null,
  captures,
};

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

console.log(
  `fuzz: seed ${seed}, ${durationS} s, ${connections} connections, target ${formatTarget(target)}` +
    `${agent ? ` (spawned: pid ${agent.pid})` : ''}, commit ${commit()}, ${cpus().length} x ${cpus()[0]?.model.trim() ?? '?'}`,
);

const MIX: readonly Scenario[] = [
  'clean',
  'clean',
  'mutated',
  'mutated',
  'mutated',
  'random',
  'raw',
  'prehello',
  'prehello',
];
const violations: Violation[] = [];
let violationCount = 0;
let frames = 0;
let sessions = 0;
const outcomes = new Map<string, number>();
const started = performance.now();
const endAt = started + durationS * 1000;
let stopping = false;

const record = (v: Violation) => {
  violationCount++;
  if (violations.length < 20) violations.push(v);
  console.log(
    `VIOLATION ${v.kind} (${v.scenario}): ${v.detail}\n  sent: ${v.sentHex}\n  received: ${v.received}`,
  );
};

async function worker(index: number): Promise<void> {
  const own = rng.fork();
  let slow = 0;
  while (!stopping && performance.now() < endAt) {
    // Worker 0 keeps one silent or trickling connection open at all times.
    const scenario: Scenario = index === 0 ? (slow++ % 2 === 0 ? 'silent' : 'trickle') : own.pick(MIX);
    const result = await new Session(ctx, own.fork()).run(scenario);
    sessions++;
    frames += result.frames;
    const key = `${scenario}: ${result.outcome}`;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    for (const v of result.violations) record(v);
  }
}

// Crash and error watch: the spawned process must stay up and log nothing at error level.
let errorLines = 0;
const watch = setInterval(() => {
  if (agent === null) return;
  if (agent.sample() === null && !stopping) {
    stopping = true;
    record({
      kind: 'crash',
      detail: `the agent exited:\n${agent.output().slice(-4000)}`,
      scenario: '-',
      sentHex: '',
      received: '',
    });
  }
  const lines = agent
    .output()
    .split('\n')
    .filter((l) => /"level":(50|60)/.test(l));
  for (const l of lines.slice(errorLines))
    record({ kind: 'agent-error', detail: l.slice(0, 2000), scenario: '-', sentHex: '', received: '' });
  errorLines = Math.max(errorLines, lines.length);
}, 1000);
let lastFrames = 0;
let lastAt = started;
const progress = setInterval(() => {
  const t = performance.now();
  const rate = ((frames - lastFrames) / (t - lastAt)) * 1000;
  lastFrames = frames;
  lastAt = t;
  console.log(
    `[fuzz] ${((t - started) / 1000).toFixed(0).padStart(5)}s  frames ${frames.toLocaleString('en-US')}` +
      `  ${Math.round(rate).toLocaleString('en-US')}/s  connections ${sessions.toLocaleString('en-US')}  violations ${violationCount}`,
  );
}, 5000);

const onSignal = () => {
  stopping = true;
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

try {
  await Promise.all(Array.from({ length: connections }, (_, i) => worker(i)));
} finally {
  clearInterval(progress);
  clearInterval(watch);
  if (agent !== null) await agent.stop();
  jwks?.close();
  if (dir !== null) await rm(dir, { recursive: true, force: true });
}

const elapsedS = (performance.now() - started) / 1000;
console.log('\noutcomes (scenario: how the connection ended):');
for (const [k, n] of [...outcomes].sort((a, b) => b[1] - a[1]))
  console.log(`  ${n.toLocaleString('en-US').padStart(10)}  ${k}`);
console.log(
  `\nframes sent: ${frames.toLocaleString('en-US')} over ${sessions.toLocaleString('en-US')} connections in ${elapsedS.toFixed(1)} s` +
    ` (${Math.round(frames / elapsedS).toLocaleString('en-US')} frames/s), seed ${seed}`,
);
console.log(`violations: ${violationCount}`);
process.exit(violationCount > 0 ? 1 : 0);
