/**
 * Base of the project's error family: a stable machine-readable `code` (never match on
 * `message`) and an optional `cause`. The SPOP layer (SpopError, HandlerTimeoutError) and the
 * auth engine (AuthError) both extend it, without depending on each other.
 */
export class AgentError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A command-line mistake: the CLI prints it with the usage text and exits 2. */
export class UsageError extends AgentError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}
