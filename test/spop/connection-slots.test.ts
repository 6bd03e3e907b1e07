/**
 * Connection slots that silent or trickling peers cannot hold: the HELLO deadline, the
 * per-frame deadline (not extended by each byte), and what a new connection does at
 * `maxConnections` (`limitPolicy`). Real sockets on 127.0.0.1; deadlines are configured small so
 * the tests wait for events, never for a wall-clock goal.
 */
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type DecodedFrame,
  encodeFrame,
  FrameType,
  type NotifyHandler,
  type SpopEvent,
  SpopServer,
  type SpopServerOptions,
  Status,
  VarScope,
} from '../../src/spop/index.js';
import { helloKv, kvOf, SpopTestClient } from '../helpers/spop-client.js';

const servers: SpopServer[] = [];
const clients: SpopTestClient[] = [];
let stopTrickles = false;

afterEach(async () => {
  stopTrickles = true;
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close({ deadlineMs: 200 })));
  stopTrickles = false;
});

const ALLOW = [{ op: 'set' as const, scope: VarScope.TXN, name: 'allow', value: true }];

async function start(
  options: Partial<SpopServerOptions> = {},
): Promise<{ server: SpopServer; port: number }> {
  const server = new SpopServer({ handler: () => ALLOW, ...options });
  servers.push(server);
  const addr = await server.listen(0, '127.0.0.1');
  return { server, port: addr.port };
}

async function client(port: number): Promise<SpopTestClient> {
  const c = await SpopTestClient.connect(port);
  clients.push(c);
  return c;
}

async function ready(port: number): Promise<SpopTestClient> {
  const c = await client(port);
  expect((await c.hello()).type).toBe(FrameType.AGENT_HELLO);
  return c;
}

function disconnectOf(f: DecodedFrame): { status: unknown; message: unknown } {
  expect(f.type).toBe(FrameType.AGENT_DISCONNECT);
  const kv = kvOf(f);
  return { status: kv['status-code'], message: kv.message };
}

/** A NOTIFY answered with the handler's ACK on `c`. */
async function served(c: SpopTestClient, sid: number): Promise<void> {
  c.sendNotify(sid, 1, 'm');
  const ack = await c.next();
  expect([ack.type, ack.streamId, ack.frameId]).toEqual([FrameType.ACK, sid, 1]);
}

/**
 * Writes `bytes` one at a time every `everyMs` until all are written, the socket closes or
 * the test ends; resolves with how many were written.
 */
async function trickle(c: SpopTestClient, bytes: Buffer, everyMs: number): Promise<number> {
  let sent = 0;
  while (sent < bytes.length && !stopTrickles && !c.socket.destroyed && !c.ended) {
    c.write(bytes.subarray(sent, sent + 1));
    sent++;
    await sleep(everyMs);
  }
  return sent;
}

const HELLO = encodeFrame({ type: FrameType.HAPROXY_HELLO, kv: helloKv() });
const NOTIFY = encodeFrame({
  type: FrameType.NOTIFY,
  streamId: 1,
  frameId: 1,
  messages: [{ name: 'authorize', args: [{ name: 'path', value: '/api/flows/filter' }] }],
});

describe('HELLO deadline', () => {
  it('a connection that sends nothing gets AGENT-DISCONNECT 2 once helloTimeoutMs passed, then is closed', async () => {
    const { port, server } = await start({ helloTimeoutMs: 100, idleTimeoutMs: 60_000 });
    const c = await client(port);
    expect(disconnectOf(await c.next())).toEqual({
      status: Status.TIMEOUT,
      message: 'no HAPROXY-HELLO in time',
    });
    await c.closed;
    await expect.poll(() => server.stats.connections).toBe(0);
  });

  it('a HELLO in time stops the deadline: the connection is served long after it', async () => {
    const { port } = await start({ helloTimeoutMs: 1000 });
    const c = await ready(port);
    await sleep(1200);
    await served(c, 1);
  });
});

