/**
 * The generator against real agents on loopback, short and bounded by request count. No timing
 * assertions: only that every request is accounted for and every decision checked.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli.js';
import { parseAgentConfig } from '../../src/config/load.js';
import { agentCommand, spawnAgent } from '../../src/load/agent-process.js';
import { currentGc, SINGLE_THREADED_GC, singleGcArgs } from '../../src/load/gc.js';
import { type LoadOptions, type LoadReport, parseLoadOptions, runLoadTest } from '../../src/load/index.js';
import { type Runtime, startRuntime } from '../../src/runtime.js';
import {
  type Action,
  encodeAck,
  encodeAgentHello,
  Framer,
  FrameType,
  SpopServer,
  VarScope,
} from '../../src/spop/index.js';
import { capture } from '../helpers/capture.js';

const silent = pino({ level: 'silent' });

function options(values: Record<string, string | boolean>, port: number): LoadOptions {
  return {
    ...parseLoadOptions({ warmup: '0', quiet: true, ...values }),
    target: { kind: 'tcp', host: '127.0.0.1', port },
  };
}

/**
 * A TCP proxy on loopback between the generator and the agent at `agentPort`. By default bytes
 * pass as they come; `toAgent` sees each chunk from the generator, `toGenerator` builds the
 * writer of each chunk from the agent for one proxied connection.
 */
