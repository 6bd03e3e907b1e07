import { AgentError } from '../errors.js';
import { STATUS_MESSAGES, Status } from './constants.js';

export { AgentError };

/** Stable codes of {@link SpopError}. */
export const SpopErrorCode = {
  /** A read ran past the end of the frame. */
  TRUNCATED: 'ERR_SPOP_TRUNCATED',
  /** Structurally wrong frame or value (bad type, reserved data type, bad header ...). */
  INVALID: 'ERR_SPOP_INVALID',
  /** Varint longer than 10 bytes or above 2^64-1. */
  VARINT: 'ERR_SPOP_VARINT',
  /** Declared frame length above the current limit. */
  TOO_BIG: 'ERR_SPOP_TOO_BIG',
  /** Declared frame length below the 7-byte minimum. */
  TOO_SMALL: 'ERR_SPOP_TOO_SMALL',
  /** Frame without FIN or a type 0 (UNSET) continuation. */
  FRAGMENTATION: 'ERR_SPOP_FRAGMENTATION',
  /** No HAPROXY-HELLO within `helloTimeoutMs`, or a frame not completed within `frameTimeoutMs`. */
  TIMEOUT: 'ERR_SPOP_TIMEOUT',
  /** Frame type not allowed in the current connection state. */
  UNEXPECTED_FRAME: 'ERR_SPOP_UNEXPECTED_FRAME',
  /** HELLO negotiation failures (status 5-9). */
  NO_VERSION: 'ERR_SPOP_NO_VERSION',
  NO_FRAME_SIZE: 'ERR_SPOP_NO_FRAME_SIZE',
  NO_CAPABILITIES: 'ERR_SPOP_NO_CAPABILITIES',
  BAD_VERSION: 'ERR_SPOP_BAD_VERSION',
  BAD_FRAME_SIZE: 'ERR_SPOP_BAD_FRAME_SIZE',
} as const;
export type SpopErrorCode = (typeof SpopErrorCode)[keyof typeof SpopErrorCode];

/**
 * A protocol error. `status` is the SPOP DISCONNECT status code the connection answers with
 * (3 too big, 4 invalid, 5-9 handshake, 10 fragmentation, ...).
 */
export class SpopError extends AgentError {
  readonly status: number;

  constructor(code: SpopErrorCode, status: number, message?: string, options?: { cause?: unknown }) {
    super(code, message ?? STATUS_MESSAGES[status] ?? 'SPOP error', options);
    this.status = status;
  }
}

/** The handler did not settle within `handlerTimeoutMs`; given to `fallbackActions`. */
export class HandlerTimeoutError extends AgentError {
  readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    super('ERR_HANDLER_TIMEOUT', `NOTIFY handler did not settle within ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

// Shared instances would lose the stack but save an allocation on hostile input; errors are
// rare and end the connection, so clarity wins: a fresh error each time.
export function truncated(what: string): SpopError {
  return new SpopError(SpopErrorCode.TRUNCATED, Status.INVALID, `truncated frame: ${what}`);
}

export function invalid(message: string): SpopError {
  return new SpopError(SpopErrorCode.INVALID, Status.INVALID, message);
}
