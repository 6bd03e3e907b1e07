import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Action,
  DataType,
  type DecodedAction,
  decodeFrame,
  encodeAck,
  encodeAgentDisconnect,
  encodeAgentHello,
  encodeFrame,
  FrameType,
  FrameWriter,
  VarScope,
  type VarValue,
} from '../../src/spop/index.js';
import { parseIpv6 } from '../../src/spop/ip.js';
import { helloKv } from '../helpers/spop-client.js';

/** Hex of a reference example: hex byte pairs and "quoted" ASCII runs. */
function ref(spec: string): string {
  return spec
    .split(/("[^"]*")/)
    .map((part) =>
      part.startsWith('"') ? Buffer.from(part.slice(1, -1)).toString('hex') : part.replace(/\s+/g, ''),
    )
    .join('');
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const set = (scope: number, name: string, value: VarValue): Action => ({
  op: 'set',
  scope: scope as VarScope,
  name,
  value,
});

describe('reference byte examples (§1.14)', () => {
  it('1. HAPROXY-HELLO, 3.1+, 127 bytes', () => {
    const wire = encodeFrame({
      type: FrameType.HAPROXY_HELLO,
      kv: helloKv({ capabilities: 'pipelining', engineId: '7f9e7c3a-1b2c-4d5e-8f90-a1b2c3d4e5f6' }),
    });
    expect(wire.length).toBe(127);
    expect(hex(wire)).toBe(
      ref(`00 00 00 7b 01 00 00 00 01 00 00 12 "supported-versions" 08 03 "2.0" 0e "max-frame-size" 03 fc f0 06
        0c "capabilities" 08 0a "pipelining" 09 "engine-id" 08 24 "7f9e7c3a-1b2c-4d5e-8f90-a1b2c3d4e5f6"`),
    );
  });

  it("2. health-check HELLO, 82 bytes = HAProxy's spop_req constant", () => {
    const wire = encodeFrame({
      type: FrameType.HAPROXY_HELLO,
      kv: helloKv({ capabilities: '', healthcheck: true }),
    });
    expect(wire.length).toBe(82);
    expect(hex(wire)).toBe(
      ref(`00 00 00 4e 01 00 00 00 01 00 00 12 "supported-versions" 08 03 "2.0" 0e "max-frame-size"
        03 fc f0 06 0c "capabilities" 08 00 0b "healthcheck" 11`),
    );
  });

  it('3. AGENT-HELLO, 68 bytes', () => {
    const wire = encodeAgentHello(16380, 'pipelining');
    expect(wire.length).toBe(68);
    expect(hex(wire)).toBe(
      ref(`00 00 00 40 65 00 00 00 01 00 00 07 "version" 08 03 "2.0" 0e "max-frame-size" 03 fc f0 06
        0c "capabilities" 08 0a "pipelining"`),
    );
  });

  it('4. NOTIFY sid=1 fid=1 check-auth, 44 bytes', () => {
    const wire = encodeFrame({
      type: FrameType.NOTIFY,
      streamId: 1,
      frameId: 1,
      messages: [
        {
          name: 'check-auth',
          args: [
            { name: 'ip', value: { type: DataType.IPV4, value: '192.168.1.10' } },
            { name: 'path', value: '/login' },
          ],
        },
      ],
    });
    expect(wire.length).toBe(44);
    expect(hex(wire)).toBe(
      ref(
        `00 00 00 28 03 00 00 00 01 01 01 0a "check-auth" 02 02 "ip" 06 c0 a8 01 0a 04 "path" 08 06 "/login"`,
      ),
    );
  });

  it('5. ACK allow=true, score=300 (UINT32), 33 bytes', () => {
    const wire = encodeAck(1, 1, [
      set(VarScope.TXN, 'allow', true),
      set(VarScope.TXN, 'score', { type: DataType.UINT32, value: 300 }),
    ]);
    expect(wire.length).toBe(33);
    expect(hex(wire)).toBe(
      ref(`00 00 00 1d 67 00 00 00 01 01 01 01 03 02 05 "allow" 11 01 03 02 05 "score" 03 fc 03`),
    );
  });

  it('6. empty ACK', () => {
    expect(hex(encodeAck(1, 1, []))).toBe(ref('00 00 00 07 67 00 00 00 01 01 01'));
  });

  it('7. AGENT-DISCONNECT normal, 41 bytes', () => {
    const wire = encodeAgentDisconnect(0);
    expect(wire.length).toBe(41);
    expect(hex(wire)).toBe(
      ref(`00 00 00 25 66 00 00 00 01 00 00 0b "status-code" 03 00 07 "message" 08 06 "normal"`),
    );
  });

  it('8. ACK with a 3-byte stream id (haproxy#2490 capture)', () => {
    const wire = encodeAck(249011, 1, [set(VarScope.TXN, 'allowed', true)]);
    expect(hex(wire)).toBe(ref(`00 00 00 15 67 00 00 00 01 f3 bc 78 01 01 03 02 07 "allowed" 11`));
  });
});

describe('SET-VAR value encoding', () => {
  const TEN_FF = 'fff0fefefefefefefe0e';
  const cases: [string, VarValue, string][] = [
    ['true', true, '11'],
    ['false', false, '01'],
    ['null', null, '00'],
    ['0', 0, '0400'],
    ['403', 403, '04f30a'],
    ['-1 (u64 two complement)', -1, `04${TEN_FF}`],
    ['2^63-1n', 2n ** 63n - 1n, '04fff0fefefefefefefe06'],
    ['2^64-1n (UINT64)', 2n ** 64n - 1n, `05${TEN_FF}`],
    ['-1n', -1n, `04${TEN_FF}`],
    ['empty string', '', '0800'],
    ['ascii', 'user-1', `0806${Buffer.from('user-1').toString('hex')}`],
    ['utf-8', 'é', '0802c3a9'],
    ['binary', new Uint8Array([0, 255]), '090200ff'],
    ['NULL', { type: DataType.NULL }, '00'],
    ['BOOL', { type: DataType.BOOL, value: false }, '01'],
    ['INT32 -1', { type: DataType.INT32, value: -1 }, `02${TEN_FF}`],
    ['UINT32 300', { type: DataType.UINT32, value: 300 }, '03fc03'],
    ['INT64 min', { type: DataType.INT64, value: -(2n ** 63n) }, '04f0f1fefefefefefefe06'],
    ['UINT64', { type: DataType.UINT64, value: 7 }, '0507'],
    ['IPV4 text', { type: DataType.IPV4, value: '10.9.0.1' }, '060a090001'],
    ['IPV4 bytes', { type: DataType.IPV4, value: new Uint8Array([127, 0, 0, 1]) }, '067f000001'],
    ['IPV6 text', { type: DataType.IPV6, value: '2001:db8::1' }, '0720010db8000000000000000000000001'],
    [
      'IPV6 v4-mapped',
      { type: DataType.IPV6, value: '::ffff:1.2.3.4' },
      '0700000000000000000000ffff01020304',
    ],
    ['STRING', { type: DataType.STRING, value: 'x' }, '080178'],
    ['BINARY', { type: DataType.BINARY, value: new Uint8Array([1]) }, '090101'],
  ];

  it.each(cases)('%s', (_label, value, expected) => {
    const wire = encodeAck(1, 1, [set(VarScope.TXN, 'v', value)]);
    // header (4+7) + 01 03 02 01 'v'
    expect(hex(wire.subarray(16))).toBe(expected);
  });

  it('long strings get a multi-byte length varint', () => {
    for (const len of [79, 80, 239, 240, 2287, 2288, 5000]) {
      const s = 'a'.repeat(len);
      const f = decodeFrame(encodeAck(1, 1, [set(VarScope.TXN, 'v', s)]).subarray(4));
      if (!('actions' in f)) throw new Error('not an ACK');
      const a = f.actions[0]!;
      expect(a.op === 'set' && a.value.value).toBe(s);
    }
  });

  it('non-ASCII strings: UTF-8 on the wire, decoded one char per byte', () => {
    const s = 'Zoë 🚀 €';
    const f = decodeFrame(encodeAck(1, 1, [set(VarScope.TXN, 'v', s)]).subarray(4));
    if (!('actions' in f) || f.actions[0]?.op !== 'set') throw new Error('not an ACK');
    const decoded = f.actions[0].value.value as string;
    expect(Buffer.from(decoded, 'latin1').toString('utf8')).toBe(s);
  });

  it('UNSET-VAR and all five scopes', () => {
    const actions: Action[] = [
      set(VarScope.PROC, 'a', 1),
      set(VarScope.SESS, 'b', 2),
      set(VarScope.TXN, 'c', 3),
      set(VarScope.REQ, 'd', 4),
      set(VarScope.RES, 'e', 5),
      { op: 'unset', scope: VarScope.TXN, name: 'gone.x_1' },
    ];
    const wire = encodeAck(3, 1, actions);
    expect(hex(wire.subarray(wire.length - 12))).toBe(
      `020202${'08'}${Buffer.from('gone.x_1').toString('hex')}`,
    );
    const f = decodeFrame(wire.subarray(4));
    if (!('actions' in f)) throw new Error('not an ACK');
    expect(f.actions.map((a) => [a.op, a.scope, a.name])).toEqual([
      ['set', 0, 'a'],
      ['set', 1, 'b'],
      ['set', 2, 'c'],
      ['set', 3, 'd'],
      ['set', 4, 'e'],
      ['unset', 2, 'gone.x_1'],
    ]);
  });
});

describe('programmer misuse is a TypeError and leaves no partial frame', () => {
  const bad: [string, Action][] = [
    ['non-integer number', set(VarScope.TXN, 'v', 1.5)],
    ['NaN', set(VarScope.TXN, 'v', Number.NaN)],
    ['unsafe integer', set(VarScope.TXN, 'v', 2 ** 53)],
    ['bigint above u64', set(VarScope.TXN, 'v', 2n ** 64n)],
    ['undefined value', set(VarScope.TXN, 'v', undefined as unknown as VarValue)],
    ['object without type', set(VarScope.TXN, 'v', {} as VarValue)],
    ['INT32 out of range', set(VarScope.TXN, 'v', { type: DataType.INT32, value: 2 ** 31 })],
    ['UINT32 negative', set(VarScope.TXN, 'v', { type: DataType.UINT32, value: -1 })],
    ['UINT64 non-integer', set(VarScope.TXN, 'v', { type: DataType.UINT64, value: 0.5 })],
    ['bad IPv4', set(VarScope.TXN, 'v', { type: DataType.IPV4, value: '1.2.3' })],
    ['IPv6 given to IPV4', set(VarScope.TXN, 'v', { type: DataType.IPV4, value: '::1' })],
    ['bad IPv6 bytes', set(VarScope.TXN, 'v', { type: DataType.IPV6, value: new Uint8Array(4) })],
    ['STRING not a string', set(VarScope.TXN, 'v', { type: DataType.STRING, value: 1 } as never)],
    ['BINARY not bytes', set(VarScope.TXN, 'v', { type: DataType.BINARY, value: 'x' } as never)],
    ['scope 5', set(5, 'v', 1)],
    ['scope -1', set(-1, 'v', 1)],
    ['scope as string', set('txn' as never, 'v', 1)],
    ['name with a dash', set(VarScope.TXN, 'a-b', 1)],
    ['empty name', set(VarScope.TXN, '', 1)],
    ['non-string name', set(VarScope.TXN, 7 as never, 1)],
    ['unknown op', { op: 'add', scope: VarScope.TXN, name: 'v' } as never],
  ];

  it.each(bad)('%s', (_label, action) => {
    expect(() => encodeAck(1, 1, [set(VarScope.TXN, 'ok', true), action])).toThrow(TypeError);
    // the shared writer must not leak the half-written ACK into the next frame
    expect(hex(encodeAck(1, 1, []))).toBe('0000000767000000010101');
  });
});

describe('FrameWriter', () => {
  it('coalesces frames written between takes into one buffer', () => {
    const w = new FrameWriter();
    w.agentHello(16380, '');
    w.ack(1, 1, [set(VarScope.TXN, 'a', true)]);
    w.ack(3, 1, []);
    const out = w.take()!;
    expect(w.take()).toBeNull();
    const lengths: number[] = [];
    for (let p = 0; p < out.length; p += 4 + out.readUInt32BE(p)) lengths.push(out.readUInt32BE(p));
    expect(lengths).toHaveLength(3);
    expect(lengths.reduce((a, b) => a + b + 4, 0)).toBe(out.length);
  });

  it('never rewrites bytes it handed out, across slab changes', () => {
    const w = new FrameWriter(64);
    const taken: [Buffer, string][] = [];
    for (let i = 0; i < 200; i++) {
      w.ack(i, 1, [set(VarScope.TXN, 's', 'x'.repeat(i % 50))]);
      if (i % 3 === 0) {
        const b = w.take()!;
        taken.push([b, hex(b)]);
      }
    }
    for (const [b, h] of taken) expect(hex(b)).toBe(h);
  });

  it('discardLast drops exactly the last frame', () => {
    const w = new FrameWriter();
    w.ack(1, 1, []);
    w.ack(2, 1, [set(VarScope.TXN, 'a', 'b')]);
    w.discardLast();
    expect(hex(w.take()!)).toBe('0000000767000000010101');
  });
});

describe('round trips (properties)', () => {
  const opts = { numRuns: 300, interruptAfterTimeLimit: 4000 };
  const name = fc.stringMatching(/^[A-Za-z0-9._]{1,40}$/);
  const scope = fc.integer({ min: 0, max: 4 }) as fc.Arbitrary<VarScope>;
  const value: fc.Arbitrary<VarValue> = fc.oneof(
    fc.boolean(),
    fc.constant(null),
    fc.maxSafeInteger(),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }),
    fc.ipV4().map((v) => ({ type: DataType.IPV4, value: v }) as const),
    fc.ipV6().map((v) => ({ type: DataType.IPV6, value: v }) as const),
    fc
      .integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })
      .map((v) => ({ type: DataType.INT32, value: v }) as const),
    fc.nat({ max: 2 ** 32 - 1 }).map((v) => ({ type: DataType.UINT32, value: v }) as const),
  );
  const action: fc.Arbitrary<Action> = fc.oneof(
    fc.record({ op: fc.constant('set' as const), scope, name, value }),
    fc.record({ op: fc.constant('unset' as const), scope, name }),
  );

  /** What the decoder must give back for `v`. */
  function same(v: VarValue, got: DecodedAction & { op: 'set' }): void {
    const t = got.value;
    if (typeof v === 'boolean') expect(t).toEqual({ type: DataType.BOOL, value: v });
    else if (v === null) expect(t).toEqual({ type: DataType.NULL, value: null });
    else if (typeof v === 'number') expect(t).toEqual({ type: DataType.INT64, value: v });
    else if (typeof v === 'bigint') {
      expect(t.type).toBe(v > 2n ** 63n - 1n ? DataType.UINT64 : DataType.INT64);
      expect(BigInt(t.value as number | bigint)).toBe(v);
    } else if (typeof v === 'string') {
      expect(t.type).toBe(DataType.STRING);
      expect(Buffer.from(t.value as string, 'latin1').equals(Buffer.from(v, 'utf8'))).toBe(true);
    } else if (v instanceof Uint8Array) {
      expect(t.type).toBe(DataType.BINARY);
      expect(hex(t.value as Uint8Array)).toBe(hex(v));
    } else if (v.type === DataType.IPV6) {
      expect(t.type).toBe(DataType.IPV6);
      expect(hex(parseIpv6(t.value as string)!)).toBe(hex(parseIpv6(v.value as string)!));
    } else {
      expect(t).toEqual({ type: v.type, value: v.value });
    }
  }

  it('ACK: encode → decode gives the same actions', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 2 ** 31 }),
        fc.nat(),
        fc.array(action, { maxLength: 12 }),
        (sid, fid, actions) => {
          const wire = encodeAck(sid, fid, actions);
          expect(wire.readUInt32BE(0)).toBe(wire.length - 4);
          const f = decodeFrame(wire.subarray(4));
          if (!('actions' in f)) throw new Error('not an ACK');
          expect([f.type, f.flags, f.streamId, f.frameId]).toEqual([FrameType.ACK, 1, sid, fid]);
          expect(f.actions).toHaveLength(actions.length);
          actions.forEach((a, i) => {
            const got = f.actions[i]!;
            expect([got.op, got.scope, got.name]).toEqual([a.op, a.scope, a.name]);
            if (a.op === 'set' && got.op === 'set') same(a.value, got);
          });
        },
      ),
      opts,
    );
  });

  it('NOTIFY: encode → decode → lazy views find every arg by name', () => {
    const argName = fc.string({ unit: 'grapheme', maxLength: 20 });
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            name: fc.string({ maxLength: 30 }),
            args: fc.uniqueArray(fc.record({ name: argName, value }), {
              maxLength: 20,
              selector: (a) => a.name,
            }),
          }),
          { maxLength: 4 },
        ),
        (messages) => {
          const wire = encodeFrame({ type: FrameType.NOTIFY, streamId: 5, frameId: 1, messages });
          const f = decodeFrame(wire.subarray(4));
          if (!('notify' in f)) throw new Error('not a NOTIFY');
          expect(f.notify.messages).toHaveLength(messages.length);
          messages.forEach((m, i) => {
            const view = f.notify.messages[i]!;
            expect(Buffer.from(view.name, 'latin1').toString('utf8')).toBe(m.name);
            expect(view.is(m.name)).toBe(true);
            expect(view.argCount).toBe(m.args.length);
            for (const a of m.args) {
              expect(view.has(a.name)).toBe(true);
              const got = view.get(a.name);
              expect(got).toBeDefined();
              same(a.value, { op: 'set', scope: 0, name: a.name, value: got! });
              if (typeof a.value === 'string') {
                expect(view.getUtf8(a.name)).toBe(Buffer.from(a.value, 'utf8').toString('utf8'));
                expect(Buffer.from(view.getString(a.name)!, 'latin1').equals(Buffer.from(a.value))).toBe(
                  true,
                );
              }
            }
            expect(view.has('\u0000not-an-arg')).toBe(m.args.some((a) => a.name === '\u0000not-an-arg'));
          });
        },
      ),
      opts,
    );
  });
});
