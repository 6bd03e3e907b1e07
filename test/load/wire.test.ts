/** The generator's own frame code: NOTIFYs as the shipped SPOE config sends them, ACK reading. */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgentError } from '../../src/errors.js';
import { AckFormatError, AckReader } from '../../src/load/ack.js';
import { authorizationArg, NotifyEncoder, PREFECT_ROUTES } from '../../src/load/notify.js';
import {
  type Action,
  DATA_TYPE_NAMES,
  DataType,
  decodeFrame,
  encodeAck,
  FrameType,
  FrameWriter,
  SpopError,
  VarScope,
} from '../../src/spop/index.js';

const TXN = VarScope.TXN;

function notifyArgs(frame: Buffer) {
  const d = decodeFrame(frame, 4);
  if (d.type !== FrameType.NOTIFY || !('notify' in d)) throw new Error('not a NOTIFY');
  expect(d.notify.messages).toHaveLength(1);
  return { frame: d, args: [...d.notify.messages[0]!] };
}

describe('NotifyEncoder', () => {
  it('sends exactly the args of the shipped haproxy/spoe-agent.conf, in its order', () => {
    const conf = readFileSync(new URL('../../haproxy/spoe-agent.conf', import.meta.url), 'utf8');
    const argsLine = /^\s*args\s+(.+)$/m.exec(conf)![1]!;
    const names = argsLine.split(/\s+/).map((a) => a.split('=')[0]);
    const w = new FrameWriter();
    new NotifyEncoder(0).write(w, 1, 1, 0, authorizationArg('a.b.c'), 0);
    const { args } = notifyArgs(w.take()!);
    expect(args.map((a) => a.name)).toEqual(names);
  });

  it('types the args like HAProxy 2.6 does (capture notify-create-flow-run)', () => {
    const capture = JSON.parse(
      readFileSync(
        new URL('../fixtures/spop/haproxy-2.6/notify-create-flow-run.json', import.meta.url),
        'utf8',
      ),
    ) as { messages: { args: { name: string; type: string }[] }[] };
    const expected = capture.messages[0]!.args.map((a) => [a.name, a.type]);
    const w = new FrameWriter();
    new NotifyEncoder(3).write(w, 7, 1, 0, authorizationArg('x.y.z'), 0);
    const got = notifyArgs(w.take()!).args.map((a) => [a.name, DATA_TYPE_NAMES[a.type]]);
    // The capture predates the prefect_ui arg (a missing header: NULL).
    expect(got).toEqual([...expected, ['prefect_ui', 'null']]);
  });

  it('writes sid/fid, the route, the bearer token and a per-request unique-id', () => {
    const w = new FrameWriter();
    const enc = new NotifyEncoder(2);
    for (let i = 0; i < PREFECT_ROUTES.length + 1; i++)
      enc.write(w, 300 + 2 * i, 1, i, authorizationArg(`t${i}`), 0x1234 + i);
    const out = w.take()!;
    const ids = new Set<unknown>();
    let off = 0;
    for (let i = 0; off < out.length; i++) {
      const len = out.readUInt32BE(off);
      const { frame, args } = notifyArgs(out.subarray(off, off + 4 + len));
      off += 4 + len;
      const route = PREFECT_ROUTES[i % PREFECT_ROUTES.length]!;
      const byName = Object.fromEntries(args.map((a) => [a.name, a.value]));
      expect([frame.streamId, frame.frameId]).toEqual([300 + 2 * i, 1]);
      expect(byName).toMatchObject({
        method: route.method,
        path: route.path,
        query: route.query,
        authorization: `Bearer t${i}`,
        cookie: null,
        src: '10.20.0.2',
        prefect_ui: null,
      });
      expect(String(byName.id)).toMatch(
        new RegExp(`_${(0x1234 + i).toString(16).toUpperCase().padStart(8, '0')}$`),
      );
      ids.add(byName.id);
    }
    expect(ids.size).toBe(PREFECT_ROUTES.length + 1);
  });
});

