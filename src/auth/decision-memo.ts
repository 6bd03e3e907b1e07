import type { AuthzRequest, Decision } from './decision.js';

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
 * Stored strings are copied: the request's strings are slices of the NOTIFY's payload text and
 * would keep the whole payload alive for as long as the token stays cached.
 */
export class DecisionMemo {
  private readonly reads: RequestReads;
  private readonly max: number;
  private readonly byPath = new Map<string, Entry>();
  private count = 0;
  private last: Entry | null = null;

  constructor(reads: RequestReads, max: number) {
    this.reads = reads;
    this.max = max;
  }

  get(req: AuthzRequest): Decision | undefined {
    // The entry found last time first: comparing a path costs less than hashing it for the Map
    // (a client polling one route hits here; a differing path of equal length fails early).
    const last = this.last;
    if (last !== null && last.path === req.path && this.matches(last, req)) return last.decision;
    for (let e = this.byPath.get(req.path) ?? null; e !== null; e = e.next) {
      if (this.matches(e, req)) {
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
      this.byPath.clear();
      this.last = null;
      this.count = 0;
    }
    const r = this.reads;
    const path = copy(req.path);
    this.byPath.set(path, {
      path,
      method: copy(req.method),
      query: r.query ? copyOrNull(req.query) : null,
      host: r.host ? copyOrNull(req.host) : null,
      src: r.src ? copyOrNull(req.src) : null,
      prefectUi: r.prefectUi && req.prefectUi === true,
      cert: r.cert ? certKey(req) : null,
      decision,
      next: this.byPath.get(path) ?? null,
    });
    this.count++;
  }

  get size(): number {
    return this.count;
  }
}

/** A string that shares nothing with its source (request strings are Latin-1, see notify.ts). */
function copy(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'latin1').toString('latin1');
}

function copyOrNull(s: string | null): string | null {
  return s === null ? null : copy(s);
}

/** What rules read of a client certificate: whether it verified, and its subject. */
function certKey(req: AuthzRequest): string | null {
  const c = req.clientCert;
  return c === null || c === undefined ? null : `${c.verified ? 1 : 0}${c.subject ?? ''}`;
}
