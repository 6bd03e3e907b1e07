/**
 * SPOP 2.0 wire constants (reference §1.2, §1.3, §1.5, §1.9, §1.10).
 * `as const` objects with derived unions: erasable syntax, no enums.
 */

/** Frame types (spoe-t.h `enum spop_frame_type`). */
export const FrameType = {
  /** Fragment continuation, SPOP 2.x only; we never announce fragmentation. */
  UNSET: 0,
  HAPROXY_HELLO: 1,
  HAPROXY_DISCONNECT: 2,
  NOTIFY: 3,
  AGENT_HELLO: 101,
  AGENT_DISCONNECT: 102,
  ACK: 103,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Frame flags, a 32-bit big-endian word; bit 0 = LSB. */
export const FrameFlag = { FIN: 0x1, ABORT: 0x2 } as const;

/** TYPED-DATA type ids: low nibble of the type byte. */
export const DataType = {
  NULL: 0,
  BOOL: 1,
  INT32: 2,
  UINT32: 3,
  INT64: 4,
  UINT64: 5,
  IPV4: 6,
  IPV6: 7,
  STRING: 8,
  BINARY: 9,
} as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

/** Lower-case names, as used by the fixtures' JSON (`int64`, `ipv4`, ...). */
export const DATA_TYPE_NAMES: readonly string[] = [
  'null',
  'bool',
  'int32',
  'uint32',
  'int64',
  'uint64',
  'ipv4',
  'ipv6',
  'string',
  'binary',
];

/** BOOL value lives in flag bit 0 of the type byte: 0x11 true, 0x01 false. */
export const DATA_FLAG_TRUE = 0x10;

/** Variable scopes of SET-VAR / UNSET-VAR. */
export const VarScope = { PROC: 0, SESS: 1, TXN: 2, REQ: 3, RES: 4 } as const;
export type VarScope = (typeof VarScope)[keyof typeof VarScope];

/** ACK action types and their fixed NB-ARGS. */
export const ActionType = { SET_VAR: 1, UNSET_VAR: 2 } as const;
export type ActionType = (typeof ActionType)[keyof typeof ActionType];

/** DISCONNECT status codes (`enum spop_error`). */
export const Status = {
  NORMAL: 0,
  IO: 1,
  TIMEOUT: 2,
  TOO_BIG: 3,
  INVALID: 4,
  NO_VERSION: 5,
  NO_FRAME_SIZE: 6,
  NO_CAPABILITIES: 7,
  BAD_VERSION: 8,
  BAD_FRAME_SIZE: 9,
  FRAGMENTATION: 10,
  INTERLACED_FRAMES: 11,
  FRAME_ID_NOT_FOUND: 12,
  RESOURCE: 13,
  UNKNOWN: 99,
} as const;
export type Status = (typeof Status)[keyof typeof Status];

/** Reasons from HAProxy's `spop_err_reasons[]`. */
export const STATUS_MESSAGES: Readonly<Record<number, string>> = {
  0: 'normal',
  1: 'I/O error',
  2: 'a timeout occurred',
  3: 'frame is too big',
  4: 'invalid frame received',
  5: 'version value not found',
  6: 'max-frame-size value not found',
  7: 'capabilities value not found',
  8: 'unsupported version',
  9: 'max-frame-size too big or too small',
  10: 'payload fragmentation is not supported',
  11: 'invalid interlaced frames',
  12: 'frame-id not found',
  13: 'resource allocation error',
  99: 'unknown error',
};

/** The only protocol version we speak. */
export const SPOP_VERSION = '2.0';
/** Default max-frame-size: HAProxy's `tune.bufsize - 4`. Excludes the 4-byte length prefix. */
export const DEFAULT_MAX_FRAME_SIZE = 16380;
/** Lowest max-frame-size HAProxy accepts in an AGENT-HELLO (§1.7). */
export const MIN_MAX_FRAME_SIZE = 256;
/** type (1) + flags (4) + two 1-byte varints (§1.1). */
export const MIN_FRAME_SIZE = 7;
/** Frame length prefix: u32 big-endian. */
export const LENGTH_PREFIX_SIZE = 4;
/** HAProxy decodes varints into 64 bits; longer encodings are rejected (§1.4). */
export const MAX_VARINT_BYTES = 10;
