/**
 * The SPOE contract, answer side: a Decision → SET-VAR actions in txn scope. HAProxy adds
 * the var-prefix (`option var-prefix auth` → `txn.auth.allow`). Null fields are not sent,
 * so `var(txn.auth.sub) -m found` means "a subject was verified". The `vars` setting chooses
 * which vars are sent (allow and status always are).
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
import {
  CLAIM_VAR_PREFIX,
  CLAIM_VARS,
  REQUIRED_VARS,
  SELECTABLE_VARS,
  type SelectableVar,
  VAR,
} from '../var-names.js';

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

/** Compiled ACKs kept per {@link DecisionVars} (see its `ack`). */
export const MAX_COMPILED_ACKS = 8192;

/**
 * The SET-VARs of decisions for one selection of vars (the `vars` setting): HAProxy pays for
 * each SET-VAR it receives, so a deployment answers only the vars its haproxy.cfg reads.
 * `allow` and `status` are always sent. One instance per handler: the handler is rebuilt on
 * reload, so a reload that changes `vars` starts with its own compiled ACKs.
 */
export class DecisionVars {
  /** The vars this instance sends, in {@link SELECTABLE_VARS} order. */
  readonly selection: readonly SelectableVar[];
  private readonly reason: boolean;
  private readonly sub: boolean;
  private readonly iss: boolean;
  private readonly role: boolean;
  private readonly tag: boolean;
  private readonly rule: boolean;
  private readonly cache: boolean;
  private readonly claims: boolean;
  private readonly path: boolean;
  private readonly maxCompiled: number;
  /** A remembered decision's compiled ACK, or when it was last answered uncompiled (see ack). */
  private readonly compiled = new WeakMap<Decision, ActionList | number>();
  private ring: (Decision | undefined)[] | null = null;
  private ringNext = 0;
  /** ACKs of remembered decisions answered so far (mod 2^30): the clock of ack()'s admission. */
  private answered = 0;

  constructor(selection: readonly SelectableVar[] = SELECTABLE_VARS, maxCompiled = MAX_COMPILED_ACKS) {
    const has = new Set<SelectableVar>([...selection, ...REQUIRED_VARS]);
    this.selection = SELECTABLE_VARS.filter((v) => has.has(v));
    this.reason = has.has(VAR.reason);
    this.sub = has.has(VAR.sub);
    this.iss = has.has(VAR.iss);
    this.role = has.has(VAR.role);
    this.tag = has.has(VAR.tag);
    this.rule = has.has(VAR.rule);
    this.cache = has.has(VAR.cache);
    this.claims = has.has(CLAIM_VARS);
    this.path = has.has(VAR.path);
    this.maxCompiled = maxCompiled;
  }

  /** The SET-VAR of the normalised path (see handler.ts canonicalPath), or null when not selected. */
  pathAction(path: string): Action | null {
    return this.path ? { op: 'set', scope: TXN, name: VAR.path, value: path } : null;
  }

  /** Builds the ACK actions for one decision. */
  actions(d: Decision): Action[] {
    const out: Action[] = [ALLOW.action(d.allow), STATUS.action(d.status)];
    if (this.reason) out.push(REASON.action(d.reason));
    if (this.sub && d.sub !== null) out.push(SUB.action(d.sub));
    if (this.iss && d.iss !== null) out.push(ISS.action(d.iss));
    if (this.role && d.role !== null) out.push(ROLE.action(d.role));
    if (this.tag && d.tag !== null) out.push(TAG.action(d.tag));
    if (this.rule && d.rule !== null) out.push(RULE.action(d.rule));
    if (this.cache && d.cache !== null) out.push(CACHE.action(d.cache));
    if (this.claims) {
      for (const [name, value] of d.claims) {
        // INT64 carries integers only; a fractional claim goes as its text form.
        const v = typeof value === 'number' && !Number.isSafeInteger(value) ? String(value) : value;
        out.push({ op: 'set', scope: TXN, name: claimVarName(name), value: v });
      }
    }
    return out;
  }

  /**
   * The ACK of a decision. Cache hits are remembered decisions (engine.ts) that recur for every
   * request of a token on a route: their actions are encoded once and copied into each ACK,
   * for the most recently compiled `maxCompiled` of them. An encoded ACK costs about as much
   * memory as the cached token it answers for, so keeping one per remembered decision would
   * double the token cache's footprint; the ring bounds it. A decision is compiled only when it
   * comes back within `maxCompiled` answers of its last one, i.e. when it would still be in the
   * ring: with more tokens taking turns than the ring holds, compiling each one only to evict
   * it before its next use would cost more than encoding its actions into the frame.
   */
  ack(d: Decision): HandlerResult {
    if (d.cache !== 'hit') return this.actions(d);
    const now = (this.answered + 1) & 0x3fffffff;
    this.answered = now;
    const known = this.compiled.get(d);
    if (typeof known === 'object') return known;
    if (known === undefined || ((now - known) & 0x3fffffff) > this.maxCompiled) {
      this.compiled.set(d, now);
      return this.actions(d);
    }
    const list = compileActions(this.actions(d));
    this.ring ??= new Array<Decision | undefined>(this.maxCompiled);
    const evicted = this.ring[this.ringNext];
    if (evicted !== undefined) this.compiled.delete(evicted);
    this.ring[this.ringNext] = d;
    this.ringNext = (this.ringNext + 1) % this.maxCompiled;
    this.compiled.set(d, list);
    return list;
  }
}

/** Every var: the default selection (no `vars` setting). */
const ALL = new DecisionVars();

/** The SET-VAR of the normalised path, with every var selected. */
export function pathAction(path: string): Action {
  return ALL.pathAction(path)!;
}

/** The ACK actions of one decision with every var selected. */
export function decisionActions(d: Decision): Action[] {
  return ALL.actions(d);
}

/** The ACK of one decision with every var selected (see {@link DecisionVars.ack}). */
export function decisionAck(d: Decision): HandlerResult {
  return ALL.ack(d);
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
