import { describe, expect, it } from 'vitest';
import {
  DataType,
  decodeFrame,
  encodeFrame,
  FrameType,
  type NamedValue,
  type Notify,
  SpopError,
  Status,
} from '../../src/spop/index.js';
import { formatIpv6, parseIpv4, parseIpv6 } from '../../src/spop/ip.js';

function notifyOf(messages: { name: string; args: NamedValue[] }[]): Notify {
  const f = decodeFrame(
    encodeFrame({ type: FrameType.NOTIFY, streamId: 1, frameId: 1, messages }).subarray(4),
  );
  if (!('notify' in f)) throw new Error('not a NOTIFY');
  return f.notify;
}

function decodeStatus(hexBody: string): number {
  try {
    decodeFrame(Buffer.from(hexBody.replaceAll(' ', ''), 'hex'));
  } catch (err) {
    expect(err).toBeInstanceOf(SpopError);
    return (err as SpopError).status;
  }
  return -1;
}

describe('NOTIFY views', () => {
  it('zero messages is a legal NOTIFY', () => {
    const n = notifyOf([]);
    expect(n.messages).toHaveLength(0);
    expect(n.message('authorize')).toBeUndefined();
  });

  it('finds messages and args by name; first one wins on duplicates', () => {
    const n = notifyOf([
      { name: 'a', args: [{ name: 'x', value: '1' }] },
      { name: 'b', args: [] },
      {
        name: 'a',
        args: [
          { name: 'x', value: '2' },
          { name: 'x', value: '3' },
        ],
      },
    ]);
    expect(n.messages.map((m) => m.name)).toEqual(['a', 'b', 'a']);
    expect(n.message('a')?.getString('x')).toBe('1');
    expect(n.message('b')?.argCount).toBe(0);
    expect(n.messages[2]!.getString('x')).toBe('2');
    expect([...n.messages[2]!].map((a) => a.value)).toEqual(['2', '3']);
  });

  it('unnamed args (`args src`) have an empty name', () => {
    const n = notifyOf([
      {
        name: 'm',
        args: [
          { name: '', value: { type: DataType.IPV4, value: '10.0.0.1' } },
          { name: 'p', value: 'q' },
        ],
      },
    ]);
    const m = n.messages[0]!;
    expect(m.getIp('')).toBe('10.0.0.1');
    expect(m.getString('p')).toBe('q');
    expect([...m][0]).toEqual({ name: '', type: DataType.IPV4, value: '10.0.0.1' });
  });

  it('non-ASCII names are compared as UTF-8 bytes', () => {
    const n = notifyOf([
      {
        name: 'mé',
        args: [
          { name: 'é', value: 'e-acute' },
          { name: 'Ã©', value: 'latin1-lookalike' },
          { name: 'ab', value: 'ascii' },
        ],
      },
    ]);
    const m = n.messages[0]!;
    expect(m.is('mé')).toBe(true);
    expect(m.is('me')).toBe(false);
    expect(n.message('mé')).toBe(m);
    expect(m.getString('é')).toBe('e-acute');
    expect(m.getString('Ã©')).toBe('latin1-lookalike');
    expect(m.getString('ab')).toBe('ascii');
    expect(m.has('a')).toBe(false);
  });

  it('getString is Latin-1 (one char per byte), getUtf8 decodes UTF-8', () => {
    const m = notifyOf([{ name: 'm', args: [{ name: 's', value: 'née' }] }]).messages[0]!;
    expect(m.getString('s')).toBe('nÃ©e');
    expect(m.getUtf8('s')).toBe('née');
    expect(m.getUtf8('missing')).toBeNull();
  });

  it('typed getters return null on a type mismatch', () => {
    const m = notifyOf([
      {
        name: 'm',
        args: [
          { name: 'b', value: false },
          { name: 'i', value: { type: DataType.UINT64, value: 2n ** 64n - 1n } },
          { name: 'j', value: { type: DataType.INT32, value: -7 } },
          { name: 'n', value: null },
          { name: 'bin', value: new Uint8Array([1, 2, 3]) },
        ],
      },
    ]).messages[0]!;
    expect(m.getBool('b')).toBe(false);
    expect(m.getInt('i')).toBe(2n ** 64n - 1n);
    expect(m.getInt('j')).toBe(-7);
    expect(m.getString('n')).toBeNull();
    expect(m.has('n')).toBe(true);
    expect(m.get('n')).toEqual({ type: DataType.NULL, value: null });
    expect(m.getString('bin')).toBeNull();
    expect(m.getIp('b')).toBeNull();
    expect(m.getBool('i')).toBeNull();
  });

  it('binary values are copies, not views of the frame', () => {
    const m = notifyOf([{ name: 'm', args: [{ name: 'bin', value: new Uint8Array([1, 2, 3]) }] }])
      .messages[0]!;
    const v = m.get('bin')!.value as Uint8Array;
    v[0] = 99;
    expect([...(m.get('bin')!.value as Uint8Array)]).toEqual([1, 2, 3]);
  });

  it('reads strings of payloads above the one-decode threshold', () => {
    const big = 'x'.repeat(6000);
    const m = notifyOf([
      {
        name: 'm',
        args: [
          { name: 'big', value: big },
          { name: 'small', value: 'ok' },
        ],
      },
    ]).messages[0]!;
    expect(m.getString('big')).toBe(big);
    expect(m.getString('small')).toBe('ok');
    expect(m.name).toBe('m');
  });

  it.each([
    ['truncated message name', '03 00000001 01 01 05 61 62'],
    ['missing nb-args', '03 00000001 01 01 01 6d'],
    ['nb-args beyond the payload', '03 00000001 01 01 01 6d 02 01 61 00'],
    ['truncated arg value', '03 00000001 01 01 01 6d 01 01 61 08 05 61 62'],
    ['reserved data type 10', '03 00000001 01 01 01 6d 01 01 61 0a'],
    ['truncated ipv6', '03 00000001 01 01 01 6d 01 01 61 07 00 00'],
    ['overlong varint', '03 00000001 01 01 01 6d 01 01 61 04 ff ff ff ff ff ff ff ff ff ff 00'],
    ['truncated header', '03 000000'],
  ])('%s → SpopError status 4', (_label, body) => {
    expect(decodeStatus(body)).toBe(Status.INVALID);
  });
});

