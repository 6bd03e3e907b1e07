import { describe, expect, it } from 'vitest';
import { decodeFrame, Framer, SpopError, Status } from '../../src/spop/index.js';
import { wireFixture } from './fixture-files.js';

/** Feeds chunks, returns the frame bodies as hex (copied when found). */
function run(framer: Framer, chunks: Buffer[]): string[] {
  const out: string[] = [];
  for (const c of chunks) {
    framer.push(c);
    while (framer.next()) out.push(framer.frame.subarray(framer.start, framer.end).toString('hex'));
  }
  return out;
}

function expectSpopError(fn: () => unknown, status: number, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(SpopError);
  expect((caught as SpopError).status).toBe(status);
  expect((caught as SpopError).code).toBe(code);
}

const FRAMES = ['hello', 'notify-typed-args', 'disconnect-idle-timeout'].map(wireFixture);
const STREAM = Buffer.concat(FRAMES);
const BODIES = FRAMES.map((f) => f.subarray(4).toString('hex'));

describe('Framer', () => {
  it('yields each frame of a three-frame stream in one chunk', () => {
    expect(run(new Framer(), [STREAM])).toEqual(BODIES);
  });

  it('handles every single split offset of the stream', () => {
    for (let i = 0; i <= STREAM.length; i++) {
      const got = run(new Framer(), [STREAM.subarray(0, i), STREAM.subarray(i)]);
      expect(got, `split at ${i}`).toEqual(BODIES);
    }
  });

  it('handles every pair of split offsets (three chunks)', () => {
    for (let i = 0; i <= STREAM.length; i += 3) {
      for (let j = i; j <= STREAM.length; j += 5) {
        const got = run(new Framer(), [STREAM.subarray(0, i), STREAM.subarray(i, j), STREAM.subarray(j)]);
        expect(got, `split at ${i}/${j}`).toEqual(BODIES);
      }
    }
  });

  it('handles a byte-at-a-time stream', () => {
    const chunks = [...STREAM].map((b) => Buffer.from([b]));
    expect(run(new Framer(), chunks)).toEqual(BODIES);
  });

  it('yields many frames from one chunk', () => {
    const many = Buffer.concat(Array.from({ length: 500 }, () => STREAM));
    const got = run(new Framer(), [many]);
    expect(got).toHaveLength(1500);
    expect(got.slice(-3)).toEqual(BODIES);
  });

  it('frames stay intact after later chunks arrive (views are never rewritten)', () => {
    const framer = new Framer();
    const views: Buffer[] = [];
    for (let i = 0; i < STREAM.length; i += 7) {
      framer.push(Buffer.from(STREAM.subarray(i, i + 7)));
      while (framer.next()) views.push(framer.frame.subarray(framer.start, framer.end));
    }
    expect(views.map((v) => v.toString('hex'))).toEqual(BODIES);
    expect(decodeFrame(views[1]!).type).toBe(3);
  });

  it('reports a partial frame', () => {
    const framer = new Framer();
    expect(run(framer, [STREAM.subarray(0, 2)])).toEqual([]);
    expect(framer.hasPartial).toBe(true);
    run(framer, [STREAM.subarray(2, FRAMES[0]!.length)]);
    expect(framer.hasPartial).toBe(false);
    run(framer, [STREAM.subarray(FRAMES[0]!.length, FRAMES[0]!.length + 10)]);
    expect(framer.hasPartial).toBe(true);
  });

  it.each([0, 1, 6])('rejects a declared length of %i (< 7) with status 4', (len) => {
    const b = Buffer.alloc(4 + len);
    b.writeUInt32BE(len, 0);
    expectSpopError(() => run(new Framer(), [b]), Status.INVALID, 'ERR_SPOP_TOO_SMALL');
  });

  it('accepts exactly 7 and exactly the limit', () => {
    const seven = Buffer.from('000000070300000001000a', 'hex');
    expect(run(new Framer(), [seven])).toEqual(['0300000001000a']);
    const big = Buffer.alloc(4 + 300);
    big.writeUInt32BE(300, 0);
    expect(run(new Framer(300), [big])).toHaveLength(1);
  });

  it('rejects a declared length above the limit with status 3, before buffering', () => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(16381, 0);
    expectSpopError(() => run(new Framer(16380), [head]), Status.TOO_BIG, 'ERR_SPOP_TOO_BIG');
    // the same with the length itself split across chunks
    const framer = new Framer(16380);
    framer.push(head.subarray(0, 3));
    expect(framer.next()).toBe(false);
    framer.push(head.subarray(3));
    expectSpopError(() => framer.next(), Status.TOO_BIG, 'ERR_SPOP_TOO_BIG');
  });

  it('applies a lowered limit (negotiated max-frame-size) to the next frame', () => {
    const framer = new Framer(16380);
    expect(run(framer, [FRAMES[0]!])).toHaveLength(1);
    framer.maxFrameSize = 256;
    expectSpopError(
      () => run(framer, [wireFixture('notify-create-flow-run')]),
      Status.TOO_BIG,
      'ERR_SPOP_TOO_BIG',
    );
  });

  it('rejects a TLS ClientHello at once: 16 03 01 ... is a huge length', () => {
    // First bytes of a real TLS 1.2/1.3 ClientHello record: handshake, version 3.1, length, type 1.
    const clientHello = Buffer.from('16030102000100' + '01fc0303', 'hex');
    const framer = new Framer(16380);
    framer.push(clientHello);
    expectSpopError(() => framer.next(), Status.TOO_BIG, 'ERR_SPOP_TOO_BIG');
  });
});
