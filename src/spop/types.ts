/** Public types shared by the server and its connections. */
import type { Action } from './actions.js';
import type { ActionList } from './encoded-action.js';
import type { SpopLogger } from './logger.js';
import type { Notify } from './notify.js';

/** Per-NOTIFY context: which connection it came on and that connection's child logger. */
export interface NotifyContext {
  readonly connectionId: number;
  readonly logger: SpopLogger;
}

/**
 * Decides the ACK of one NOTIFY. May return synchronously (cheapest) or a promise. A throw,
 * a rejection, a timeout or an unencodable result yields an ACK of `fallbackActions(err)`.
 * `notify` stays readable after an `await`. Returning the same {@link ActionList} for repeated
 * answers saves encoding them per ACK.
 */
export type NotifyHandler = (notify: Notify, ctx: NotifyContext) => HandlerResult | Promise<HandlerResult>;

/** A NOTIFY's answer: its actions, or the same actions encoded once (ActionList). */
export type HandlerResult = readonly Action[] | ActionList;

/** Why a handler produced no usable actions. */
export type HandlerFailure = 'throw' | 'reject' | 'timeout' | 'invalid-result';

/** Metrics hook payloads (`options.onEvent`); emitted synchronously, keep the callback cheap. */
export type SpopEvent =
  | { readonly type: 'connection-open'; readonly connectionId: number }
  | { readonly type: 'connection-rejected'; readonly reason: 'max-connections' }
  /** Closed with AGENT-DISCONNECT 13 to make room for a new connection (`limitPolicy`). */
  | { readonly type: 'connection-evicted'; readonly connectionId: number; readonly handshaking: boolean }
  | { readonly type: 'connection-close'; readonly connectionId: number }
  | {
      readonly type: 'hello';
      readonly connectionId: number;
      readonly maxFrameSize: number;
      readonly pipelining: boolean;
      readonly healthcheck: boolean;
      readonly engineId: string | null;
    }
  | {
      readonly type: 'ack';
      readonly connectionId: number;
      readonly durationMs: number;
      readonly fallback: boolean;
    }
  | {
      readonly type: 'handler-error';
      readonly connectionId: number;
      readonly reason: HandlerFailure;
      readonly error: unknown;
    }
  | {
      readonly type: 'disconnect';
      readonly connectionId: number;
      /** `sent`: our AGENT-DISCONNECT; `received`: HAPROXY-DISCONNECT. */
      readonly direction: 'sent' | 'received';
      readonly status: number;
    };

/** Live counters; `connections` is the number currently open. */
export interface SpopStats {
  connections: number;
  notifies: number;
  acks: number;
  handlerErrors: number;
  /** The same NOTIFYs, by why the handler failed (`timeout`: `handlerTimeoutMs` passed). */
  handlerErrorsByReason: Partial<Record<HandlerFailure, number>>;
  /** Connections closed to make room at `maxConnections` (see `limitPolicy`). */
  evictions: number;
  /** New connections closed at `maxConnections` because nothing could be evicted. */
  refused: number;
  /** AGENT-DISCONNECT frames sent, by status code. */
  disconnectsByStatus: Record<number, number>;
}
