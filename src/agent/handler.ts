/**
 * The one place where SPOP meets auth: a NOTIFY's `authorize` message in, the decision's
 * SET-VAR actions out, plus the audit line. Knows nothing of sockets or key fetching.
 */
import type { Logger } from 'pino';
import { type AuthzRequest, type Decision, makeDecision, NO_CLAIMS } from '../auth/decision.js';
import { normalizePath } from '../auth/policy/path.js';
import type { HandlerResult, Notify, NotifyContext, NotifyHandler } from '../spop/index.js';
import { type AuditMode, auditDecision } from './audit.js';
import { AUTHORIZE_BODY_MESSAGE, AUTHORIZE_MESSAGE, readAuthorizeArgs } from './request.js';
import { DecisionVars } from './vars.js';

/** What the handler needs of the engine: a decision per request (sync on cache hits). */
export interface Decider {
  decide(req: AuthzRequest): Decision | Promise<Decision>;
}

export interface AuthorizeHandlerOptions {
  engine: Decider;
  audit: AuditMode;
  /** Audit lines go here (one per decision, at info). */
  auditLogger: Logger;
  /** Called once per decision with its latency, for metrics. */
  onDecision?: (decision: Decision, seconds: number) => void;
  /** Which vars the ACKs carry (the `vars` setting); default: every var. */
  vars?: DecisionVars;
}

const BAD_REQUEST: Decision = Object.freeze(
  makeDecision('bad_request', null, null, null, null, null, null, NO_CLAIMS),
);

/**
 * The normalised path when it differs from `raw` (dot segments, repeated slashes, escaped
 * unreserved characters, lower-case escapes), else null. The policy judges the normalised path;
 * an allow then carries it as `txn.<prefix>.path` so that HAProxy forwards what was judged
 * (`http-request set-path`) rather than a raw path the upstream might read differently.
 * normalizePath changes nothing in a path without '%', '//' or '/.' (its own fast path), so
 * most paths cost three indexOf here.
 */
export function canonicalPath(raw: string): string | null {
  if (raw.indexOf('%') === -1 && raw.indexOf('//') === -1 && raw.indexOf('/.') === -1) return null;
  const p = normalizePath(raw);
  return typeof p === 'string' && p !== raw ? p : null;
}

/**
 * A NotifyHandler answering the `authorize` message. A NOTIFY without it gets an ACK with no
 * decision (HAProxy then finds no `allow` var and its ACL fails closed); one without
 * `method`/`path` is a `bad_request` deny.
 */
export function createAuthorizeHandler(options: AuthorizeHandlerOptions): NotifyHandler {
  const { engine, audit, auditLogger, onDecision } = options;
  const vars = options.vars ?? new DecisionVars();
  // performance.now(): monotonic, and a double (hrtime.bigint() allocates a BigInt per read).
  const finish = (req: AuthzRequest | null, d: Decision, started: number): HandlerResult => {
    const seconds = (performance.now() - started) / 1e3;
    if (onDecision !== undefined) onDecision(d, seconds);
    if (audit === 'all' || (audit === 'deny' && !d.allow)) auditDecision(auditLogger, req, d, seconds);
    if (d.allow && req !== null) {
      const path = canonicalPath(req.path);
      const set = path === null ? null : vars.pathAction(path);
      if (set !== null) return [...vars.actions(d), set];
    }
    return vars.ack(d);
  };
  return (notify: Notify, _ctx: NotifyContext): HandlerResult | Promise<HandlerResult> => {
    const msg = notify.message(AUTHORIZE_MESSAGE) ?? notify.message(AUTHORIZE_BODY_MESSAGE);
    if (msg === undefined) return [];
    const started = performance.now();
    const req = readAuthorizeArgs(msg);
    if (req === null) return finish(null, BAD_REQUEST, started);
    const d = engine.decide(req);
    if (d instanceof Promise) return d.then((decision) => finish(req, decision, started));
    return finish(req, d, started);
  };
}
