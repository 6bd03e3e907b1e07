/**
 * The empty-ACK null agent (bench:e2e row 8): an AGENT-HELLO for the HELLO, and for each NOTIFY
 * an ACK with the NOTIFY's ids and no action, whatever the ids' varint lengths and however the
 * bytes are split across chunks.
 */
import { describe, expect, it } from 'vitest';
import { EmptyAckConnection } from '../../bench/lib/empty-ack.js';
import { type DecodedFrame, decodeFrame, encodeFrame, FrameType } from '../../src/spop/index.js';
import { helloKv } from '../helpers/spop-client.js';

/** The frames in `bytes` (each behind its 4-byte length). */
function frames(bytes: Buffer): DecodedFrame[] {
  const out: DecodedFrame[] = [];
  for (let p = 0; p < bytes.length; ) {
    const len = bytes.readUInt32BE(p);
    out.push(decodeFrame(bytes, p + 4, p + 4 + len));
    p += 4 + len;
  }
  return out;
}

const notify = (streamId: number | bigint, frameId: number | bigint) =>
  encodeFrame({
    type: FrameType.NOTIFY,
    streamId,
    frameId,
    messages: [{ name: 'authorize', args: [{ name: 'method', value: 'GET' }] }],
  });

describe('EmptyAckConnection', () => {
  it('answers the HELLO, then each NOTIFY with an empty ACK of the same ids', () => {
    const c = new EmptyAckConnection();
    const hello = frames(c.onData(encodeFrame({ type: FrameType.HAPROXY_HELLO, kv: helloKv() })));
    expect(hello.map((f) => f.type)).toEqual([FrameType.AGENT_HELLO]);
    const ids: [number | bigint, number | bigint][] = [
      [1, 1],
      [239, 240],
      [1_000_000, 3],
      [2n ** 40n, 2n ** 33n + 5n],
    ];
    const acks = frames(c.onData(Buffer.concat(ids.map(([s, f]) => notify(s, f)))));
    expect(acks).toHaveLength(ids.length);
    acks.forEach((a, i) => {
      expect(a).toMatchObject({ type: FrameType.ACK, actions: [] });
      if (a.type !== FrameType.ACK || !('streamId' in a)) throw new Error('not an ACK');
      expect(BigInt(a.streamId)).toBe(BigInt(ids[i]![0]));
      expect(BigInt(a.frameId)).toBe(BigInt(ids[i]![1]));
    });
    expect(c.notifies).toBe(ids.length);
    expect(c.close).toBe(false);
  });

  it('takes frames split anywhere, and closes after a DISCONNECT or a health check', () => {
    const c = new EmptyAckConnection();
    const bytes = Buffer.concat([
      encodeFrame({ type: FrameType.HAPROXY_HELLO, kv: helloKv() }),
      notify(7, 9),
      encodeFrame({ type: FrameType.HAPROXY_DISCONNECT, kv: [{ name: 'status-code', value: 0 }] }),
    ]);
    const out: Buffer[] = [];
    for (let p = 0; p < bytes.length; p += 3) out.push(Buffer.from(c.onData(bytes.subarray(p, p + 3))));
    expect(frames(Buffer.concat(out)).map((f) => f.type)).toEqual([
      FrameType.AGENT_HELLO,
      FrameType.ACK,
      FrameType.AGENT_DISCONNECT,
    ]);
    expect(c.close).toBe(true);

    const check = new EmptyAckConnection();
    check.onData(encodeFrame({ type: FrameType.HAPROXY_HELLO, kv: helloKv({ healthcheck: true }) }));
    expect(check.close).toBe(true);
  });
});
