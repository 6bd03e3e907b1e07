/**
 * The logging surface the protocol layer needs; a pino Logger satisfies it. One child per
 * connection (`child({ conn })`), nothing per frame above debug.
 */
export interface SpopLogger {
  debug(obj: object, msg?: string): void;
  debug(msg: string): void;
  info(obj: object, msg?: string): void;
  info(msg: string): void;
  warn(obj: object, msg?: string): void;
  warn(msg: string): void;
  error(obj: object, msg?: string): void;
  error(msg: string): void;
  child(bindings: Record<string, unknown>): SpopLogger;
}

const noop = () => {};

/** Drops everything; the default when no logger is given. */
export const silentSpopLogger: SpopLogger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentSpopLogger,
};
