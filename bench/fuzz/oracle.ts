/**
 * What the agent must answer to a stream of frames, worked out independently of its connection
 * state machine (the codec's decode functions are shared): the ACKs it owes, and whether it
 * must end the conversation with an AGENT-DISCONNECT, with which kind of status. Reference:
 * docs/spop-reference.md §1.1-1.12 and the agent's README.
 */
import {
  type DecodedFrame,
  decodeFrame,
  FrameFlag,
  FrameType,
  negotiateHello,
  SpopError,
} from '../../src/spop/index.js';

/** How the agent must end (or not end) the conversation. */
export type Ending =
  /** No DISCONNECT: every NOTIFY answered, the connection stays open. */
  | 'open'
  /** A bad frame: AGENT-DISCONNECT with a non-zero status, after the ACKs of earlier NOTIFYs. */
  | 'bad'
  /** HAPROXY-DISCONNECT: AGENT-DISCONNECT (earlier ACKs may be dropped). */
  | 'disconnect'
  /** Health-check HELLO: AGENT-HELLO, then close without DISCONNECT. */
  | 'healthcheck';

export interface Expectation {
  readonly ending: Ending;
  /** Why, for reports: the index of the frame that ends it and what is wrong with it. */
  readonly why: string;
  /** `sid/fid` of each NOTIFY the agent must answer before the ending. */
  readonly acks: readonly string[];
  /** The first frame is a HELLO the agent accepts: an AGENT-HELLO comes first. */
  readonly helloOk: boolean;
}

export const ackKey = (sid: number | bigint, fid: number | bigint): string => `${sid}/${fid}`;

const MIN_FRAME = 7;

/**
 * `bodies`: the frames as the agent will cut them (length prefixes intact), in order.
 * `ourMax`: the agent's configured max-frame-size (the cap before HELLO).
 */
export function expect(bodies: readonly Buffer[], ourMax: number): Expectation {
  let running = false;
  let helloOk = false;
  let max = ourMax;
  const acks: string[] = [];
  const end = (ending: Ending, i: number, why: string): Expectation => ({
    ending,
    why: `frame ${i}: ${why}`,
    acks,
    helloOk,
  });
  for (let i = 0; i < bodies.length; i++) {
    const body = bodies[i]!;
    if (body.length < MIN_FRAME) return end('bad', i, `length ${body.length} below 7`);
    if (body.length > max) return end('bad', i, `length ${body.length} above max-frame-size ${max}`);
    let f: DecodedFrame;
    try {
      f = decodeFrame(body);
    } catch (err) {
      if (err instanceof SpopError) return end('bad', i, `undecodable: ${err.message}`);
      throw err;
    }
    const fin = (f.flags & FrameFlag.FIN) !== 0;
    const control = fin && f.streamId === 0 && f.frameId === 0;
    if (!running) {
      if (f.type === FrameType.HAPROXY_HELLO && 'kv' in f) {
        if (!control) return end('bad', i, 'HELLO without FIN or with non-zero ids');
        try {
          const h = negotiateHello(f.kv, ourMax);
          helloOk = true;
          if (h.healthcheck) return end('healthcheck', i, 'health-check HELLO');
          max = h.maxFrameSize;
          running = true;
          continue;
        } catch (err) {
          if (err instanceof SpopError) return end('bad', i, `HELLO refused: ${err.message}`);
          throw err;
        }
      }
      if (f.type === FrameType.HAPROXY_DISCONNECT)
        return control ? end('disconnect', i, 'HAPROXY-DISCONNECT') : end('bad', i, 'bad DISCONNECT header');
      return end('bad', i, `frame type ${f.type} before HELLO`);
    }
    switch (f.type) {
      case FrameType.NOTIFY:
        if (!fin) return end('bad', i, 'NOTIFY without FIN');
        acks.push(ackKey(f.streamId, f.frameId));
        continue;
      case FrameType.HAPROXY_DISCONNECT:
        return control ? end('disconnect', i, 'HAPROXY-DISCONNECT') : end('bad', i, 'bad DISCONNECT header');
      case FrameType.UNSET:
        return end('bad', i, 'fragment (type 0)');
      case FrameType.HAPROXY_HELLO:
      case FrameType.AGENT_HELLO:
      case FrameType.AGENT_DISCONNECT:
      case FrameType.ACK:
        return end('bad', i, `frame type ${f.type} after the handshake`);
      default:
        continue; // unknown types are skipped (§1.2)
    }
  }
  return { ending: 'open', why: 'all frames acceptable', acks, helloOk };
}
