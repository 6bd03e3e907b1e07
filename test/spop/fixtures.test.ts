/**
 * Every frame captured from HAProxy 2.6.12 decodes exactly to its `.json`
 * (test/fixtures/spop/haproxy-2.6).
 */
import { describe, expect, it } from 'vitest';
import {
  DATA_TYPE_NAMES,
  DataType,
  type DecodedFrame,
  decodeFrame,
  encodeFrame,
  FrameFlag,
  FrameType,
  type KvEntry,
  type NotifyArg,
  negotiateHello,
} from '../../src/spop/index.js';
import { FIXTURE_NAMES, loadFixture } from './fixture-files.js';

const names = FIXTURE_NAMES;

const TYPE_NAMES: Record<number, string> = {
  [FrameType.HAPROXY_HELLO]: 'HAPROXY-HELLO',
  [FrameType.HAPROXY_DISCONNECT]: 'HAPROXY-DISCONNECT',
  [FrameType.NOTIFY]: 'NOTIFY',
};

/** A decoded value in the fixtures' JSON convention. */
function entry(e: KvEntry | NotifyArg): Record<string, unknown> {
  const type = DATA_TYPE_NAMES[e.type]!;
  if (e.type === DataType.BINARY)
    return { name: e.name, type, value_hex: Buffer.from(e.value as Uint8Array).toString('hex') };
  const value = typeof e.value === 'bigint' ? e.value.toString() : e.value;
  return { name: e.name, type, value };
}

function toJson(f: DecodedFrame): Record<string, unknown> {
  const base = {
    type: TYPE_NAMES[f.type],
    flags: { fin: (f.flags & FrameFlag.FIN) !== 0, abort: (f.flags & FrameFlag.ABORT) !== 0 },
    stream_id: f.streamId,
    frame_id: f.frameId,
  };
  if ('kv' in f) return { ...base, kv: f.kv.map(entry) };
  if ('notify' in f) {
    return { ...base, messages: f.notify.messages.map((m) => ({ name: m.name, args: [...m].map(entry) })) };
  }
  throw new Error(`unexpected frame type ${f.type}`);
}

describe('HAProxy 2.6 captures', () => {
  it('are all there', () => {
    expect(names).toEqual([
      'disconnect-idle-timeout',
      'hello',
      'hello-healthcheck',
      'notify-create-flow-run',
      'notify-filter-ipv6-cookie',
      'notify-typed-args',
      'notify-typed-args-null-header',
    ]);
  });

  it.each(names)('%s decodes to its .json', (name) => {
    const { bytes, json } = loadFixture(name);
    expect(toJson(decodeFrame(bytes))).toEqual(json);
  });

  it.each(names)('%s re-encodes byte for byte', (name) => {
    const { bytes } = loadFixture(name);
    const f = decodeFrame(bytes);
    const base = { type: f.type, flags: f.flags, streamId: f.streamId, frameId: f.frameId };
    let spec: Parameters<typeof encodeFrame>[0];
    const typed = (e: KvEntry | NotifyArg) => {
      // UINT32 and IPs need their explicit type; everything else maps back by JS type.
      if (e.type === DataType.UINT32 || e.type === DataType.IPV4 || e.type === DataType.IPV6) {
        return { name: e.name, value: { type: e.type, value: e.value } } as never;
      }
      return { name: e.name, value: e.value } as never;
    };
    if ('kv' in f) spec = { ...base, kv: f.kv.map(typed) };
    else if ('notify' in f) {
      spec = { ...base, messages: f.notify.messages.map((m) => ({ name: m.name, args: [...m].map(typed) })) };
    } else throw new Error('unexpected');
    const wire = encodeFrame(spec);
    expect(wire.readUInt32BE(0)).toBe(bytes.length);
    expect(wire.subarray(4).toString('hex')).toBe(bytes.toString('hex'));
  });

  it('the HELLOs negotiate as expected', () => {
    const hello = decodeFrame(loadFixture('hello').bytes);
    const check = decodeFrame(loadFixture('hello-healthcheck').bytes);
    if (!('kv' in hello) || !('kv' in check)) throw new Error('not HELLOs');
    expect(negotiateHello(hello.kv, 16380)).toEqual({
      maxFrameSize: 16380,
      pipelining: true,
      capabilities: 'pipelining',
      healthcheck: false,
      engineId: '9d26d82d-2f35-4b5a-94b9-3afbc2520431',
    });
    expect(negotiateHello(check.kv, 4096)).toEqual({
      maxFrameSize: 4096,
      pipelining: false,
      capabilities: '',
      healthcheck: true,
      engineId: null,
    });
  });

  it('lazy accessors read the create_flow_run NOTIFY', () => {
    const f = decodeFrame(loadFixture('notify-create-flow-run').bytes);
    if (!('notify' in f)) throw new Error('not a NOTIFY');
    const m = f.notify.message('authorize')!;
    expect(m.argCount).toBe(8);
    expect(m.getString('method')).toBe('POST');
    expect(m.getString('path')).toBe('/api/deployments/6f1c/create_flow_run');
    expect(m.getString('query')).toBeNull(); // NULL: no query string
    expect(m.has('query')).toBe(true);
    expect(m.getString('authorization')).toMatch(/^Bearer eyJhbGciOiAiUlMyNTYi.*AQ$/);
    expect(m.getString('authorization')).toHaveLength(616); // varint f8 17
    expect(m.getIp('src')).toBe('127.0.0.1');
    expect(m.getString('src')).toBeNull();
    expect(m.getString('id')).toBe('7F000001:975E_7F000001:46A0_6B0697F2_0000:2A9B');
    expect(m.getString('nope')).toBeNull();
    expect(m.get('nope')).toBeUndefined();
  });

  it('typed args: bool, negative int64, ipv6', () => {
    const f = decodeFrame(loadFixture('notify-typed-args').bytes);
    if (!('notify' in f)) throw new Error('not a NOTIFY');
    const m = f.notify.messages[0]!;
    expect(m.getBool('flag')).toBe(true);
    expect(m.getInt('n')).toBe(-5);
    expect(m.getInt('big')).toBe(300000);
    expect(m.getIp('ip6')).toBe('::1');
    expect(m.get('n')).toEqual({ type: DataType.INT64, value: -5 });
    expect(m.get('src')).toEqual({ type: DataType.IPV4, value: '127.0.0.1' });
    expect(m.getInt('flag')).toBeNull();
    expect(m.getBool('n')).toBeNull();
  });
});