async function startProxy(
  agentPort: number,
  hooks: {
    toAgent?: (chunk: Buffer, up: Socket) => void;
    toGenerator?: (client: Socket) => (chunk: Buffer) => void;
  } = {},
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const proxy = createServer((client) => {
    const up = connect(agentPort, '127.0.0.1');
    up.setNoDelay(true);
    client.setNoDelay(true);
    sockets.add(client).add(up);
    const toAgent = hooks.toAgent;
    client.on('data', (d: Buffer) => (toAgent === undefined ? up.write(d) : toAgent(d, up)));
    const toGenerator = hooks.toGenerator?.(client) ?? ((d: Buffer) => client.write(d));
    up.on('data', toGenerator);
    const end = () => {
      client.destroy();
      up.destroy();
    };
    client.on('close', end).on('error', end);
    up.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    port: (proxy.address() as AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

describe('load generator against the real agent (in process, dev issuer)', () => {
  let runtime: Runtime;
  let port: number;

  beforeAll(async () => {
    const config = parseAgentConfig({
      devIssuer: true,
      audit: 'off',
      listen: '127.0.0.1:0',
      metrics: { listen: null },
    });
    runtime = await startRuntime(config, silent);
    port = portOf(runtime.address);
  });
  afterAll(() => runtime?.close());

  it('closed loop: every NOTIFY answered, counts add up, the invalid share is denied for the right reason', async () => {
    const r = await runLoadTest(
      options(
        { requests: '3000', connections: '3', pipeline: '16', tokens: 'pool:10', 'invalid-share': '0.2' },
        port,
      ),
    );
    expect(r.sent).toBe(3000);
    expect(r.acked).toBe(3000);
    expect(r.errors).toEqual({
      total: 0,
      mismatches: 0,
      timeouts: 0,
      lost: 0,
      unknownAcks: 0,
      lateAcks: 0,
      protocol: 0,
      disconnects: 0,
      warmup: 0,
    });
    expect(r.expected).toEqual({ allow: 2400, deny: 600 });
    expect([r.allowed, r.denied]).toEqual([2400, 600]);
    expect(r.reasons).toEqual({ ok: 2400, bad_signature: 300, expired: 300 });
    expect(r.latencyUs).not.toBeNull();
    expect(r.latencyUs!.p50).toBeLessThanOrEqual(r.latencyUs!.max);
    expect(r.latencyFrom).toBe('send time');
    expect(r.throughput).toBeGreaterThan(0);
  });

  it('unique tokens: each verified once (cache misses, no hits)', async () => {
    const r = await runLoadTest(options({ requests: '400', tokens: 'unique', 'invalid-share': '0.1' }, port));
    expect(r.errors.total).toBe(0);
    expect([r.allowed, r.denied]).toEqual([360, 40]);
    expect(r.cache.miss).toBe(400);
    expect(r.cache.hit).toBeUndefined();
  });

  it('open loop at a target rate, 2.6-style stream ids', async () => {
    const r = await runLoadTest(
      options({ requests: '500', rate: '5000', ids: '2.6', connections: '2' }, port),
    );
    expect([r.sent, r.acked, r.unsent]).toEqual([500, 500, 0]);
    expect(r.errors.total).toBe(0);
    expect(r.latencyFrom).toBe('intended send time');
    expect(r.settings.loop).toBe('open');
  });

  // Each batch of ACKs used to arm another chain of setImmediate pumps (and, sleeping between
  // sends, another sleep per loop turn: p50 8 ms at 5k/s). One pump is armed at a time now.
  it.each(['sleep', 'spin'])('open loop, --pacing %s: never more than one pump armed', async (pacing) => {
    const real = globalThis.setImmediate;
    let armed = 0;
    let maxArmed = 0;
    const counting = ((cb: (...a: unknown[]) => void, ...rest: unknown[]) => {
      if (cb.name !== 'pumpBound') return real(cb, ...rest);
      armed++;
      maxArmed = Math.max(maxArmed, armed);
      return real(() => {
        armed--;
        cb();
      });
    }) as typeof setImmediate;
    globalThis.setImmediate = counting;
    try {
      const r = await runLoadTest(
        options({ requests: '1500', rate: '3000', pacing, connections: '3', pipeline: '20' }, port),
      );
      expect([r.sent, r.acked, r.errors.total]).toEqual([1500, 1500, 0]);
      expect(r.settings.pacing).toBe(pacing);
    } finally {
      globalThis.setImmediate = real;
    }
    expect(maxArmed).toBe(1);
  });

  it("the CLI with --target and --agent-pid reports that process's CPU and RSS in --json", async () => {
    // The agent runs in this process (startRuntime above), so its pid is ours.
    const { value: code, text: out } = await capture('stdout', () =>
      main([
        'load',
        '--target',
        `127.0.0.1:${port}`,
        '--agent-pid',
        String(process.pid),
        '--requests',
        '300',
        '--warmup',
        '0',
        '--json',
        '--quiet',
        // In this process (its stdout is captured): no second run under --single-threaded-gc.
        '--generator-gc',
        'parallel',
      ]),
    );
    expect(code).toBe(0);
    const r = JSON.parse(out) as LoadReport;
    expect([r.sent, r.acked, r.errors.total]).toEqual([300, 300, 0]);
    expect(r.generator.gc).toBe('parallel');
    expect(r.agent).toMatchObject({ spawned: false, pid: process.pid });
    expect(r.agent.cpuPercent).toBeTypeOf('number');
    expect(r.agent.rssMb).toBeGreaterThan(10);
  });

  it('by default the CLI runs the generator again under --single-threaded-gc, same arguments and exit code', async () => {
    const args = [
      'load',
      '--target',
      `127.0.0.1:${port}`,
      '--requests',
      '300',
      '--warmup',
      '0',
      '--json',
      '--quiet',
    ];
    // As a user runs it: the CLI as its own process, without the flag.
    const run = (extra: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [...agentCommand().args, ...args, ...extra], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
        });
        child.once('error', reject);
        child.once('exit', (code) => resolve({ code, out }));
      });
    const single = await run([]);
    expect(single.code).toBe(0);
    const r = JSON.parse(single.out) as LoadReport;
    expect([r.sent, r.acked, r.errors.total]).toEqual([300, 300, 0]);
    expect(r.generator.gc).toBe('single');
    // The second run's exit code is the CLI's: 2 for a usage error (found before any second
    // run), 1 when the agent cannot be reached (found by the second run).
    expect((await run(['--timeout', '0'])).code).toBe(2);
    const unreachable = await run(['--target', '127.0.0.1:1']);
    expect(unreachable).toMatchObject({ code: 1, out: '' });
    expect(singleGcArgs(['load', '--rate', '5'])).toEqual([
      SINGLE_THREADED_GC,
      ...agentCommand().args,
      'load',
      '--rate',
      '5',
    ]);
    expect(currentGc(['--single-threaded-gc'])).toBe('single');
    expect(currentGc(['--import', 'tsx'])).toBe('parallel');
  }, 120_000);

  it('SIGTERM to the CLI reaches the generator it runs again under --single-threaded-gc', async () => {
    const cli = spawn(
      process.execPath,
      [...agentCommand().args, 'load', '--target', `127.0.0.1:${port}`, '--duration', '60', '--quiet'],
      { stdio: 'ignore' },
    );
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      cli.once('exit', (code, signal) => resolve({ code, signal })),
    );
    // The second run: the CLI's one child (the generator), once it runs the generator's command
    // line (between fork and exec a child still shows its parent's).
    let generator = 0;
    const argvOf = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      } catch {
        return [];
      }
    };
    for (let i = 0; i < 400 && generator === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const children = readFileSync(`/proc/${cli.pid}/task/${cli.pid}/children`, 'utf8').trim();
      const child = children === '' ? 0 : Number(children.split(/\s+/)[0]);
      if (child > 0 && argvOf(child).includes(SINGLE_THREADED_GC)) generator = child;
    }
    expect(generator).toBeGreaterThan(0);
    cli.kill('SIGTERM');
    // The CLI exits as its generator did: killed by SIGTERM, 128 + 15.
    expect(await exited).toEqual({ code: 143, signal: null });
    expect(() => process.kill(generator, 0)).toThrow(/ESRCH/);
  });

  it('--batch-us holds due NOTIFYs and sends them together, latency counted from the intended time', async () => {
    // Counts the generator's writes as they arrive (one 'data' event each here).
    const writes = { n: 0 };
    const proxy = await startProxy(port, {
      toAgent: (d, up) => {
        writes.n++;
        up.write(d);
      },
    });
    const run = async (batchUs: string) => {
      writes.n = 0;
      const r = await runLoadTest(
        options(
          { rate: '2000', requests: '400', connections: '1', pipeline: '100', 'batch-us': batchUs },
          proxy.port,
        ),
      );
      expect([r.sent, r.acked, r.errors.total]).toEqual([400, 400, 0]);
      return { writes: writes.n - 1, p50: r.latencyUs!.p50 }; // minus the HELLO
    };
    try {
      // 2,000/s: one due every 0.5 ms. Alone, about one NOTIFY per write; held until the oldest
      // is 20 ms late, ~40 per write, and each waited ~10 ms on average.
      const alone = await run('0');
      const batched = await run('20000');
      // Alone it writes about once per NOTIFY on an idle machine; a busy one makes the
      // generator late and coalesce some, so the bound is relative to the batched run.
      expect(alone.writes).toBeGreaterThan(2 * batched.writes);
      expect(batched.writes).toBeLessThan(40);
      expect(batched.p50).toBeGreaterThan(5_000);
      expect(batched.p50).toBeGreaterThan(alone.p50);
    } finally {
      await proxy.close();
    }
  });

  it('reads ACKs however the bytes are cut: 1 to 7 bytes per read, through a proxy', async () => {
    // A frame or its length prefix split across reads is assembled by the framer; the generator
    // must count each ACK once, with its decision, whatever the cuts.
    const proxy = await startProxy(port, {
      toGenerator: (client) => {
        const queue: Buffer[] = [];
        let cut = 0;
        let draining = false;
        const drip = () => {
          const next = queue[0];
          if (next === undefined || client.destroyed) {
            draining = false;
            return;
          }
          const n = Math.min(next.length, 1 + (cut++ % 7));
          client.write(next.subarray(0, n));
          if (n === next.length) queue.shift();
          else queue[0] = next.subarray(n);
          setTimeout(drip, 0);
        };
        return (d) => {
          queue.push(Buffer.from(d));
          if (!draining) {
            draining = true;
            drip();
          }
        };
      },
    });
    try {
      const r = await runLoadTest(
        options(
          { requests: '60', warmup: '0', connections: '2', pipeline: '5', 'invalid-share': '0.5' },
          proxy.port,
        ),
      );
      expect([r.sent, r.acked, r.errors.total]).toEqual([60, 60, 0]);
      expect(r.allowed + r.denied).toBe(60);
      expect(r.denied).toBe(30);
    } finally {
      await proxy.close();
    }
  });

  it('a warm-up is not counted', async () => {
    const r = await runLoadTest(options({ warmup: '0.3', requests: '200' }, port));
    expect([r.sent, r.acked, r.errors.total]).toEqual([200, 200, 0]);
  });
});