describe('AckReader', () => {
  const decision: Action[] = [
    { op: 'set', scope: TXN, name: 'allow', value: true },
    { op: 'set', scope: TXN, name: 'status', value: 200 },
    { op: 'set', scope: TXN, name: 'reason', value: 'ok' },
    { op: 'set', scope: TXN, name: 'sub', value: 'load-1' },
    { op: 'set', scope: TXN, name: 'role', value: 'worker' },
    { op: 'set', scope: TXN, name: 'cache', value: 'hit' },
    { op: 'set', scope: TXN, name: 'claim_n', value: { type: DataType.UINT64, value: 2n ** 40n } },
    { op: 'set', scope: TXN, name: 'claim_ip', value: { type: DataType.IPV6, value: '::1' } },
    { op: 'set', scope: TXN, name: 'claim_b', value: new Uint8Array([1, 2, 3]) },
    { op: 'set', scope: TXN, name: 'claim_null', value: null },
    { op: 'unset', scope: TXN, name: 'tag' },
  ];

  it('reads the decision back from what the agent encodes', () => {
    const ack = encodeAck(12_345, 1, decision);
    const r = new AckReader();
    r.read(ack, 4, ack.length);
    expect(r).toMatchObject({
      type: FrameType.ACK,
      streamId: 12_345,
      frameId: 1,
      allow: 1,
      status: 200,
      reason: 'ok',
      cache: 'hit',
      actions: decision.length,
    });
  });

  it('reads a deny, and reports absent variables as such', () => {
    const deny = encodeAck(3, 1, [
      { op: 'set', scope: TXN, name: 'allow', value: false },
      { op: 'set', scope: TXN, name: 'status', value: 401 },
      { op: 'set', scope: TXN, name: 'reason', value: 'bad_signature' },
    ]);
    const r = new AckReader();
    r.read(deny, 4, deny.length);
    expect(r).toMatchObject({ allow: 0, status: 401, reason: 'bad_signature', cache: null });
    const empty = encodeAck(5, 1, []);
    r.read(empty, 4, empty.length);
    expect(r).toMatchObject({ streamId: 5, allow: -1, status: -1, reason: null, actions: 0 });
  });

  it('reads reasons and cache outcomes right whatever came before (property; ok/ph share a slot)', () => {
    const action = fc.record({
      allow: fc.boolean(),
      status: fc.constantFrom(200, 401, 403, 503),
      reason: fc.constantFrom('ok', 'ph', 'expired', 'xxpired', 'forbidden', 'é', ''),
      cache: fc.option(fc.constantFrom('hit', 'hiu', 'miss', 'x'.repeat(40)), { nil: null }),
    });
    fc.assert(
      fc.property(fc.array(action, { minLength: 1, maxLength: 40 }), (decisions) => {
        const r = new AckReader();
        decisions.forEach((d, i) => {
          const actions: Action[] = [
            { op: 'set', scope: TXN, name: 'allow', value: d.allow },
            { op: 'set', scope: TXN, name: 'status', value: d.status },
            { op: 'set', scope: TXN, name: 'reason', value: d.reason },
          ];
          if (d.cache !== null) actions.push({ op: 'set', scope: TXN, name: 'cache', value: d.cache });
          const ack = encodeAck(2 * i + 1, 1, actions);
          r.read(ack, 4, ack.length);
          // 'é' goes out as UTF-8 and reads back as Latin-1 text, as before.
          const reason = Buffer.from(d.reason, 'utf8').toString('latin1');
          expect([r.streamId, r.allow, r.status, r.reason, r.cache]).toEqual([
            2 * i + 1,
            d.allow ? 1 : 0,
            d.status,
            reason,
            d.cache,
          ]);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('throws AckFormatError, never a RangeError or garbage, for every truncation', () => {
    const ack = encodeAck(2_000_000, 1, decision);
    const r = new AckReader();
    for (let end = 4; end < ack.length; end++) {
      let threw: unknown = null;
      try {
        r.read(ack, 4, end);
      } catch (err) {
        threw = err;
      }
      // A cut exactly between two actions is a valid shorter ACK.
      if (threw === null) expect(r.actions).toBeLessThan(decision.length);
      else expect(threw).toBeInstanceOf(AckFormatError);
    }
  });

  it('refuses unknown actions, scopes and data types', () => {
    const r = new AckReader();
    const header = [FrameType.ACK, 0, 0, 0, 1, 1, 1];
    for (const payload of [
      [3, 3, 2, 1, 0x61, 0x11], // action type 3
      [1, 2, 2, 1, 0x61], // SET-VAR with 2 args
      [1, 3, 9, 1, 0x61, 0x11], // scope 9
      [1, 3, 2, 1, 0x61, 0x0a], // data type 10
      [1, 3, 2, 0, 0x11], // empty name
    ]) {
      const buf = Buffer.from([...header, ...payload]);
      expect(() => r.read(buf, 0, buf.length)).toThrow(AckFormatError);
    }
  });

  it('AckFormatError is an AgentError with a stable code, the codec error as its cause', () => {
    const ack = encodeAck(2_000_000, 1, decision);
    let err: unknown = null;
    try {
      new AckReader().read(ack, 4, 11); // 7 bytes: inside the stream-id varint
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AgentError);
    expect(err).toMatchObject({ name: 'AckFormatError', code: 'ERR_LOAD_ACK_FORMAT' });
    expect((err as AckFormatError).cause).toBeInstanceOf(SpopError);
  });
});