describe('frame deadline', () => {
  it('a HELLO trickled a byte every 20 ms is cut when its 150 ms frame deadline passes', async () => {
    // Each byte would reset an idle timeout; the HELLO deadline is far away: only the frame deadline ends this.
    const { port } = await start({ helloTimeoutMs: 60_000, frameTimeoutMs: 150, idleTimeoutMs: 60_000 });
    const c = await client(port);
    const sent = trickle(c, HELLO, 20);
    expect(disconnectOf(await c.next())).toEqual({
      status: Status.TIMEOUT,
      message: 'frame not completed in time',
    });
    expect(await sent).toBeLessThan(HELLO.length);
    await c.closed;
  });

  it('a NOTIFY trickled after the handshake is cut the same way, and gets no ACK', async () => {
    const { port } = await start({ frameTimeoutMs: 150, idleTimeoutMs: 60_000 });
    const c = await ready(port);
    const sent = trickle(c, NOTIFY, 20);
    const f = await c.next();
    expect(disconnectOf(f).status).toBe(Status.TIMEOUT);
    expect(await sent).toBeLessThan(NOTIFY.length);
  });

  it('each frame gets its own deadline: one completed late in its window does not shorten the next', async () => {
    // A starts at t0; at ~t0+1300 A completes and B starts in the same write; at ~t0+2600, past
    // A's deadline but within B's, B completes. Both are answered (each sleep may overshoot 700 ms).
    const { port } = await start({ frameTimeoutMs: 2000, idleTimeoutMs: 60_000 });
    const c = await ready(port);
    const a = encodeFrame({
      type: FrameType.NOTIFY,
      streamId: 1,
      frameId: 1,
      messages: [{ name: 'm', args: [] }],
    });
    const b = encodeFrame({
      type: FrameType.NOTIFY,
      streamId: 3,
      frameId: 1,
      messages: [{ name: 'm', args: [] }],
    });
    c.write(a.subarray(0, 5));
    await sleep(1300);
    c.write(Buffer.concat([a.subarray(5), b.subarray(0, 5)]));
    expect((await c.next()).streamId).toBe(1);
    await sleep(1300);
    c.write(b.subarray(5));
    const ack = await c.next();
    expect([ack.type, ack.streamId]).toEqual([FrameType.ACK, 3]);
  });

  it('ten trickling connections all lose their slots', async () => {
    const { port, server } = await start({ maxConnections: 11, frameTimeoutMs: 100, idleTimeoutMs: 60_000 });
    const cs = await Promise.all(Array.from({ length: 10 }, () => ready(port)));
    const sent = cs.map((c) => trickle(c, NOTIFY, 20));
    for (const c of cs) expect(disconnectOf(await c.next()).status).toBe(Status.TIMEOUT);
    await Promise.all(cs.map((c) => c.closed));
    await Promise.all(sent);
    await expect.poll(() => server.stats.connections).toBe(0);
  });
});