describe('load generator against broken agents', () => {
  const servers: { close(): unknown }[] = [];
  afterAll(async () => {
    for (const s of servers) await s.close();
  });

  it('counts every decision that contradicts the token as a mismatch', async () => {
    const allowAll: Action[] = [
      { op: 'set', scope: VarScope.TXN, name: 'allow', value: true },
      { op: 'set', scope: VarScope.TXN, name: 'status', value: 200 },
      { op: 'set', scope: VarScope.TXN, name: 'reason', value: 'ok' },
    ];
    const server = new SpopServer({ handler: () => allowAll });
    servers.push(server);
    const { port } = await server.listen(0, '127.0.0.1');
    const r = await runLoadTest(options({ requests: '1000', 'invalid-share': '0.3' }, port));
    expect(r.acked).toBe(1000);
    expect(r.errors.mismatches).toBe(300);
    expect(r.errors.total).toBe(300);
    expect(r.mismatchKinds).toEqual({
      'bad_signature -> allow=true status=200 reason=ok': 150,
      'expired -> allow=true status=200 reason=ok': 150,
    });
  });

  it('counts NOTIFYs never answered as timeouts, and the run still ends', async () => {
    const server = new SpopServer({
      handler: () => new Promise<Action[]>(() => {}),
      handlerTimeoutMs: 60_000,
    });
    servers.push(server);
    const { port } = await server.listen(0, '127.0.0.1');
    const r = await runLoadTest(
      options({ requests: '40', connections: '2', pipeline: '10', timeout: '200' }, port),
    );
    expect(r.sent).toBe(40);
    expect(r.acked).toBe(0);
    expect(r.errors.timeouts).toBe(40);
    expect(r.errors.total).toBe(40);
    await server.close({ deadlineMs: 100 });
  });

  it('an ACK after its timeout is a timeout once, not also a wrong ACK', async () => {
    const allow: Action[] = [{ op: 'set', scope: VarScope.TXN, name: 'allow', value: true }];
    const server = new SpopServer({
      handler: () => new Promise<Action[]>((resolve) => setTimeout(() => resolve(allow), 160)),
    });
    servers.push(server);
    const { port } = await server.listen(0, '127.0.0.1');
    const r = await runLoadTest(
      options({ requests: '30', connections: '1', pipeline: '10', timeout: '100' }, port),
    );
    expect(r.errors.timeouts).toBe(30);
    expect(r.errors.lateAcks).toBeGreaterThanOrEqual(10);
    expect(r.errors.unknownAcks).toBe(0);
    expect(r.errors.total).toBe(30);
  });

  it('an ACK with the wrong frame-id is a protocol error; what was in flight is lost', async () => {
    // A raw agent: HELLO answered, then every NOTIFY acknowledged with frame-id 2.
    const raw: Server = createServer((sock) => {
      const framer = new Framer(1 << 20);
      let hello = false;
      sock.on('data', (chunk) => {
        framer.push(chunk);
        while (framer.next()) {
          const type = framer.frame[framer.start];
          if (!hello) {
            hello = true;
            sock.write(encodeAgentHello(16380, 'pipelining'));
          } else if (type === FrameType.NOTIFY) {
            sock.write(encodeAck(1, 2, []));
          }
        }
      });
      sock.on('error', () => {});
    });
    servers.push({ close: () => new Promise((resolve) => raw.close(resolve)) });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const port = (raw.address() as { port: number }).port;
    const r = await runLoadTest(options({ requests: '10', connections: '1', pipeline: '5' }, port));
    expect(r.errors.protocol).toBe(1);
    expect(r.errors.lost).toBe(5);
    expect(r.errorSamples.join('\n')).toMatch(/frame-id 2, expected 1/);
  });
});

