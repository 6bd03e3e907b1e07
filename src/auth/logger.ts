/** The logging surface the engine needs; a pino Logger satisfies it. Never given a token. */
export interface AuthLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = () => {};
export const silentLogger: AuthLogger = { debug: noop, info: noop, warn: noop, error: noop };
