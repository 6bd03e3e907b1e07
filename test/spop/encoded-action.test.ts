import { describe, expect, it } from 'vitest';
import {
  type Action,
  ActionList,
  compileActions,
  compileSetVar,
  DataType,
  decodeFrame,
  EncodedSetVar,
  encodeAck,
  FrameType,
  FrameWriter,
  SetVarCache,
  VarScope,
  type VarValue,
} from '../../src/spop/index.js';

const T = VarScope.TXN;

function decodedActions(frame: Buffer) {
  const f = decodeFrame(frame, 4);
  if (f.type !== FrameType.ACK || !('actions' in f)) throw new Error('not an ACK');
  return f.actions;
}

// Every value kind a SET-VAR may carry: the precompiled bytes must equal the per-ACK encoding.
const VALUES: [string, VarValue][] = [
  ['bool true', true],
  ['bool false', false],
  ['int', 200],
  ['int 2-byte varint', 503_000],
  ['negative int', -1],
  ['bigint above int64', 2n ** 64n - 1n],
  ['empty string', ''],
  ['ascii', 'deployments.create_flow_run'],
  ['utf-8', 'née ✓'],
  ['long string (2-byte length)', 'x'.repeat(300)],
  ['null', null],
  ['binary', new Uint8Array([0, 1, 255])],
  ['explicit ipv4', { type: DataType.IPV4, value: '10.1.2.3' }],
  ['explicit uint32', { type: DataType.UINT32, value: 7 }],
];

describe('EncodedSetVar', () => {
  it.each(VALUES)('%s: same bytes as a plain action, decodes back', (_label, value) => {
    const plain: Action = { op: 'set', scope: T, name: 'v', value };
    const encoded = compileSetVar(T, 'v', value);
    expect(encoded).toBeInstanceOf(EncodedSetVar);
    expect(encoded).toMatchObject({ op: 'set', scope: T, name: 'v' });
    const a = Buffer.from(encodeAck(1, 2, [plain]));
    const b = Buffer.from(encodeAck(1, 2, [encoded]));
    expect(b.toString('hex')).toBe(a.toString('hex'));
    expect(decodedActions(b)).toEqual(decodedActions(a));
  });

  it('mixes with plain actions and unsets in one ACK', () => {
    const actions: Action[] = [
      compileSetVar(T, 'allow', true),
      { op: 'unset', scope: VarScope.SESS, name: 'x' },
      { op: 'set', scope: T, name: 'sub', value: 'alice' },
      compileSetVar(VarScope.REQ, 'tag', 'a.b'),
    ];
    expect(decodedActions(encodeAck(5, 6, actions))).toEqual([
      { op: 'set', scope: T, name: 'allow', value: { type: DataType.BOOL, value: true } },
      { op: 'unset', scope: VarScope.SESS, name: 'x' },
      { op: 'set', scope: T, name: 'sub', value: { type: DataType.STRING, value: 'alice' } },
      { op: 'set', scope: VarScope.REQ, name: 'tag', value: { type: DataType.STRING, value: 'a.b' } },
    ]);
  });

  it('grows the writer slab like any action', () => {
    const w = new FrameWriter(64);
    const big = compileSetVar(T, 'big', 'y'.repeat(1000));
    w.ack(1, 1, [big, big]);
    const out = w.take()!;
    expect(decodedActions(out)).toHaveLength(2);
  });

  it('validates at construction: TypeError on a bad scope, name or value', () => {
    expect(() => compileSetVar(9 as VarScope, 'x', 1)).toThrow(TypeError);
    expect(() => compileSetVar(T, 'bad name', 1)).toThrow(TypeError);
    expect(() => compileSetVar(T, 'x', 1.5)).toThrow(TypeError);
    expect(() => compileSetVar(T, 'x', { type: DataType.IPV4, value: 'nope' })).toThrow(TypeError);
  });

  it('is immutable and keeps its own copy of binary values', () => {
    const bin = new Uint8Array([1, 2]);
    const a = compileSetVar(T, 'b', bin);
    bin[0] = 9;
    expect(Object.isFrozen(a)).toBe(true);
    expect((a as EncodedSetVar).value).toEqual(new Uint8Array([1, 2]));
    const back = decodedActions(encodeAck(1, 1, [a]))[0]!;
    expect(back.op === 'set' && [...(back.value.value as Uint8Array)]).toEqual([1, 2]);
  });
});

