/**
 * The null agent's answer (bench/null-agent.ts, and its in-process twin in bench/handler.ts):
 * the SET-VARs of an allow, built by the product's own encoder from a decision's fields.
 */
import { type KeyObject, verify } from 'node:crypto';
import { decisionActions } from '../../src/agent/vars.js';
import { makeDecision, NO_CLAIMS } from '../../src/auth/decision.js';
import type { Action, NotifyHandler } from '../../src/spop/index.js';

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

/** What the null agent answers when the one signature check fails. */
export const NULL_DENY: Action[] = decisionActions(
  makeDecision('bad_signature', null, null, null, null, null, null, NO_CLAIMS),
);

/**
 * One RS256 check of the `authorization` arg's Bearer token (the signature over
 * `header.payload`; no claims, no cache, no policy). The null agent's `--verify-pem` mode.
 */
export function rs256Holds(key: KeyObject, authorization: string | null): boolean {
  if (authorization === null || !authorization.startsWith('Bearer ')) return false;
  const dot = authorization.lastIndexOf('.');
  if (dot < 7) return false;
  return verify(
    'sha256',
    Buffer.from(authorization.slice(7, dot), 'latin1'),
    key,
    Buffer.from(authorization.slice(dot + 1), 'base64url'),
  );
}

/** The null agent's handler: `allow` for every NOTIFY, or with `key` after one RS256 check. */
export function nullHandler(allow: Action[], key: KeyObject | null = null): NotifyHandler {
  if (key === null) return () => allow;
  return (notify) =>
    rs256Holds(key, notify.message('authorize')?.getString('authorization') ?? null) ? allow : NULL_DENY;
}
