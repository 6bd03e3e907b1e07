/**
 * Frame decoding (§1.1, §1.6, §1.9). `decodeFrame` handles every frame type of both sides
 * (tests and tools use it for agent frames too); the connection uses `readFrameHeader` and
 * `decodeNotifyPayload` directly on its reused reader.
 */
import { ActionType, FrameType, VarScope } from './constants.js';
import { invalid } from './errors.js';
import { decodeNotifyPayload, type Notify } from './notify.js';
import { Reader } from './reader.js';
import { decodeTyped, type TypedValue } from './typed-data.js';

/** Mutable frame header, filled in place by {@link readFrameHeader}. */
export class FrameHeader {
  type = 0;
  flags = 0;
  streamId: number | bigint = 0;
  frameId: number | bigint = 0;
}

/** Reads `<TYPE:1><FLAGS:4 BE><STREAM-ID:varint><FRAME-ID:varint>`; `r` is left at the payload. */
export function readFrameHeader(r: Reader, h: FrameHeader): void {
  h.type = r.u8();
  h.flags = r.u32();
  h.streamId = r.varint();
  h.frameId = r.varint();
}

/** A KV-LIST item (HELLO, DISCONNECT). */
export interface KvEntry {
  readonly name: string;
  readonly type: TypedValue['type'];
  readonly value: TypedValue['value'];
}

/** Decodes a KV-LIST running to `r.end`. */
export function decodeKvList(r: Reader): KvEntry[] {
  const out: KvEntry[] = [];
  const buf = Buffer.from(r.buf.buffer, r.buf.byteOffset, r.buf.byteLength);
  while (r.pos < r.end) {
    const len = r.length();
    const start = r.skip(len);
    r.typed();
    const v = decodeTyped(r.buf, r.typeByte, r.dataStart, r.dataEnd);
    out.push({ name: buf.toString('utf8', start, start + len), type: v.type, value: v.value });
  }
  return out;
}

/** An action read back from an ACK. */
export type DecodedAction =
  | { readonly op: 'set'; readonly scope: VarScope; readonly name: string; readonly value: TypedValue }
  | { readonly op: 'unset'; readonly scope: VarScope; readonly name: string };

function readScope(r: Reader): VarScope {
  const s = r.u8();
  if (s > VarScope.RES) throw invalid(`unknown variable scope ${s}`);
  return s as VarScope;
}

/** Decodes a LIST-OF-ACTIONS; unknown action types or arg counts are invalid. */
export function decodeActionList(r: Reader): DecodedAction[] {
  const out: DecodedAction[] = [];
  const buf = Buffer.from(r.buf.buffer, r.buf.byteOffset, r.buf.byteLength);
  while (r.pos < r.end) {
    const type = r.u8();
    const nbArgs = r.u8();
    if (type === ActionType.SET_VAR && nbArgs === 3) {
      const scope = readScope(r);
      const len = r.length();
      const start = r.skip(len);
      r.typed();
      const value = decodeTyped(r.buf, r.typeByte, r.dataStart, r.dataEnd);
      out.push({ op: 'set', scope, name: buf.toString('utf8', start, start + len), value });
    } else if (type === ActionType.UNSET_VAR && nbArgs === 2) {
      const scope = readScope(r);
      const len = r.length();
      const start = r.skip(len);
      out.push({ op: 'unset', scope, name: buf.toString('utf8', start, start + len) });
    } else {
      throw invalid(`unknown action ${type} with ${nbArgs} args`);
    }
  }
  return out;
}

interface HeaderFields {
  readonly flags: number;
  readonly streamId: number | bigint;
  readonly frameId: number | bigint;
}

/** A fully decoded frame. */
export type DecodedFrame =
  | (HeaderFields & {
      readonly type:
        | typeof FrameType.HAPROXY_HELLO
        | typeof FrameType.HAPROXY_DISCONNECT
        | typeof FrameType.AGENT_HELLO
        | typeof FrameType.AGENT_DISCONNECT;
      readonly kv: KvEntry[];
    })
  | (HeaderFields & { readonly type: typeof FrameType.NOTIFY; readonly notify: Notify })
  | (HeaderFields & { readonly type: typeof FrameType.ACK; readonly actions: DecodedAction[] })
  | (HeaderFields & { readonly type: number; readonly payload: Buffer });

/**
 * Decodes one frame body (without its 4-byte length prefix) in `frame[start, end)`.
 * Throws SpopError on truncated or malformed input. Unknown types keep their raw payload.
 */
export function decodeFrame(frame: Uint8Array, start = 0, end = frame.length): DecodedFrame {
  const buf = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  const r = new Reader(buf, start, end);
  const h = new FrameHeader();
  readFrameHeader(r, h);
  const { flags, streamId, frameId } = h;
  switch (h.type) {
    case FrameType.HAPROXY_HELLO:
    case FrameType.HAPROXY_DISCONNECT:
    case FrameType.AGENT_HELLO:
    case FrameType.AGENT_DISCONNECT:
      return { type: h.type, flags, streamId, frameId, kv: decodeKvList(r) };
    case FrameType.NOTIFY:
      return {
        type: h.type,
        flags,
        streamId,
        frameId,
        notify: decodeNotifyPayload(r, buf, streamId, frameId),
      };
    case FrameType.ACK:
      return { type: h.type, flags, streamId, frameId, actions: decodeActionList(r) };
    default:
      return { type: h.type, flags, streamId, frameId, payload: buf.subarray(r.pos, end) };
  }
}