describe('at maxConnections (limitPolicy)', () => {
  it('evict-idle (default): silent connections filling every slot give way to a new one, oldest first', async () => {
    const events: SpopEvent[] = [];
    const { port, server } = await start({
      maxConnections: 20,
      helloTimeoutMs: 60_000,
      onEvent: (e) => events.push(e),
    });
    const silent: SpopTestClient[] = [];
    for (let i = 0; i < 20; i++) silent.push(await client(port));
    await expect.poll(() => server.stats.connections).toBe(20);
    const real = await ready(port);
    await served(real, 1);
    expect(disconnectOf(await silent[0]!.next())).toEqual({
      status: Status.RESOURCE,
      message: 'connection limit reached',
    });
    // A second wave of 30 silent connections: each evicts the oldest silent one, never the
    // connection past its handshake.
    for (let i = 0; i < 30; i++) silent.push(await client(port));
    for (let i = 1; i <= 30; i++) expect(disconnectOf(await silent[i]!.next()).status).toBe(Status.RESOURCE);
    await served(real, 3);
    expect(server.stats.evictions).toBe(31);
    expect(
      events.filter((e) => e.type === 'connection-evicted').every((e) => 'handshaking' in e && e.handshaking),
    ).toBe(true);
    expect(events.some((e) => e.type === 'connection-rejected')).toBe(false);
  });

  it('evict-idle: with every slot past its handshake, the one whose last frame is oldest goes', async () => {
    const { port, server } = await start({ maxConnections: 3 });
    const a = await ready(port);
    const b = await ready(port);
    const c = await ready(port);
    await served(a, 1); // a is now the most recent, b the oldest
    const d = await ready(port);
    expect(disconnectOf(await b.next()).status).toBe(Status.RESOURCE);
    await b.closed;
    await served(a, 3);
    await served(c, 1);
    await served(d, 1);
    expect(server.stats.evictions).toBe(1);
  });

  it('a connection with a NOTIFY in flight is never evicted: when all are busy the new one is refused', async () => {
    const gates: (() => void)[] = [];
    const handler: NotifyHandler = () =>
      new Promise((resolve) => {
        gates.push(() => resolve(ALLOW));
      });
    const { port, server } = await start({ maxConnections: 2, handler, handlerTimeoutMs: 60_000 });
    const a = await ready(port);
    const b = await ready(port);
    a.sendNotify(1, 1, 'm');
    b.sendNotify(1, 1, 'm');
    await expect.poll(() => gates.length).toBe(2);
    const c = await client(port);
    expect(disconnectOf(await c.next())).toEqual({
      status: Status.RESOURCE,
      message: 'too many connections',
    });
    for (const open of gates) open();
    expect((await a.next()).type).toBe(FrameType.ACK);
    expect((await b.next()).type).toBe(FrameType.ACK);
    expect(server.stats.evictions).toBe(0);
    expect(server.stats.refused).toBe(1);
  });

  it('evict-handshaking: evicts a silent connection, never one past its handshake', async () => {
    const { port } = await start({
      maxConnections: 2,
      limitPolicy: 'evict-handshaking',
      helloTimeoutMs: 60_000,
    });
    const a = await ready(port);
    const silent = await client(port);
    const b = await ready(port);
    expect(disconnectOf(await silent.next()).status).toBe(Status.RESOURCE);
    const c = await client(port);
    expect(disconnectOf(await c.next())).toEqual({
      status: Status.RESOURCE,
      message: 'too many connections',
    });
    await served(a, 1);
    await served(b, 1);
  });

  it('refuse: the new connection gets AGENT-DISCONNECT 13, silent ones keep their slots', async () => {
    const { port, server } = await start({
      maxConnections: 2,
      limitPolicy: 'refuse',
      helloTimeoutMs: 60_000,
    });
    const s1 = await client(port);
    const s2 = await client(port);
    await expect.poll(() => server.stats.connections).toBe(2);
    const c = await client(port);
    expect(disconnectOf(await c.next()).status).toBe(Status.RESOURCE);
    expect([s1.buffered, s2.buffered, s1.ended, s2.ended]).toEqual([0, 0, false, false]);
  });

  it('a connection that was sent its DISCONNECT stops counting at once, though it lingers for its FIN', async () => {
    // The first peer never closes its side (half-open): its slot is free for the next one anyway.
    const { port, server } = await start({ maxConnections: 1, limitPolicy: 'refuse', helloTimeoutMs: 50 });
    const first = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const ended = new Promise((resolve) => first.once('end', resolve));
    first.on('data', () => {});
    await ended; // the HELLO deadline's AGENT-DISCONNECT and FIN came; we keep our side open
    expect(server.stats.connections).toBe(1);
    const next = await ready(port);
    await served(next, 1);
    first.destroy();
  });
});

describe('options', () => {
  it('rejects bad deadlines and policies with TypeError', () => {
    const h = () => [];
    expect(() => new SpopServer({ handler: h, helloTimeoutMs: 0 })).toThrow(TypeError);
    expect(() => new SpopServer({ handler: h, frameTimeoutMs: 0 })).toThrow(TypeError);
    expect(() => new SpopServer({ handler: h, limitPolicy: 'lru' as never })).toThrow(TypeError);
  });
});
