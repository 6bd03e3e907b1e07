/**
 * SpopServer and the connection state machine over real TCP sockets on 127.0.0.1, driven by a
 * client that speaks HAProxy's side (test/helpers/spop-client.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type Action,
  compileActions,
  DataType,
  type DecodedFrame,
  encodeFrame,
  FrameType,
  HandlerTimeoutError,
  NOOP_VAR,
  type Notify,
  type NotifyHandler,
  type SpopEvent,
  SpopServer,
  type SpopServerOptions,
  Status,
  VarScope,
} from '../../src/spop/index.js';
import { kvOf, SpopTestClient } from '../helpers/spop-client.js';
import { wireFixture } from './fixture-files.js';

/** What an ACK with nothing to say carries instead of no action (decoded). */
const NOOP = { op: 'unset', scope: VarScope.TXN, name: NOOP_VAR };

const servers: SpopServer[] = [];
const clients: SpopTestClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close({ deadlineMs: 200 })));
});

async function start(
  options: Partial<SpopServerOptions> = {},
): Promise<{ server: SpopServer; port: number }> {
  const server = new SpopServer({ handler: () => [], ...options });
  servers.push(server);
  const addr = await server.listen(0, '127.0.0.1');
  return { server, port: addr.port };
}

async function client(port: number): Promise<SpopTestClient> {
  const c = await SpopTestClient.connect(port);
  clients.push(c);
  return c;
}

