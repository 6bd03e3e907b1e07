import type { AuthzRequest, Decision } from './decision.js';
import { detached, detachedOrNull } from './detached.js';

/** Which request fields a policy's rules read besides method and path (CompiledPolicy.reads). */
export interface RequestReads {
  readonly query: boolean;
  readonly host: boolean;
  readonly src: boolean;
  readonly prefectUi: boolean;
  /** Some rule looks at the body: a request that carries one is never answered from memory. */
  readonly body: boolean;
  /** Some rule looks at the client certificate (whether it verified, its subject). */
  readonly cert: boolean;
}

/** A remembered decision and the request fields it was made for (unread fields null/false). */
interface Entry {
  readonly path: string;
  readonly method: string;
  readonly query: string | null;
  readonly host: string | null;
  readonly src: string | null;
  readonly prefectUi: boolean;
  /** certKey() of the request's client certificate. */
  readonly cert: string | null;
  readonly decision: Decision;
  readonly next: Entry | null;
}

/**
 * Decisions already made for one cached identity under one policy generation (engine.ts):
 * by raw path, then by the other fields the policy reads, compared as they are. Equal fields
 * mean an equal match() result for the same identity, so the decision can be reused. Up to
 * `max` entries; a full memo starts over (a UI or a worker polls a handful of routes).
 *
 * One memo per cached token, so it is kept small: a list, not a Map (a Map's table costs more
 * than the few entries it would index), walked from the entry found last. Stored strings are
 * copies (detached.ts), paths shared between memos.
 */
export class DecisionMemo {
  private readonly reads: RequestReads;
  private readonly max: number;
  private head: Entry | null = null;
  private count = 0;
  private last: Entry | null = null;

  constructor(reads: RequestReads, max: number) {
    this.reads = reads;
    this.max = max;
  }

  get(req: AuthzRequest): Decision | undefined {
    // The entry found last time first (a client polling one route hits here); a differing
    // path of equal length fails early, one of another length at once.
    const last = this.last;
    const path = req.path;
    if (last !== null && last.path === path && this.matches(last, req)) return last.decision;
    for (let e = this.head; e !== null; e = e.next) {
      if (e.path === path && this.matches(e, req)) {
        this.last = e;
        return e.decision;
      }
    }
    return undefined;
  }

  private matches(e: Entry, req: AuthzRequest): boolean {
    const r = this.reads;
    return (
      e.method === req.method &&
      (!r.query || e.query === req.query) &&
      (!r.host || e.host === req.host) &&
      (!r.src || e.src === req.src) &&
      (!r.prefectUi || e.prefectUi === (req.prefectUi === true)) &&
      (!r.cert || e.cert === certKey(req))
    );
  }

  set(req: AuthzRequest, decision: Decision): void {
    if (this.count >= this.max) {
      this.head = null;
      this.last = null;
      this.count = 0;
    }
    const r = this.reads;
    this.head = {
      path: sharedPath(req.path),
      method: sharedPath(req.method),
      query: r.query ? detachedOrNull(req.query) : null,
      host: r.host ? detachedOrNull(req.host) : null,
      src: r.src ? detachedOrNull(req.src) : null,
      prefectUi: r.prefectUi && req.prefectUi === true,
      cert: r.cert ? certKey(req) : null,
      decision,
      next: this.head,
    };
    this.count++;
  }

  get size(): number {
    return this.count;
  }
}

/**
 * Paths and methods recur across identities (every worker polls the same routes): one copy
 * each, up to a bound, since they come from clients.
 */
const MAX_SHARED_PATHS = 4096;
const sharedPaths = new Map<string, string>();

function sharedPath(path: string): string {
  const known = sharedPaths.get(path);
  if (known !== undefined) return known;
  const own = detached(path);
  if (sharedPaths.size < MAX_SHARED_PATHS) sharedPaths.set(own, own);
  return own;
}

/** What rules read of a client certificate: whether it verified, and its subject. */
function certKey(req: AuthzRequest): string | null {
  const c = req.clientCert;
  return c === null || c === undefined ? null : `${c.verified ? 1 : 0}${c.subject ?? ''}`;
}
