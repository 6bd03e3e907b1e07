/**
 * The one place where SPOP meets auth: a NOTIFY's `authorize` message in, the decision's
 * SET-VAR actions out, plus the audit line. Knows nothing of sockets or key fetching.
 */
import type { Logger } from 'pino';
import { type AuthzRequest, type Decision, makeDecision, NO_CLAIMS } from '../auth/decision.js';
import type { HandlerResult, Notify, NotifyContext, NotifyHandler } from '../spop/index.js';
import { type AuditMode, auditDecision } from './audit.js';
import { AUTHORIZE_MESSAGE, readAuthorizeArgs } from './request.js';
import { decisionAck } from './vars.js';

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
}

const BAD_REQUEST: Decision = Object.freeze(
  makeDecision('bad_request', null, null, null, null, null, null, NO_CLAIMS),
);

/**
 * A NotifyHandler answering the `authorize` message. A NOTIFY without it gets an ACK with no
 * decision (HAProxy then finds no `allow` var and its ACL fails closed); one without
 * `method`/`path` is a `bad_request` deny.
 */
export function createAuthorizeHandler(options: AuthorizeHandlerOptions): NotifyHandler {
  const { engine, audit, auditLogger, onDecision } = options;
  // performance.now(): monotonic, and a double (hrtime.bigint() allocates a BigInt per read).
  const finish = (req: AuthzRequest | null, d: Decision, started: number): HandlerResult => {
    const seconds = (performance.now() - started) / 1e3;
    if (onDecision !== undefined) onDecision(d, seconds);
    if (audit === 'all' || (audit === 'deny' && !d.allow)) auditDecision(auditLogger, req, d, seconds);
    return decisionAck(d);
  };
  return (notify: Notify, _ctx: NotifyContext): HandlerResult | Promise<HandlerResult> => {
    const msg = notify.message(AUTHORIZE_MESSAGE);
    if (msg === undefined) return [];
    const started = performance.now();
    const req = readAuthorizeArgs(msg);
    if (req === null) return finish(null, BAD_REQUEST, started);
    const d = engine.decide(req);
    if (d instanceof Promise) return d.then((decision) => finish(req, decision, started));
    return finish(req, d, started);
  };
}