/** A connected client past the handshake. */
async function ready(port: number): Promise<SpopTestClient> {
  const c = await client(port);
  const hello = await c.hello();
  expect(hello.type).toBe(FrameType.AGENT_HELLO);
  return c;
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function expectAck(
  f: DecodedFrame,
  sid: number | bigint,
  fid: number | bigint,
): Extract<DecodedFrame, { actions: unknown }> {
  if (!('actions' in f)) throw new Error(`expected an ACK, got frame type ${f.type}`);
  expect(f.type).toBe(FrameType.ACK);
  expect(f.flags).toBe(1);
  expect([f.streamId, f.frameId]).toEqual([sid, fid]);
  return f;
}

function expectDisconnect(f: DecodedFrame, status: number): void {
  expect(f.type).toBe(FrameType.AGENT_DISCONNECT);
  expect(kvOf(f)['status-code']).toBe(status);
  expect(typeof kvOf(f).message).toBe('string');
}

const allow = (value: boolean): Action => ({ op: 'set', scope: VarScope.TXN, name: 'allow', value });
const tag = (value: string): Action => ({ op: 'set', scope: VarScope.TXN, name: 'tag', value });

/** Echoes the `n` arg of the first message as var `tag`. */
const echoHandler: NotifyHandler = (notify: Notify) => [tag(notify.messages[0]?.getString('n') ?? 'none')];

function tagOf(f: DecodedFrame): unknown {
  if (!('actions' in f)) return undefined;
  const a = f.actions.find((x) => x.name === 'tag');
  return a?.op === 'set' ? a.value.value : undefined;
}

describe('handshake', () => {
  it('answers a HAProxy 2.6 HELLO: version 2.0, min max-frame-size, pipelining echoed, no async', async () => {
    const { port } = await start();
    const c = await client(port);
    const reply = await c.hello({ maxFrameSize: 16380, capabilities: 'pipelining,async' });
    expect(reply.type).toBe(FrameType.AGENT_HELLO);
    expect([reply.flags, reply.streamId, reply.frameId]).toEqual([1, 0, 0]);
    if (!('kv' in reply)) throw new Error('no kv');
    expect(reply.kv).toEqual([
      { name: 'version', type: DataType.STRING, value: '2.0' },
      { name: 'max-frame-size', type: DataType.UINT32, value: 16380 },
      { name: 'capabilities', type: DataType.STRING, value: 'pipelining' },
    ]);
  });

  it('negotiates the smaller max-frame-size, ours or HAProxy’s', async () => {
    const { port } = await start({ maxFrameSize: 4096 });
    expect(kvOf(await (await client(port)).hello({ maxFrameSize: 16380 }))['max-frame-size']).toBe(4096);
    expect(kvOf(await (await client(port)).hello({ maxFrameSize: 1000 }))['max-frame-size']).toBe(1000);
    expect(kvOf(await (await client(port)).hello({ maxFrameSize: 256 }))['max-frame-size']).toBe(256);
  });

  it('always sends a capabilities key, empty without pipelining', async () => {
    const { port } = await start();
    expect(kvOf(await (await client(port)).hello({ capabilities: '' })).capabilities).toBe('');
    expect(kvOf(await (await client(port)).hello({ capabilities: null })).capabilities).toBe('');
    expect(kvOf(await (await client(port)).hello({ capabilities: 'async' })).capabilities).toBe('');
    expect(kvOf(await (await client(port)).hello({ capabilities: 'pipelining' })).capabilities).toBe(
      'pipelining',
    );
  });

  it('health check: replies AGENT-HELLO then closes without DISCONNECT', async () => {
    const { port, server } = await start();
    const c = await client(port);
    c.write(wireFixture('hello-healthcheck'));
    const reply = await c.next();
    expect(reply.type).toBe(FrameType.AGENT_HELLO);
    expect(kvOf(reply).capabilities).toBe('');
    await c.closed;
    expect(c.ended).toBe(true);
    expect(c.buffered).toBe(0);
    expect(server.stats.disconnectsByStatus).toEqual({});
  });

  it.each([
    ['version 1.0', Status.BAD_VERSION, { versions: '1.0' }],
    ['version 3.0', Status.BAD_VERSION, { versions: '3.0' }],
    ['no supported-versions', Status.NO_VERSION, { versions: null }],
    ['no max-frame-size', Status.NO_FRAME_SIZE, { maxFrameSize: null }],
    ['max-frame-size 255', Status.BAD_FRAME_SIZE, { maxFrameSize: 255 }],
  ])('%s → AGENT-DISCONNECT %i and close', async (_label, status, hello) => {
    const { port, server } = await start();
    const c = await client(port);
    expectDisconnect(await c.hello(hello), status);
    await c.closed;
    expect(server.stats.disconnectsByStatus[status]).toBe(1);
  });

  it('NOTIFY before HELLO → AGENT-DISCONNECT 4', async () => {
    let called = false;
    const { port } = await start({
      handler: () => {
        called = true;
        return [];
      },
    });
    const c = await client(port);
    c.sendNotify(1, 1, 'authorize');
    expectDisconnect(await c.next(), Status.INVALID);
    await c.closed;
    expect(called).toBe(false);
  });

  it('a second HELLO → AGENT-DISCONNECT 4', async () => {
    const { port } = await start();
    const c = await ready(port);
    c.sendHello();
    expectDisconnect(await c.next(), Status.INVALID);
  });

  it('HELLO with a non-zero stream-id → AGENT-DISCONNECT 4', async () => {
    const { port } = await start();
    const c = await client(port);
    c.send({
      type: FrameType.HAPROXY_HELLO,
      streamId: 1,
      kv: [{ name: 'supported-versions', value: '2.0' }],
    });
    expectDisconnect(await c.next(), Status.INVALID);
  });

  it('the AGENT-HELLO arrives in a single TCP write (haproxy#3478)', async () => {
    const { port } = await start();
    const c = await client(port);
    const chunks: Buffer[] = [];
    c.socket.prependListener('data', (d: Buffer) => chunks.push(d));
    await c.hello();
    expect(chunks).toHaveLength(1);
    expect(chunks[0]!.readUInt32BE(0)).toBe(chunks[0]!.length - 4);
  });
});

describe('NOTIFY → ACK', () => {
  it('answers with the handler’s actions and the NOTIFY’s ids', async () => {
    const seen: { sid: unknown; fid: unknown; conn: number }[] = [];
    const { port, server } = await start({
      handler: (n, ctx) => {
        seen.push({ sid: n.streamId, fid: n.frameId, conn: ctx.connectionId });
        return [allow(true), tag(n.message('authorize')?.getString('path') ?? '')];
      },
    });
    const c = await ready(port);
    c.write(wireFixture('notify-create-flow-run'));
    const ack = expectAck(await c.next(), 0, 1);
    expect(ack.actions.map((a) => [a.op, a.scope, a.name, a.op === 'set' ? a.value.value : null])).toEqual([
      ['set', VarScope.TXN, 'allow', true],
      ['set', VarScope.TXN, 'tag', '/api/deployments/6f1c/create_flow_run'],
    ]);
    expect(seen).toEqual([{ sid: 0, fid: 1, conn: 1 }]);
    expect(server.stats).toMatchObject({ connections: 1, notifies: 1, acks: 1, handlerErrors: 0 });
  });

  it('answers with a compiled ActionList, returned as is or through a promise', async () => {
    const list = compileActions([allow(true), tag('compiled')]);
    const { port } = await start({
      handler: (n) => (n.message('authorize')?.getString('n') === 'async' ? Promise.resolve(list) : list),
    });
    const c = await ready(port);
    const args = (n: string) => [{ name: 'authorize', args: [{ name: 'n', value: n }] }];
    c.send({ type: FrameType.NOTIFY, streamId: 1, frameId: 1, messages: args('sync') });
    c.send({ type: FrameType.NOTIFY, streamId: 2, frameId: 1, messages: args('async') });
    for (const sid of [1, 2]) {
      const ack = expectAck(await c.next(), sid, 1);
      expect(ack.actions.map((a) => (a.op === 'set' ? [a.name, a.value.value] : null))).toEqual([
        ['allow', true],
        ['tag', 'compiled'],
      ]);
    }
  });

  it('NOTIFY with zero messages gets a no-op ACK (never an empty one) without calling the handler', async () => {
    let called = 0;
    const { port } = await start({
      handler: () => {
        called++;
        return [allow(true)];
      },
    });
    const c = await ready(port);
    c.send({ type: FrameType.NOTIFY, streamId: 7, frameId: 1, messages: [] });
    expect(expectAck(await c.next(), 7, 1).actions).toEqual([NOOP]);
    expect(called).toBe(0);
  });

  it('pipelined NOTIFYs are answered out of order, each with its own ids (3.1+ style odd sids)', async () => {
    const pending = new Map<string, ReturnType<typeof deferred<Action[]>>>();
    const { port } = await start({
      handler: (n) => {
        const d = deferred<Action[]>();
        pending.set(n.messages[0]!.getString('n')!, d);
        return d.promise;
      },
    });
    const c = await ready(port);
    // all three in one TCP write
    c.write(
      Buffer.concat(
        [1, 3, 5].map((sid) =>
          encodeFrame({
            type: FrameType.NOTIFY,
            streamId: sid,
            frameId: 1,
            messages: [{ name: 'authorize', args: [{ name: 'n', value: `s${sid}` }] }],
          }),
        ),
      ),
    );
    await expect.poll(() => pending.size).toBe(3);
    pending.get('s5')!.resolve([tag('five')]);
    pending.get('s1')!.resolve([tag('one')]);
    pending.get('s3')!.resolve([tag('three')]);
    const acks = await c.take(3);
    expect(acks.map((a) => [a.streamId, a.frameId, tagOf(a)])).toEqual([
      [5, 1, 'five'],
      [1, 1, 'one'],
      [3, 1, 'three'],
    ]);
  });

  it('pipelined NOTIFYs of HAProxy 2.6 style (uniq-id sids, growing fids) and a 3-byte sid', async () => {
    const { port } = await start({ handler: echoHandler });
    const c = await ready(port);
    c.sendNotify(249011, 1, 'authorize', [{ name: 'n', value: 'a' }]);
    c.sendNotify(249011, 2, 'authorize', [{ name: 'n', value: 'b' }]);
    c.sendNotify(2n ** 40n, 7, 'authorize', [{ name: 'n', value: 'c' }]);
    const acks = await c.take(3);
    expect(acks.map((a) => [a.streamId, a.frameId, tagOf(a)])).toEqual([
      [249011, 1, 'a'],
      [249011, 2, 'b'],
      [2 ** 40, 7, 'c'],
    ]);
  });

  it('a NOTIFY split byte by byte is answered once', async () => {
    const { port } = await start({ handler: () => [allow(true)] });
    const c = await ready(port);
    const wire = wireFixture('notify-typed-args');
    for (const b of wire) {
      c.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    expectAck(await c.next(), 0, 1);
    c.sendNotify(9, 1, 'x');
    expectAck(await c.next(), 9, 1); // nothing else was queued in between
  });

  it('many NOTIFYs in one write each get exactly one ACK', async () => {
    const { port, server } = await start({
      handler: (n) =>
        Number(n.streamId) % 2 === 0 ? [tag(String(n.streamId))] : Promise.resolve([tag(String(n.streamId))]),
    });
    const c = await ready(port);
    const N = 300;
    c.write(
      Buffer.concat(
        Array.from({ length: N }, (_, i) =>
          encodeFrame({
            type: FrameType.NOTIFY,
            streamId: i,
            frameId: 1,
            messages: [{ name: 'm', args: [] }],
          }),
        ),
      ),
    );
    const acks = await c.take(N);
    expect(acks.map((a) => tagOf(a)).sort()).toEqual(Array.from({ length: N }, (_, i) => String(i)).sort());
    expect(acks.every((a) => String(a.streamId) === tagOf(a))).toBe(true);
    expect(server.stats.acks).toBe(N);
  });

  it('ACKs decided synchronously leave in one write before the read callback returns', async () => {
    const { port } = await start({ handler: echoHandler });
    const c = await ready(port);
    // Server-side sockets are the ones whose local port is the server's.
    type Fn = (this: Socket, ...args: unknown[]) => boolean;
    const proto = Socket.prototype as unknown as { emit: Fn; write: Fn };
    const emit = proto.emit;
    const write = proto.write;
    let inRead = false;
    const writes: { inRead: boolean; bytes: number }[] = [];
    vi.spyOn(proto, 'emit').mockImplementation(function (this: Socket, ...args: unknown[]) {
      if (args[0] !== 'data' || this.localPort !== port) return emit.apply(this, args);
      inRead = true;
      try {
        return emit.apply(this, args);
      } finally {
        inRead = false;
      }
    });
    vi.spyOn(proto, 'write').mockImplementation(function (this: Socket, ...args: unknown[]) {
      if (this.localPort === port) writes.push({ inRead, bytes: (args[0] as Buffer).length });
      return write.apply(this, args);
    });
    try {
      const frames = Array.from({ length: 20 }, (_, i) =>
        encodeFrame({
          type: FrameType.NOTIFY,
          streamId: i,
          frameId: 1,
          messages: [{ name: 'm', args: [{ name: 'n', value: `v${i}` }] }],
        }),
      );
      c.write(Buffer.concat(frames));
      const acks = await c.take(20);
      expect(acks.map(tagOf)).toEqual(Array.from({ length: 20 }, (_, i) => `v${i}`));
    } finally {
      vi.restoreAllMocks();
    }
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.every((w) => w.inRead)).toBe(true);
    // One write per read: at most as many writes as the reads the 20 frames arrived in.
    expect(writes.length).toBeLessThanOrEqual(20);
  });

  it('unknown frame types after the handshake are skipped', async () => {
    const { port } = await start({ handler: echoHandler });
    const c = await ready(port);
    c.send({ type: 50, streamId: 1, frameId: 1, payload: Buffer.from('whatever') });
    c.sendNotify(3, 1, 'm', [{ name: 'n', value: 'after' }]);
    const ack = expectAck(await c.next(), 3, 1);
    expect(tagOf(ack)).toBe('after');
  });

  it('setHandler swaps the handler; a NOTIFY already dispatched finishes with the old one', async () => {
    const gate = deferred<Action[]>();
    const { port, server } = await start({ handler: () => gate.promise });
    const c = await ready(port);
    c.sendNotify(1, 1, 'm');
    await expect.poll(() => server.stats.notifies).toBe(1);
    server.setHandler(() => [tag('new')]);
    c.sendNotify(3, 1, 'm');
    expect(tagOf(expectAck(await c.next(), 3, 1))).toBe('new');
    gate.resolve([tag('old')]);
    expect(tagOf(expectAck(await c.next(), 1, 1))).toBe('old');
  });
});

describe('handler failures: exactly one fallback ACK', () => {
  const fallback = (err: unknown): Action[] => [
    allow(false),
    tag(err instanceof HandlerTimeoutError ? 'timeout' : err instanceof Error ? err.message : 'other'),
  ];

  it.each([
    [
      'throws',
      () => {
        throw new Error('boom');
      },
      'boom',
      'throw',
    ],
    ['rejects', () => Promise.reject(new Error('nope')), 'nope', 'reject'],
    [
      'rejects without a reason',
      () => Promise.reject(undefined),
      'handler rejected without a reason',
      'reject',
    ],
    [
      'returns a thenable whose then throws',
      () =>
        ({
          // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
          then() {
            throw new Error('bad then');
          },
        }) as never,
      'bad then',
      'reject',
    ],
    [
      'returns a non-array',
      () => 42 as never,
      'handler returned neither an array nor a promise',
      'invalid-result',
    ],
    [
      'resolves a non-array',
      () => Promise.resolve('x' as never),
      'handler promise resolved to a non-array',
      'invalid-result',
    ],
    [
      'returns an unencodable value',
      () => [{ op: 'set', scope: VarScope.TXN, name: 'x', value: 0.5 }] as Action[],
      'number value must be a safe integer, got 0.5',
      'invalid-result',
    ],
    [
      'returns a bad var name',
      () => [{ op: 'set', scope: VarScope.TXN, name: 'a b', value: 1 }] as Action[],
      'invalid variable name "a b": expected [A-Za-z0-9._]+',
      'invalid-result',
    ],
  ] as const)('handler %s', async (_label, handler, message, reason) => {
    const events: SpopEvent[] = [];
    const warnings: unknown[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line)) });
    const { port, server } = await start({
      handler,
      fallbackActions: fallback,
      logger,
      onEvent: (e) => events.push(e),
    });
    const c = await ready(port);
    c.sendNotify(11, 2, 'm');
    const ack = expectAck(await c.next(), 11, 2);
    expect(tagOf(ack)).toBe(message);
    expect(server.stats.handlerErrors).toBe(1);
    expect(server.stats.handlerErrorsByReason).toEqual({ [reason]: 1 });
    expect(
      events.filter((e) => e.type === 'handler-error').map((e) => e.type === 'handler-error' && e.reason),
    ).toEqual([reason]);
    expect(warnings.filter((w) => (w as { level: number }).level === 40)).toHaveLength(1);
    // the connection keeps working
    server.setHandler(() => [tag('fine')]);
    c.sendNotify(13, 1, 'm');
    expect(tagOf(expectAck(await c.next(), 13, 1))).toBe('fine');
  });

  it('handler slower than handlerTimeoutMs → fallback ACK; its late result is dropped', async () => {
    const late = deferred<Action[]>();
    let calls = 0;
    const { port, server } = await start({
      handler: () => (calls++ === 0 ? late.promise : new Promise<Action[]>(() => {})),
      handlerTimeoutMs: 50,
      fallbackActions: fallback,
    });
    const c = await ready(port);
    c.sendNotify(1, 1, 'm');
    expect(tagOf(expectAck(await c.next(), 1, 1))).toBe('timeout');
    late.resolve([tag('late')]);
    c.sendNotify(3, 1, 'm'); // times out too, proving nothing else was sent for sid 1
    expect(tagOf(expectAck(await c.next(), 3, 1))).toBe('timeout');
    expect(server.stats).toMatchObject({
      notifies: 2,
      acks: 2,
      handlerErrors: 2,
      handlerErrorsByReason: { timeout: 2 },
    });
  });

  it('timeouts of many in-flight NOTIFYs fire for each, in order', async () => {
    const { port } = await start({ handler: () => new Promise<Action[]>(() => {}), handlerTimeoutMs: 30 });
    const c = await ready(port);
    for (let sid = 1; sid <= 9; sid += 2) c.sendNotify(sid, 1, 'm');
    const acks = await c.take(5);
    expect(acks.map((a) => a.streamId)).toEqual([1, 3, 5, 7, 9]);
    // The default fallback is [], sent as the no-op.
    for (const a of acks) expect('actions' in a && a.actions).toEqual([NOOP]);
  });

  it('fallbackActions that throw give a no-op ACK', async () => {
    const { port } = await start({
      handler: () => {
        throw new Error('x');
      },
      fallbackActions: () => {
        throw new Error('y');
      },
    });
    const c = await ready(port);
    c.sendNotify(1, 1, 'm');
    expect(expectAck(await c.next(), 1, 1).actions).toEqual([NOOP]);
  });

  // HAProxy 3.1.0 to early 3.1.x wait for `timeout processing` on an ACK without actions.
  it.each([
    ['an empty array', () => []],
    ['an empty ActionList', () => compileActions([])],
    ['an empty array, asynchronously', () => Promise.resolve([])],
  ])('a handler answering with %s gets a no-op ACK, never an empty one', async (_what, handler) => {
    const { port } = await start({ handler: handler as NotifyHandler });
    const c = await ready(port);
    c.sendNotify(1, 1, 'm');
    expect(expectAck(await c.next(), 1, 1).actions).toEqual([NOOP]);
  });

  it('an ACK above the negotiated max-frame-size is replaced by the fallback', async () => {
    const { port, server } = await start({
      handler: () => [tag('x'.repeat(400))],
      fallbackActions: () => [allow(false)],
    });
    const c = await client(port);
    expect(kvOf(await c.hello({ maxFrameSize: 256 }))['max-frame-size']).toBe(256);
    c.sendNotify(1, 1, 'm');
    const ack = expectAck(await c.next(), 1, 1);
    expect(ack.actions.map((a) => a.name)).toEqual(['allow']);
    expect(server.stats.handlerErrors).toBe(1);
  });
});

