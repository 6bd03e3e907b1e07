/** Config errors carry the path of every wrong field, so the process can stop with it. */
import type { z } from 'zod';
import { AgentError } from '../errors.js';

export interface ConfigIssue {
  /** Dotted path of the wrong field (`issuers.0.algorithms.1`); empty for the root. */
  readonly path: string;
  readonly message: string;
}

/** Code `config_invalid`: the config cannot be used; `issues` name each wrong field. */
export class ConfigError extends AgentError {
  declare readonly code: 'config_invalid';
  readonly issues: readonly ConfigIssue[];
  /** Where the config came from (file path, `environment`, `built-in development default`). */
  readonly source: string;

  constructor(source: string, issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    super('config_invalid', `invalid config (${source}): ${issues.map(formatIssue).join('; ')}`, options);
    this.source = source;
    this.issues = issues;
  }
}

/** `path: message` on one line (a message with line breaks is folded). */
export function formatIssue(issue: ConfigIssue): string {
  return `${issue.path || '(root)'}: ${issue.message.replace(/\s*\n\s*/g, ' ').trim()}`;
}

export function zodIssues(error: z.ZodError, prefix: readonly PropertyKey[] = []): ConfigIssue[] {
  return error.issues.map((i) => ({
    path: [...prefix, ...i.path].map((p) => String(p)).join('.'),
    message: i.message,
  }));
}
