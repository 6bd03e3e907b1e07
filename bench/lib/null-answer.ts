/**
 * The null agent's answer (bench/null-agent.ts, and its in-process twin in bench/handler.ts):
 * the SET-VARs of an allow, built by the product's own encoder from a decision's fields.
 */
import { decisionActions } from '../../src/agent/vars.js';
import { makeDecision, NO_CLAIMS } from '../../src/auth/decision.js';
import type { Action } from '../../src/spop/index.js';

/** The fields of an allow decision, as `bench:e2e` passes them with `--decision` (JSON). */
export interface NullAnswer {
  sub: string | null;
  iss: string | null;
  role: string | null;
  tag: string | null;
  rule: string | null;
  claims: [string, string | number | boolean][];
}

export const DEFAULT_NULL_ANSWER: NullAnswer = {
  sub: 'load-0',
  iss: 'urn:spoe-authz:load',
  role: 'worker',
  tag: null,
  rule: 'null-agent',
  claims: [],
};

export function nullAnswerActions(a: NullAnswer = DEFAULT_NULL_ANSWER): Action[] {
  return decisionActions(
    makeDecision(
      'ok',
      a.sub,
      a.iss,
      a.role,
      a.tag,
      a.rule,
      'hit',
      a.claims.length === 0 ? NO_CLAIMS : a.claims,
    ),
  );
}
