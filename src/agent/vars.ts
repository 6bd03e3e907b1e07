/**
 * The SPOE contract, answer side: a Decision → SET-VAR actions in txn scope. HAProxy adds
 * the var-prefix (`option var-prefix auth` → `txn.auth.allow`). Null fields are not sent,
 * so `var(txn.auth.sub) -m found` means "a subject was verified".
 */
import type { Decision } from '../auth/decision.js';
import {
  type Action,
  type ActionList,
  compileActions,
  type HandlerResult,
  SetVarCache,
  VarScope,
} from '../spop/index.js';
import { CLAIM_VAR_PREFIX, VAR } from '../var-names.js';

export { VAR };

const TXN = VarScope.TXN;

// Each var's SET-VAR per distinct value, encoded once: reasons, statuses, roles, tags, rules,
// issuers and cache outcomes come from small sets, subjects repeat while their tokens are
// cached (bench/codec.ts compares this with encoding every action).
const ALLOW = new SetVarCache(TXN, VAR.allow);
const STATUS = new SetVarCache(TXN, VAR.status);
const REASON = new SetVarCache(TXN, VAR.reason);
const SUB = new SetVarCache(TXN, VAR.sub, 4096);
const ISS = new SetVarCache(TXN, VAR.iss);
const ROLE = new SetVarCache(TXN, VAR.role);
const TAG = new SetVarCache(TXN, VAR.tag);
const RULE = new SetVarCache(TXN, VAR.rule);
const CACHE = new SetVarCache(TXN, VAR.cache);

/** The SET-VAR of the normalised path (see handler.ts canonicalPath). */
export function pathAction(path: string): Action {
  return { op: 'set', scope: TXN, name: VAR.path, value: path };
}

/** Builds the ACK actions for one decision. */
export function decisionActions(d: Decision): Action[] {
  const out: Action[] = [ALLOW.action(d.allow), STATUS.action(d.status), REASON.action(d.reason)];
  if (d.sub !== null) out.push(SUB.action(d.sub));
  if (d.iss !== null) out.push(ISS.action(d.iss));
  if (d.role !== null) out.push(ROLE.action(d.role));
  if (d.tag !== null) out.push(TAG.action(d.tag));
  if (d.rule !== null) out.push(RULE.action(d.rule));
  if (d.cache !== null) out.push(CACHE.action(d.cache));
  for (const [name, value] of d.claims) {
    // INT64 carries integers only; a fractional claim goes as its text form.
    const v = typeof value === 'number' && !Number.isSafeInteger(value) ? String(value) : value;
    out.push({ op: 'set', scope: TXN, name: claimVarName(name), value: v });
  }
  return out;
}

/**
 * ACKs of remembered decisions, encoded once, for the most recently compiled
 * {@link MAX_COMPILED_ACKS} of them. An encoded ACK costs about as much memory as the cached
 * token it answers for, so keeping one per remembered decision would double the token cache's
 * footprint; the ring bounds it, and hot tokens stay in it because they are compiled again
 * as soon as they fall out.
 */
export const MAX_COMPILED_ACKS = 8192;
const compiledAcks = new WeakMap<Decision, ActionList>();
const compiledRing: (Decision | undefined)[] = new Array<Decision | undefined>(MAX_COMPILED_ACKS);
let ringNext = 0;

/**
 * The ACK of a decision. Cache hits are remembered decisions (engine.ts) that recur for every
 * request of a token on a route: their actions are encoded once and copied into each ACK.
 */
export function decisionAck(d: Decision): HandlerResult {
  if (d.cache !== 'hit') return decisionActions(d);
  let list = compiledAcks.get(d);
  if (list === undefined) {
    list = compileActions(decisionActions(d));
    const evicted = compiledRing[ringNext];
    if (evicted !== undefined) compiledAcks.delete(evicted);
    compiledRing[ringNext] = d;
    ringNext = (ringNext + 1) % MAX_COMPILED_ACKS;
    compiledAcks.set(d, list);
  }
  return list;
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
