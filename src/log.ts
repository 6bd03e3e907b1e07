/** pino JSON to stdout. Tokens never reach a log line: they are not logged, and redaction backs that up. */
import { type Logger, pino } from 'pino';

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { name: 'spoe-authz', pid: process.pid },
    redact: {
      paths: ['authorization', 'cookie', 'token', '*.authorization', '*.cookie', '*.token', 'req.headers'],
      censor: '[redacted]',
    },
  });
}