describe('malformed input → AGENT-DISCONNECT with the matching status, then close', () => {
  it('frame above the negotiated max-frame-size → 3', async () => {
    const { port, server } = await start();
    const c = await client(port);
    await c.hello({ maxFrameSize: 1000 });
    const big = Buffer.alloc(4 + 1001);
    big.writeUInt32BE(1001, 0);
    c.write(big.subarray(0, 4)); // the length alone is enough to refuse it
    expectDisconnect(await c.next(), Status.TOO_BIG);
    await c.closed;
    expect(server.stats.disconnectsByStatus).toEqual({ [Status.TOO_BIG]: 1 });
  });

  it('declared length below 7 → 4', async () => {
    const { port } = await start();
    const c = await ready(port);
    c.write(Buffer.from('0000000003000000', 'hex'));
    expectDisconnect(await c.next(), Status.INVALID);
    await c.closed;
  });

  it('TLS ClientHello on the port → 3 at once', async () => {
    const { port } = await start();
    const c = await client(port);
    c.write(Buffer.from('160301020001' + '0001fc0303', 'hex'));
    expectDisconnect(await c.next(), Status.TOO_BIG);
    await c.closed;
  });

  it('NOTIFY without FIN → 10', async () => {
    const { port } = await start();
    const c = await ready(port);
    c.send({
      type: FrameType.NOTIFY,
      flags: 0,
      streamId: 1,
      frameId: 1,
      messages: [{ name: 'm', args: [] }],
    });
    expectDisconnect(await c.next(), Status.FRAGMENTATION);
    await c.closed;
  });

  it('type 0 (UNSET, 2.x fragment continuation) → 10', async () => {
    const { port } = await start();
    const c = await ready(port);
    c.send({ type: FrameType.UNSET, streamId: 1, frameId: 1, payload: Buffer.from([1, 2, 3]) });
    expectDisconnect(await c.next(), Status.FRAGMENTATION);
  });

  it('garbage NOTIFY payload → 4', async () => {
    const { port } = await start();
    const c = await ready(port);
    c.send({ type: FrameType.NOTIFY, streamId: 1, frameId: 1, payload: Buffer.from('0561', 'hex') });
    expectDisconnect(await c.next(), Status.INVALID);
  });

  it('agent frame types from HAProxy → 4', async () => {
    const { port } = await start();
    const c = await ready(port);
    c.send({ type: FrameType.ACK, streamId: 1, frameId: 1 });
    expectDisconnect(await c.next(), Status.INVALID);
  });

  it('in-flight NOTIFYs still get their ACK before the DISCONNECT', async () => {
    const gate = deferred<Action[]>();
    const { port } = await start({ handler: () => gate.promise });
    const c = await ready(port);
    c.sendNotify(1, 1, 'm');
    await new Promise((r) => setTimeout(r, 20));
    c.send({ type: FrameType.UNSET, streamId: 1, frameId: 1 });
    c.sendNotify(3, 1, 'm'); // after the error: ignored
    await new Promise((r) => setTimeout(r, 20));
    gate.resolve([allow(true)]);
    expectAck(await c.next(), 1, 1);
    expectDisconnect(await c.next(), Status.FRAGMENTATION);
    await c.closed;
    expect(c.buffered).toBe(0);
  });

  it('the server stays healthy after any of these', async () => {
    const { port, server } = await start({ handler: () => [allow(true)] });
    for (const bytes of ['16030100', '00000001ff', '00000008000000000000000000', 'ffffffff']) {
      const c = await client(port);
      c.write(Buffer.from(bytes, 'hex'));
      await c.closed;
    }
    const c = await ready(port);
    c.sendNotify(1, 1, 'm');
    expectAck(await c.next(), 1, 1);
    await expect.poll(() => server.stats.connections).toBe(1);
  });
  it('property: arbitrary bytes after the handshake never cause an internal error', async () => {
    const logs: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => logs.push(JSON.parse(l)) });
    const { port, server } = await start({ handler: () => [allow(true)], logger, idleTimeoutMs: 2000 });
    const frame = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 200 }).map((b) => {
        const h = Buffer.alloc(4);
        h.writeUInt32BE(b.length, 0);
        return Buffer.concat([h, b]);
      }),
      fc.constantFrom(...['notify-typed-args', 'notify-create-flow-run', 'hello'].map(wireFixture)),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { maxLength: 6 }), async (chunks) => {
        const c = await ready(port);
        for (const b of chunks) c.write(b);
        c.end();
        await c.closed;
      }),
      { numRuns: 40, interruptAfterTimeLimit: 8000 },
    );
    await expect.poll(() => server.stats.connections).toBe(0);
    expect(logs.filter((l) => l.level >= 50)).toEqual([]);
    const c = await ready(port);
    c.sendNotify(1, 1, 'm');
    expectAck(await c.next(), 1, 1);
  });
});

