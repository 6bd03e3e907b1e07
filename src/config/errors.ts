/** Config errors carry the path of every wrong field, so the process can stop with it. */
import type { z } from 'zod';

export interface ConfigIssue {
  /** Dotted path of the wrong field (`issuers.0.algorithms.1`); empty for the root. */
  readonly path: string;
  readonly message: string;
}

export class ConfigError extends Error {
  readonly code = 'config_invalid';
  readonly issues: readonly ConfigIssue[];
  /** Where the config came from (file path, `environment`, `built-in development default`). */
  readonly source: string;

  constructor(source: string, issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    super(`invalid config (${source}): ${issues.map(formatIssue).join('; ')}`, options);
    this.name = 'ConfigError';
    this.source = source;
    this.issues = issues;
  }
}

export function formatIssue(issue: ConfigIssue): string {
  return `${issue.path || '(root)'}: ${issue.message}`;
}

export function zodIssues(error: z.ZodError, prefix: readonly PropertyKey[] = []): ConfigIssue[] {
  return error.issues.map((i) => ({
    path: [...prefix, ...i.path].map((p) => String(p)).join('.'),
    message: i.message,
  }));
}
