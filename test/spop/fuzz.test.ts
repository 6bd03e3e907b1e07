/**
 * Hostile input: arbitrary bytes and mutated real frames must give frames or the codec's own
 * SpopError, never another exception, never a hang (fast-check, time-boxed).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type DecodedFrame,
  decodeFrame,
  encodeAck,
  Framer,
  negotiateHello,
  SpopError,
  VarScope,
} from '../../src/spop/index.js';
import { FIXTURE_NAMES, loadFixture } from './fixture-files.js';

const OPTS = { numRuns: 3000, interruptAfterTimeLimit: 4000 };

/** Decodes, then touches everything a handler could read. */
function decodeAndReadAll(bytes: Uint8Array): DecodedFrame | SpopError {
  try {
    const f = decodeFrame(bytes);
    if ('notify' in f) {
      for (const m of f.notify.messages) {
        void m.name;
        for (const a of m) {
          m.get(a.name);
          m.getString(a.name);
          m.getUtf8(a.name);
          m.getIp(a.name);
          m.getInt(a.name);
          m.getBool(a.name);
        }
      }
    }
    if ('kv' in f && f.type === 1) {
      try {
        negotiateHello(f.kv, 16380);
      } catch (err) {
        if (!(err instanceof SpopError)) throw err;
      }
    }
    return f;
  } catch (err) {
    if (err instanceof SpopError) return err;
    throw err;
  }
}

const realFrames = [
  ...FIXTURE_NAMES.map((n) => loadFixture(n).bytes),
  encodeAck(3, 1, [
    { op: 'set', scope: VarScope.TXN, name: 'allow', value: true },
    { op: 'set', scope: VarScope.TXN, name: 'sub', value: 'user-1' },
    { op: 'unset', scope: VarScope.TXN, name: 'x' },
  ]).subarray(4),
];

/** A real frame with a few bytes changed, cut or inserted. */
const mutatedFrame = fc
  .record({
    base: fc.constantFrom(...realFrames),
    edits: fc.array(
      fc.record({
        kind: fc.constantFrom('set', 'cut', 'insert', 'truncate'),
        at: fc.nat(),
        byte: fc.integer({ min: 0, max: 255 }),
      }),
      { minLength: 1, maxLength: 6 },
    ),
  })
  .map(({ base, edits }) => {
    let b = Buffer.from(base);
    for (const e of edits) {
      const at = b.length === 0 ? 0 : e.at % b.length;
      if (e.kind === 'set' && b.length > 0) b[at] = e.byte;
      else if (e.kind === 'cut') b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
      else if (e.kind === 'insert')
        b = Buffer.concat([b.subarray(0, at), Buffer.from([e.byte]), b.subarray(at)]);
      else b = b.subarray(0, at);
    }
    return b;
  });

describe('decoder under hostile input', () => {
  it('arbitrary bytes → a frame or SpopError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        decodeAndReadAll(bytes);
      }),
      OPTS,
    );
  });

  it('arbitrary bytes after a valid NOTIFY header → a frame or SpopError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (payload) => {
        decodeAndReadAll(Buffer.concat([Buffer.from('03000000010101', 'hex'), payload]));
      }),
      OPTS,
    );
  });

  it('mutated real frames → a frame or SpopError', () => {
    let errors = 0;
    fc.assert(
      fc.property(mutatedFrame, (bytes) => {
        if (decodeAndReadAll(bytes) instanceof SpopError) errors++;
      }),
      OPTS,
    );
    expect(errors).toBeGreaterThan(0); // the mutations do reach the error paths
  });

  it('every truncation of every real frame is rejected or decodes a prefix-consistent frame', () => {
    for (const base of realFrames) {
      for (let i = 0; i < base.length; i++) {
        const r = decodeAndReadAll(base.subarray(0, i));
        if (!(r instanceof SpopError)) expect(r.type).toBe(base[0]);
      }
    }
  });
});

describe('framer under hostile input', () => {
  it('arbitrary chunks → frames or SpopError, every byte consumed', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }),
        fc.integer({ min: 7, max: 512 }),
        (chunks, limit) => {
          const framer = new Framer(limit);
          try {
            for (const c of chunks) {
              framer.push(Buffer.from(c));
              let guard = 0;
              while (framer.next()) {
                expect(framer.end - framer.start).toBeGreaterThanOrEqual(7);
                expect(framer.end - framer.start).toBeLessThanOrEqual(limit);
                expect(++guard).toBeLessThan(1000);
              }
            }
          } catch (err) {
            if (!(err instanceof SpopError)) throw err;
          }
        },
      ),
      OPTS,
    );
  });

  it('length-prefixed mutated frames in random chunks → frames or SpopError', () => {
    fc.assert(
      fc.property(fc.array(mutatedFrame, { minLength: 1, maxLength: 5 }), fc.nat(), (frames, seed) => {
        const stream = Buffer.concat(
          frames.map((f) => {
            const h = Buffer.alloc(4);
            h.writeUInt32BE(f.length, 0);
            return Buffer.concat([h, f]);
          }),
        );
        const framer = new Framer(16380);
        let pos = 0;
        let step = (seed % 97) + 1;
        try {
          while (pos < stream.length) {
            framer.push(stream.subarray(pos, pos + step));
            pos += step;
            step = (step * 7 + 3) % 101 || 1;
            while (framer.next()) decodeAndReadAll(framer.frame.subarray(framer.start, framer.end));
          }
        } catch (err) {
          if (!(err instanceof SpopError)) throw err;
        }
      }),
      { numRuns: 1000, interruptAfterTimeLimit: 4000 },
    );
  });
});