describe('closing', () => {
  it('HAPROXY-DISCONNECT → AGENT-DISCONNECT 0, then close', async () => {
    const events: SpopEvent[] = [];
    const { port } = await start({ onEvent: (e) => events.push(e) });
    const c = await ready(port);
    c.write(wireFixture('disconnect-idle-timeout'));
    expectDisconnect(await c.next(), Status.NORMAL);
    await c.closed;
    expect(events.filter((e) => e.type === 'disconnect')).toEqual([
      { type: 'disconnect', connectionId: 1, direction: 'received', status: 2 },
      { type: 'disconnect', connectionId: 1, direction: 'sent', status: 0 },
    ]);
  });

  it('idle timeout → AGENT-DISCONNECT 2', async () => {
    const { port } = await start({ idleTimeoutMs: 100 });
    const c = await ready(port);
    expectDisconnect(await c.next(2000), Status.TIMEOUT);
    await c.closed;
  });

  it('no idle timeout while a NOTIFY is in flight', async () => {
    const gate = deferred<Action[]>();
    const { port } = await start({ idleTimeoutMs: 60, handlerTimeoutMs: 5000, handler: () => gate.promise });
    const c = await ready(port);
    c.sendNotify(1, 1, 'm');
    await new Promise((r) => setTimeout(r, 250));
    expect(c.buffered).toBe(0);
    gate.resolve([]);
    expectAck(await c.next(), 1, 1);
    expectDisconnect(await c.next(2000), Status.TIMEOUT);
  });

  it('EOF from HAProxy is a normal end; in-flight results are dropped quietly', async () => {
    const gate = deferred<Action[]>();
    const errors: unknown[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => errors.push(JSON.parse(l)) });
    const { port, server } = await start({ handler: () => gate.promise, logger });
    const c = await ready(port);
    c.sendNotify(1, 1, 'm');
    await expect.poll(() => server.stats.notifies).toBe(1);
    c.end();
    await c.closed;
    gate.resolve([allow(true)]);
    await expect.poll(() => server.stats.connections).toBe(0);
    expect(server.stats.acks).toBe(0);
    expect(errors).toEqual([]);
  });

  it('ECONNRESET from the client leaves the server healthy', async () => {
    const logs: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'debug' }, { write: (l: string) => logs.push(JSON.parse(l)) });
    const { port, server } = await start({ handler: () => [allow(true)], logger });
    const c = await ready(port);
    c.sendNotify(1, 1, 'm');
    expectAck(await c.next(), 1, 1);
    c.reset();
    await expect.poll(() => server.stats.connections).toBe(0);
    expect(logs.filter((l) => l.level >= 40)).toEqual([]);
    const c2 = await ready(port);
    c2.sendNotify(3, 1, 'm');
    expectAck(await c2.next(), 3, 1);
  });

  it('graceful close: in-flight NOTIFYs get their ACKs, then AGENT-DISCONNECT 0, then end', async () => {
    const gates: ReturnType<typeof deferred<Action[]>>[] = [];
    const { port, server } = await start({
      handler: () => {
        const d = deferred<Action[]>();
        gates.push(d);
        return d.promise;
      },
      handlerTimeoutMs: 10_000,
    });
    const a = await ready(port);
    const b = await ready(port);
    const idle = await ready(port);
    a.sendNotify(1, 1, 'm');
    a.sendNotify(3, 1, 'm');
    b.sendNotify(5, 1, 'm');
    await expect.poll(() => gates.length).toBe(3);
    let closed = false;
    const closing = server.close().then(() => {
      closed = true;
    });
    expect(server.close()).toBe(server.close()); // idempotent
    expectDisconnect(await idle.next(), Status.NORMAL);
    // new connections are refused while closing
    await expect(SpopTestClient.connect(port)).rejects.toThrow();
    gates[1]!.resolve([tag('a3')]);
    gates[2]!.resolve([tag('b5')]);
    expect(tagOf(expectAck(await a.next(), 3, 1))).toBe('a3');
    expect(tagOf(expectAck(await b.next(), 5, 1))).toBe('b5');
    expectDisconnect(await b.next(), Status.NORMAL);
    expect(closed).toBe(false);
    gates[0]!.resolve([tag('a1')]);
    expect(tagOf(expectAck(await a.next(), 1, 1))).toBe('a1');
    expectDisconnect(await a.next(), Status.NORMAL);
    await Promise.all([a.closed, b.closed, idle.closed]);
    await closing;
    expect(closed).toBe(true);
    expect(server.stats.connections).toBe(0);
    expect(server.stats.disconnectsByStatus[Status.NORMAL]).toBe(3);
  });

  it('close deadline destroys what is left', async () => {
    const { port, server } = await start({
      handler: () => new Promise<Action[]>(() => {}),
      handlerTimeoutMs: 60_000,
    });
    const c = await ready(port);
    c.sendNotify(1, 1, 'm');
    await expect.poll(() => server.stats.notifies).toBe(1);
    await server.close({ deadlineMs: 100 });
    await c.closed;
    expect(c.buffered).toBe(0); // no ACK, no DISCONNECT: destroyed
    expect(server.stats.connections).toBe(0);
  });

  it('close before listen or twice resolves', async () => {
    const server = new SpopServer({ handler: () => [] });
    await server.close();
    await server.close();
  });
});

