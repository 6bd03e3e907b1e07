import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SpopError, Status } from '../../src/spop/index.js';
import { decodeVarint, encodeVarint, toInt64, varintLength } from '../../src/spop/varint.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => Buffer.from(h.replaceAll(' ', ''), 'hex');

// Reference §1.4, every row of the table.
const TABLE: [number | bigint, string][] = [
  [0, '00'],
  [239, 'ef'],
  [240, 'f0 00'],
  [241, 'f1 00'],
  [256, 'f0 01'],
  [300, 'fc 03'],
  [1000, 'f8 2f'],
  [2287, 'ff 7f'],
  [2288, 'f0 80 00'],
  [16380, 'fc f0 06'],
  [65535, 'ff f0 1e'],
  [264431, 'ff ff 7f'],
  [264432, 'f0 80 80 00'],
  [33818864, 'f0 80 80 80 00'],
  [2 ** 32 - 1, 'ff f0 fe fe 7e'],
  [2n ** 63n - 1n, 'ff f0 fe fe fe fe fe fe fe 06'],
  [2n ** 64n - 1n, 'ff f0 fe fe fe fe fe fe fe 0e'],
];

describe('varint table (reference §1.4)', () => {
  it.each(TABLE)('%s ⇄ %s', (value, h) => {
    expect(hex(encodeVarint(value))).toBe(h.replaceAll(' ', ''));
    expect(varintLength(value)).toBe(bytes(h).length);
    const d = decodeVarint(bytes(h));
    expect(d.length).toBe(bytes(h).length);
    expect(d.value).toBe(value);
  });

  it('encodes -1 as int64 like 2^64-1 (10 bytes) and decodes back to -1 as int64', () => {
    expect(hex(encodeVarint(-1))).toBe('fff0fefefefefefefe0e');
    expect(hex(encodeVarint(-1n))).toBe('fff0fefefefefefefe0e');
    expect(varintLength(-1)).toBe(10);
    const { value } = decodeVarint(encodeVarint(-1));
    expect(value).toBe(2n ** 64n - 1n);
    expect(toInt64(value)).toBe(-1);
  });

  it('returns numbers up to 2^53-1 and bigints beyond', () => {
    expect(decodeVarint(encodeVarint(Number.MAX_SAFE_INTEGER)).value).toBe(Number.MAX_SAFE_INTEGER);
    expect(decodeVarint(encodeVarint(2n ** 53n)).value).toBe(2n ** 53n);
    expect(toInt64(2n ** 63n)).toBe(-(2n ** 63n));
  });

  it('matches the length boundaries of the reference', () => {
    const bounds = [240, 2288, 264432, 33818864, 4328786160, 554084600048];
    bounds.forEach((b, i) => {
      expect(varintLength(b - 1)).toBe(i + 1);
      expect(encodeVarint(b - 1).length).toBe(i + 1);
      expect(encodeVarint(b).length).toBe(i + 2);
    });
  });
});

describe('varint errors', () => {
  const expectSpop = (fn: () => unknown, code: string) => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(SpopError);
      expect((err as SpopError).code).toBe(code);
      expect((err as SpopError).status).toBe(Status.INVALID);
      return;
    }
    throw new Error('expected a SpopError');
  };

  it.each(['', 'f0', 'f0 80', 'ff f0 fe fe fe fe fe fe fe'])('truncated %j', (h) => {
    expectSpop(() => decodeVarint(bytes(h)), 'ERR_SPOP_TRUNCATED');
  });

  it('rejects an 11th byte', () => {
    expectSpop(() => decodeVarint(bytes('ff f0 fe fe fe fe fe fe fe fe 00')), 'ERR_SPOP_VARINT');
  });

  it('rejects 10-byte encodings above 2^64-1', () => {
    expectSpop(() => decodeVarint(bytes('ff f0 fe fe fe fe fe fe fe 0f')), 'ERR_SPOP_VARINT');
    expectSpop(() => decodeVarint(bytes('ff f0 fe fe fe fe fe fe fe 7f')), 'ERR_SPOP_VARINT');
  });

  it('refuses to encode non-integers and out-of-range values', () => {
    expect(() => encodeVarint(1.5)).toThrow(TypeError);
    expect(() => encodeVarint(2 ** 60)).toThrow(TypeError);
    expect(() => encodeVarint(2n ** 64n)).toThrow(TypeError);
    expect(() => encodeVarint(-(2n ** 63n) - 1n)).toThrow(TypeError);
  });
});

describe('varint properties', () => {
  const opts = { numRuns: 2000, interruptAfterTimeLimit: 3000 };

  it('round-trips every u64 (bigint)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (v) => {
        const enc = encodeVarint(v);
        expect(enc.length).toBe(varintLength(v));
        const d = decodeVarint(enc);
        expect(d.length).toBe(enc.length);
        expect(BigInt(d.value)).toBe(v);
        expect(typeof d.value).toBe(v <= BigInt(Number.MAX_SAFE_INTEGER) ? 'number' : 'bigint');
      }),
      opts,
    );
  });

  it('round-trips safe integers, negatives through int64', () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (v) => {
        expect(toInt64(decodeVarint(encodeVarint(v)).value)).toBe(v);
      }),
      opts,
    );
  });

  it('is a bijection: every decodable byte string re-encodes to itself', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 11 }), (b) => {
        let d: { value: number | bigint; length: number };
        try {
          d = decodeVarint(b);
        } catch (err) {
          expect(err).toBeInstanceOf(SpopError);
          return;
        }
        expect(hex(encodeVarint(d.value))).toBe(hex(b.subarray(0, d.length)));
      }),
      opts,
    );
  });
});
