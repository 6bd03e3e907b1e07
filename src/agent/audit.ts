/** The audit line: one per decision, with its own switch (not debug noise). Never the token. */
import type { Logger } from 'pino';
import type { AuthzRequest, Decision } from '../auth/decision.js';

export type { AuditMode } from '../config/schema.js';

/** Logs who, what route, the decision, why, which rule, the unique-id and the latency. */
export function auditDecision(log: Logger, req: AuthzRequest | null, d: Decision, seconds: number): void {
  log.info(
    {
      audit: true,
      id: req?.id ?? null,
      src: req?.src ?? null,
      method: req?.method ?? null,
      path: req?.path ?? null,
      host: req?.host ?? null,
      allow: d.allow,
      status: d.status,
      reason: d.reason,
      sub: d.sub,
      iss: d.iss,
      role: d.role,
      rule: d.rule,
      tag: d.tag,
      cache: d.cache,
      ms: Math.round(seconds * 1e6) / 1e3,
    },
    'decision',
  );
}