describe('limits and options', () => {
  it('maxConnections, limitPolicy refuse: extra connections get AGENT-DISCONNECT 13 and are closed', async () => {
    const warnings: { msg: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => warnings.push(JSON.parse(l)) });
    const { port, server } = await start({ maxConnections: 2, limitPolicy: 'refuse', logger });
    const a = await ready(port);
    const b = await ready(port);
    const c = await client(port);
    expectDisconnect(await c.next(), Status.RESOURCE);
    await c.closed;
    expect(warnings.map((w) => w.msg)).toEqual(['too many connections; closing']);
    expect(server.stats.connections).toBe(2);
    a.destroy();
    await expect.poll(() => server.stats.connections).toBe(1);
    const d = await ready(port);
    d.sendNotify(1, 1, 'm');
    expectAck(await d.next(), 1, 1);
    void b;
  });

  it('rejects bad options with TypeError', () => {
    const h = () => [];
    expect(() => new SpopServer({ handler: h, maxFrameSize: 255 })).toThrow(TypeError);
    expect(() => new SpopServer({ handler: h, maxConnections: 0 })).toThrow(TypeError);
    expect(() => new SpopServer({ handler: h, handlerTimeoutMs: 0 })).toThrow(TypeError);
    expect(() => new SpopServer({ handler: h, idleTimeoutMs: -1 })).toThrow(TypeError);
    expect(() => new SpopServer({ handler: 'x' as never })).toThrow(TypeError);
  });

  it('listen rejects when the port is taken', async () => {
    const { port } = await start();
    const other = new SpopServer({ handler: () => [] });
    servers.push(other);
    await expect(other.listen(port, '127.0.0.1')).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  it('listens on a unix socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spop-'));
    try {
      const server = new SpopServer({ handler: () => [allow(true)] });
      servers.push(server);
      const path = join(dir, 'agent.sock');
      expect(await server.listen(path)).toBe(path);
      const c = await SpopTestClient.connectPath(path);
      clients.push(c);
      expect((await c.hello()).type).toBe(FrameType.AGENT_HELLO);
      c.sendNotify(1, 1, 'm');
      expectAck(await c.next(), 1, 1);
      await server.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('onEvent reports connections, hellos and ACKs', async () => {
    const events: SpopEvent[] = [];
    const { port, server } = await start({ handler: () => [allow(true)], onEvent: (e) => events.push(e) });
    const c = await ready(port);
    c.sendNotify(1, 1, 'm');
    expectAck(await c.next(), 1, 1);
    c.destroy();
    await expect.poll(() => server.stats.connections).toBe(0);
    expect(events.map((e) => e.type)).toEqual(['connection-open', 'hello', 'ack', 'connection-close']);
    const ack = events[2]!;
    expect(ack.type === 'ack' && ack.fallback).toBe(false);
  });
});
