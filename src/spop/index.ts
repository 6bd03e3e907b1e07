/** Public API of the SPOP 2.0 protocol layer (agent side). Knows nothing of auth or config. */
export type { Action } from './actions.js';
export { NOOP_VAR } from './connection.js';
export {
  ActionType,
  DATA_TYPE_NAMES,
  DataType,
  DEFAULT_MAX_FRAME_SIZE,
  FrameFlag,
  FrameType,
  MIN_MAX_FRAME_SIZE,
  SPOP_VERSION,
  STATUS_MESSAGES,
  Status,
  VarScope,
} from './constants.js';
export {
  type DecodedAction,
  type DecodedFrame,
  decodeFrame,
  type KvEntry,
} from './decode.js';
export {
  encodeAck,
  encodeAgentDisconnect,
  encodeAgentHello,
  encodeFrame,
  type FrameSpec,
  type NamedValue,
} from './encode.js';
export {
  ActionList,
  type CacheableValue,
  compileSetVar,
  EncodedSetVar,
  SetVarCache,
} from './encoded-action.js';
export { AgentError, HandlerTimeoutError, SpopError, SpopErrorCode } from './errors.js';
export { compileActions, FrameWriter } from './frame-writer.js';
export { Framer } from './framer.js';
export { type HelloResult, negotiateHello } from './hello.js';
export { type SpopLogger, silentSpopLogger } from './logger.js';
export { Notify, type NotifyArg, NotifyMessage } from './notify.js';
export { Reader } from './reader.js';
export {
  type HandlerFailure,
  type HandlerResult,
  LIMIT_POLICIES,
  type LimitPolicy,
  type NotifyContext,
  type NotifyHandler,
  type SpopEvent,
  SpopServer,
  type SpopServerOptions,
  type SpopStats,
} from './server.js';
export type { ExplicitValue, TypedValue, VarValue } from './typed-data.js';
export { decodeVarint, encodeVarint, varintLength } from './varint.js';