describe('load generator with --spawn-agent', () => {
  it('starts the agent (own RS256 issuer), reports its CPU and RSS, and stops it', async () => {
    const o = parseLoadOptions({
      'spawn-agent': true,
      alg: 'RS256',
      tokens: 'pool:4',
      'invalid-share': '0.25',
      requests: '400',
      warmup: '0',
      quiet: true,
    });
    const r = await runLoadTest(o);
    expect(r.errors.total).toBe(0);
    expect([r.sent, r.acked, r.allowed, r.denied]).toEqual([400, 400, 300, 100]);
    expect(r.agent.spawned).toBe(true);
    expect(r.agent.cpuPercent).toBeTypeOf('number');
    expect(r.agent.rssMb).toBeGreaterThan(10);
    expect(() => process.kill(r.agent.pid!, 0)).toThrow();
  }, 60_000);

  it('spawnAgent on a unix socket: listens there, answers a run, and the socket is gone after stop', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'load-unix-'));
    try {
      const path = join(dir, 'agent.sock');
      const configPath = join(dir, 'agent.json');
      await writeFile(
        configPath,
        JSON.stringify({ devIssuer: true, audit: 'off', metrics: { listen: null } }),
      );
      const agent = await spawnAgent({ configPath, unixPath: path });
      try {
        expect(agent.target).toEqual({ kind: 'unix', path });
        expect(agent.command).toContain(`--listen unix:${path}`);
        const r = await runLoadTest(
          parseLoadOptions({ target: `unix:${path}`, requests: '200', warmup: '0', quiet: true }),
        );
        expect(r.errors.total).toBe(0);
        expect([r.sent, r.acked, r.allowed]).toEqual([200, 200, 200]);
      } finally {
        await agent.stop();
      }
      expect(existsSync(path)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('SIGTERM ends the run early: report of the run so far, agent stopped, files removed, exit 143', async () => {
    const cli = spawn(
      process.execPath,
      [
        ...agentCommand().args,
        'load',
        '--spawn-agent',
        '--duration',
        '60',
        '--warmup',
        '0',
        '--json',
        '--quiet',
        '--generator-gc',
        'parallel',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    cli.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    cli.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
    // Wait for the spawned agent, then for the run to be under way.
    await vi.waitFor(() => expect(err).toMatch(/agent started: pid (\d+)/), {
      timeout: 30_000,
      interval: 50,
    });
    const agentPid = Number(/agent started: pid (\d+)/.exec(err)![1]);
    const config = readFileSync(`/proc/${agentPid}/cmdline`, 'utf8').split('\0');
    const configDir = dirname(config[config.indexOf('--config') + 1]!);
    await new Promise((r) => setTimeout(r, 1_000));
    cli.kill('SIGTERM');
    expect(await exited).toBe(143);
    const r = JSON.parse(out) as LoadReport;
    expect(r.sent).toBeGreaterThan(0);
    expect(r.acked).toBe(r.sent);
    expect(r.errors.total).toBe(0);
    expect(r.elapsedS).toBeLessThan(30);
    expect(err).toMatch(/interrupted by SIGTERM/);
    expect(() => process.kill(agentPid, 0)).toThrow(/ESRCH/);
    expect(existsSync(configDir)).toBe(false);
  }, 60_000);
});