describe('IP text forms', () => {
  it.each([
    ['::1', '::1'],
    ['::', '::'],
    ['2001:db8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['fe80::', 'fe80::'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::192.0.2.1', '::c000:201'],
  ])('%s → %s (RFC 5952)', (input, expected) => {
    const bytes = parseIpv6(input);
    expect(bytes).not.toBeNull();
    expect(formatIpv6(bytes!, 0)).toBe(expected);
  });

  it('rejects malformed addresses', () => {
    for (const bad of ['', '1::2::3', 'fe80::1%eth0', '12345::', '1.2.3.4', 'x'])
      expect(parseIpv6(bad)).toBeNull();
    for (const bad of ['', '1.2.3', '256.1.1.1', '::1', '01.2.3.4']) expect(parseIpv4(bad)).toBeNull();
  });
});

describe('NOTIFY view caches', () => {
  it('arg names that share a cache slot, or are built at run time, still match by bytes', () => {
    // token_header/src collide under a simple len*7+c0 hash; a/x/'' are short and equal-length.
    const names = ['token_header', 'src', 'prefect_ui', 'x', 'a', '', 'method', 'cookie', 'é', 'Ã©'];
    const m = notifyOf([{ name: 'm', args: names.map((name, i) => ({ name, value: `v${i}` })) }])
      .messages[0]!;
    for (let round = 0; round < 3; round++) {
      names.forEach((name, i) => {
        expect(m.getString(name)).toBe(`v${i}`);
        expect(m.getString([...name].join(''))).toBe(`v${i}`);
      });
      expect(m.has('methoD')).toBe(false);
      expect(m.has('cookies')).toBe(false);
    }
  });

  it('IPv4 text is right for addresses that share a cache slot', () => {
    const ips: string[] = [];
    for (let i = 0; i < 600; i++) ips.push(`${i & 255}.${(i * 7) & 255}.${i >> 8}.${(i * 13) & 255}`);
    const m = notifyOf([
      {
        name: 'm',
        args: ips
          .slice(0, 255)
          .map((ip, i) => ({ name: `a${i}`, value: { type: DataType.IPV4, value: ip } })),
      },
    ]).messages[0]!;
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 255; i++) expect(m.getIp(`a${i}`)).toBe(ips[i]);
    }
    const n = notifyOf([
      {
        name: 'm',
        args: ips
          .slice(255, 510)
          .map((ip, i) => ({ name: `a${i}`, value: { type: DataType.IPV4, value: ip } })),
      },
    ]).messages[0]!;
    for (let i = 0; i < 255; i++) expect(n.getIp(`a${i}`)).toBe(ips[255 + i]);
    expect(m.getIp('a0')).toBe(ips[0]);
  });
});