describe('ActionList (compileActions)', () => {
  const LISTS: [string, Action[]][] = [
    ['empty', []],
    ['every value kind', VALUES.map(([, value], i) => ({ op: 'set', scope: T, name: `v${i}`, value }))],
    [
      'encoded, plain and unset mixed',
      [
        compileSetVar(T, 'allow', true),
        { op: 'unset', scope: VarScope.SESS, name: 'x' },
        { op: 'set', scope: VarScope.REQ, name: 'sub', value: 'alice' },
      ],
    ],
    ['above a slab', [compileSetVar(T, 'big', 'z'.repeat(20_000))]],
  ];

  it.each(LISTS)('%s: the ACK is byte for byte the one of the plain actions', (_label, actions) => {
    const list = compileActions(actions);
    expect(list).toBeInstanceOf(ActionList);
    expect(list.actions).toEqual(actions);
    for (const [sid, fid] of [
      [1, 2],
      [300, 70_000],
      [2n ** 40n, 1],
    ] as const) {
      const plain = new FrameWriter(64);
      const compiled = new FrameWriter(64);
      expect(compiled.ack(sid, fid, list)).toBe(plain.ack(sid, fid, actions));
      expect(compiled.take()!.toString('hex')).toBe(plain.take()!.toString('hex'));
    }
  });

  it('is reused across ACKs without change, and frozen', () => {
    const list = compileActions([
      compileSetVar(T, 'allow', true),
      { op: 'set', scope: T, name: 'n', value: 7 },
    ]);
    const w = new FrameWriter(32);
    for (let i = 0; i < 50; i++) w.ack(i, 1, list);
    const out = w.take()!;
    let off = 0;
    for (let i = 0; i < 50; i++) {
      const len = out.readUInt32BE(off);
      const f = decodeFrame(out.subarray(off, off + 4 + len), 4);
      expect([f.streamId, decodedActions(out.subarray(off, off + 4 + len)).length]).toEqual([i, 2]);
      off += 4 + len;
    }
    expect(Object.isFrozen(list)).toBe(true);
    expect(Object.isFrozen(list.actions)).toBe(true);
  });

  it('validates when compiled: TypeError on an action no ACK could carry', () => {
    expect(() => compileActions([{ op: 'set', scope: T, name: 'x', value: 1.5 }])).toThrow(TypeError);
    expect(() => compileActions([{ op: 'set', scope: 9 as VarScope, name: 'x', value: 1 }])).toThrow(
      TypeError,
    );
    expect(() => compileActions([{ op: 'nope' } as unknown as Action])).toThrow(TypeError);
  });
});

describe('SetVarCache', () => {
  it('returns one encoded action per distinct value', () => {
    const c = new SetVarCache(T, 'role');
    const a = c.action('viewer');
    expect(a).toBeInstanceOf(EncodedSetVar);
    expect(c.action('viewer')).toBe(a);
    expect(c.action(`view${'er'}`)).toBe(a); // equal content, another string object
    expect(c.action('admins')).not.toBe(a); // same length: same front slot
    expect(c.action('viewer')).toBe(a);
    expect(new SetVarCache(T, 'allow').action(true)).toBeInstanceOf(EncodedSetVar);
    const s = new SetVarCache(T, 'status');
    expect(s.action(401)).toBe(s.action(401));
  });

  it('encodes exactly like plain actions', () => {
    const c = new SetVarCache(T, 'v');
    const values = ['ok', 'same', 'size', 'é', '', 'x'.repeat(40), 0, 503, -5, true, false];
    for (const v of [...values, ...values]) {
      const plain = encodeAck(1, 1, [{ op: 'set', scope: T, name: 'v', value: v }]);
      expect(Buffer.from(encodeAck(1, 1, [c.action(v)])).equals(plain)).toBe(true);
    }
  });

  it('falls back to plain actions beyond maxEntries and for non-integer numbers', () => {
    const c = new SetVarCache(T, 'sub', 2);
    expect(c.action('a')).toBeInstanceOf(EncodedSetVar);
    expect(c.action('bb')).toBeInstanceOf(EncodedSetVar);
    const third = c.action('ccc');
    expect(third).not.toBeInstanceOf(EncodedSetVar);
    expect(third).toEqual({ op: 'set', scope: T, name: 'sub', value: 'ccc' });
    const frac = new SetVarCache(T, 'x').action(1.5);
    expect(frac).toEqual({ op: 'set', scope: T, name: 'x', value: 1.5 });
    expect(() => encodeAck(1, 1, [frac])).toThrow(TypeError); // as before: refused when encoding
  });

  it('rejects a bad scope or name at construction', () => {
    expect(() => new SetVarCache(7 as VarScope, 'x')).toThrow(TypeError);
    expect(() => new SetVarCache(T, 'a-b')).toThrow(TypeError);
  });
});
