/**
 * The SPOE contract, answer side: a Decision → SET-VAR actions in txn scope. HAProxy adds
 * the var-prefix (`option var-prefix auth` → `txn.auth.allow`). Null fields are not sent,
 * so `var(txn.auth.sub) -m found` means "a subject was verified".
 */
import type { Decision } from '../auth/decision.js';
import { type Action, VarScope } from '../spop/index.js';

/** Variable names (without scope and prefix). Final: haproxy.cfg and users' ACLs use them. */
export const VAR = {
  allow: 'allow',
  status: 'status',
  reason: 'reason',
  sub: 'sub',
  iss: 'iss',
  role: 'role',
  tag: 'tag',
  rule: 'rule',
  cache: 'cache',
} as const;

/** Prefix of forwarded-claim variables: `claim_<name>`. */
export const CLAIM_VAR_PREFIX = 'claim_';

const TXN = VarScope.TXN;

/** Builds the ACK actions for one decision. */
export function decisionActions(d: Decision): Action[] {
  const out: Action[] = [
    { op: 'set', scope: TXN, name: VAR.allow, value: d.allow },
    { op: 'set', scope: TXN, name: VAR.status, value: d.status },
    { op: 'set', scope: TXN, name: VAR.reason, value: d.reason },
  ];
  if (d.sub !== null) out.push({ op: 'set', scope: TXN, name: VAR.sub, value: d.sub });
  if (d.iss !== null) out.push({ op: 'set', scope: TXN, name: VAR.iss, value: d.iss });
  if (d.role !== null) out.push({ op: 'set', scope: TXN, name: VAR.role, value: d.role });
  if (d.tag !== null) out.push({ op: 'set', scope: TXN, name: VAR.tag, value: d.tag });
  if (d.rule !== null) out.push({ op: 'set', scope: TXN, name: VAR.rule, value: d.rule });
  if (d.cache !== null) out.push({ op: 'set', scope: TXN, name: VAR.cache, value: d.cache });
  for (const [name, value] of d.claims) {
    // INT64 carries integers only; a fractional claim goes as its text form.
    const v = typeof value === 'number' && !Number.isSafeInteger(value) ? String(value) : value;
    out.push({ op: 'set', scope: TXN, name: claimVarName(name), value: v });
  }
  return out;
}

const claimNames = new Map<string, string>();

/** `claim_<name>`, interned so the encoder's name cache sees one string per claim. */
export function claimVarName(name: string): string {
  let v = claimNames.get(name);
  if (v === undefined) {
    v = CLAIM_VAR_PREFIX + name;
    claimNames.set(name, v);
  }
  return v;
}

/**
 * The ACK when the agent could not decide (handler threw or exceeded its deadline): deny
 * with 503 and no reason, so haproxy.cfg answers "authorization unavailable". Never allow.
 */
export const FAIL_CLOSED_ACTIONS: readonly Action[] = Object.freeze([
  { op: 'set', scope: TXN, name: VAR.allow, value: false },
  { op: 'set', scope: TXN, name: VAR.status, value: 503 },
]);
