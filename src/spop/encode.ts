/**
 * One-shot frame encoders: each returns ONE Buffer holding `<u32 BE length><frame>`, ready for
 * a single `socket.write`. They share a module-level {@link FrameWriter}; the returned views
 * point into slabs that are never rewritten, so no copy is made.
 */
import type { Action } from './actions.js';
import { FrameFlag, STATUS_MESSAGES } from './constants.js';
import { FrameWriter } from './frame-writer.js';
import type { VarValue } from './typed-data.js';

const shared = new FrameWriter();

function done(w: FrameWriter): Buffer {
  return w.take()!;
}

/** ACK with the given actions (§1.9); an empty list gives the 11-byte empty ACK. */
export function encodeAck(
  streamId: number | bigint,
  frameId: number | bigint,
  actions: readonly Action[],
): Buffer {
  shared.ack(streamId, frameId, actions);
  return done(shared);
}

/** AGENT-HELLO (§1.7): version "2.0", max-frame-size, capabilities (e.g. "pipelining" or ""). */
export function encodeAgentHello(maxFrameSize: number, capabilities: string): Buffer {
  shared.agentHello(maxFrameSize, capabilities);
  return done(shared);
}

/** AGENT-DISCONNECT (§1.10); the message defaults to HAProxy's reason for the status. */
export function encodeAgentDisconnect(status: number, message?: string): Buffer {
  shared.agentDisconnect(status, message ?? STATUS_MESSAGES[status] ?? 'unknown error');
  return done(shared);
}

/** A named value of a KV-LIST or a message's args. */
export interface NamedValue {
  readonly name: string;
  readonly value: VarValue;
}

/** Any frame, for tests, tools and clients speaking HAProxy's side. */
export interface FrameSpec {
  readonly type: number;
  /** Default FIN. */
  readonly flags?: number;
  readonly streamId?: number | bigint;
  readonly frameId?: number | bigint;
  /** KV-LIST payload (HELLO, DISCONNECT). */
  readonly kv?: readonly NamedValue[];
  /** LIST-OF-MESSAGES payload (NOTIFY). */
  readonly messages?: readonly { readonly name: string; readonly args: readonly NamedValue[] }[];
  /** LIST-OF-ACTIONS payload (ACK). */
  readonly actions?: readonly Action[];
  /** Raw payload appended after the above. */
  readonly payload?: Uint8Array;
}

/** Encodes any frame from a {@link FrameSpec}. Throws TypeError on unsupported values. */
export function encodeFrame(spec: FrameSpec): Buffer {
  const w = shared;
  w.begin(spec.type, spec.streamId ?? 0, spec.frameId ?? 0, spec.flags ?? FrameFlag.FIN);
  try {
    for (const e of spec.kv ?? []) {
      w.string(e.name);
      w.typed(e.value);
    }
    for (const m of spec.messages ?? []) {
      if (m.args.length > 255) throw new TypeError('a message carries at most 255 args');
      w.string(m.name);
      w.u8(m.args.length);
      for (const a of m.args) {
        w.string(a.name);
        w.typed(a.value);
      }
    }
    for (const a of spec.actions ?? []) w.action(a);
    if (spec.payload !== undefined) w.bytes(spec.payload);
  } catch (err) {
    w.discardLast();
    throw err;
  }
  w.finish();
  return done(w);
}
