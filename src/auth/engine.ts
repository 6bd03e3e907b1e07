import { compileClaimPath } from './claims.js';
import { type AuthzRequest, type CacheOutcome, type Decision, makeDecision, NO_CLAIMS } from './decision.js';
import { DecisionMemo } from './decision-memo.js';
import { detached } from './detached.js';
import { type AuthzConfig, parseAuthzConfig } from './engine-config.js';
import { AuthError, type AuthErrorIssue } from './errors.js';
import type { Identity } from './identity.js';
import { CompiledIssuer } from './issuer.js';
import type { FetchLike } from './keys/http-fetch.js';
import { type AuthLogger, silentLogger } from './logger.js';
import { CompiledPolicy } from './policy/compiled-policy.js';
import { normalizePath, PathRejection } from './policy/path.js';
import { pathSegments } from './policy/pattern.js';
import type { PolicyConfigInput } from './policy/policy-config.js';
import { ANONYMOUS_ROLE } from './policy/role-model.js';
import { newMatchContext } from './policy/rule.js';
import { NEGATIVE_CACHEABLE, type Reason } from './reasons.js';
import { type AuthzStats, Counters, type IssuerStatus } from './stats.js';
import { EXPIRED, TokenCache, tokenKey } from './token-cache.js';
import { extractToken, TokenRejection, type TokenSources, tokenSourceOf } from './verify/token-source.js';
import { TokenVerifier, type VerifyOutcome } from './verify/verifier.js';

export interface AuthzEngineDeps {
  readonly logger?: AuthLogger;
  /** fetch used for discovery and JWKS (default: global fetch). */
  readonly fetch?: FetchLike;
  /** Clock for token times and the token cache, ms since epoch (default Date.now). */
  readonly now?: () => number;
}

export interface Explanation {
  readonly decision: Decision;
  /** Human-readable steps: path, token, issuer, key, claims, roles, each rule tried, decision. */
  readonly trace: readonly string[];
}

/**
 * The authorization engine: request in, Decision out. Knows nothing of SPOP.
 *
 * decide() answers synchronously when it can (no token, cached token, negative-cached token,
 * rejected path) and returns a Promise only when a signature must be verified; `await` works
 * on both. Concurrent decisions for the same unverified token share one verification.
 */
export class AuthzEngine {
  private readonly config: AuthzConfig;
  private readonly logger: AuthLogger;
  private readonly now: () => number;
  private readonly issuers: readonly CompiledIssuer[];
  private readonly verifier: TokenVerifier;
  private readonly cache: TokenCache;
  private readonly sources: TokenSources;
  /** Verifications in progress, by token key (see token-cache.ts), for coalescing. */
  private readonly inflight = new Map<
    string,
    { readonly token: string; readonly outcome: Promise<VerifyOutcome> }
  >();
  private readonly counters = new Counters();
  private policy: CompiledPolicy;
  private starting: Promise<void> | null = null;
  private closed = false;

  private constructor(config: AuthzConfig, deps: AuthzEngineDeps) {
    this.config = config;
    this.logger = deps.logger ?? silentLogger;
    this.now = deps.now ?? Date.now;
    this.policy = CompiledPolicy.compile(config.policy);
    checkRoleTargets(config, this.policy);
    const keyDeps = {
      fetch: deps.fetch ?? ((input: string, init: RequestInit) => fetch(input, init)),
      logger: this.logger,
      persistDir: config.jwksCacheDir ?? null,
    };
    this.issuers = config.issuers.map((issuer) => new CompiledIssuer(issuer, keyDeps));
    this.verifier = new TokenVerifier(
      this.issuers,
      config.forwardClaims.map((spec) => ({ ...spec, path: compileClaimPath(spec.claim) })),
      { verifier: config.verifier },
    );
    this.cache = new TokenCache({
      maxEntries: config.cache.maxEntries,
      maxTtlMs: config.cache.maxTtlSeconds * 1000,
      negativeTtlMs: config.cache.negativeTtlSeconds * 1000,
      negativeMaxEntries: config.cache.negativeMaxEntries,
    });
    this.sources = config.tokens;
  }

  /** Validates the config (AuthError 'config_invalid' with zod paths) and builds the engine. No I/O but reading configured files. */
  static create(config: unknown, deps: AuthzEngineDeps = {}): AuthzEngine {
    return new AuthzEngine(parseAuthzConfig(config), deps);
  }

  /** Fetches keys (warm-up). Resolves when every issuer has made its first attempt, whatever the outcome: check ready(). */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new AuthError('closed', 'engine is closed'));
    this.starting ??= Promise.all(this.issuers.map((i) => i.keys.start())).then(() => {
      const down = this.issuers.filter((i) => !i.keys.ready()).map((i) => i.id);
      if (down.length > 0) this.logger.warn({ issuers: down }, 'no keys yet for some issuers');
      else this.logger.info({ issuers: this.issuers.length }, 'authorization engine ready');
    });
    return this.starting;
  }

  /** True when every issuer has keys to verify with (possibly stale or persisted ones). */
  ready(): boolean {
    return this.issuers.every((i) => i.keys.ready());
  }

  issuerStatus(): IssuerStatus[] {
    return this.issuers.map((i) => ({ id: i.id, iss: i.iss, ...i.keys.status() }));
  }

  /** Refetches every remote key set now, ignoring back-off (e.g. on SIGHUP). */
  async refreshKeys(): Promise<void> {
    await Promise.all(this.issuers.map((i) => i.keys.refresh(true)));
  }

  /**
   * Swaps in a new policy atomically; in-flight decisions finish with whichever policy they
   * started authorizing with. Throws AuthError('config_invalid') and keeps the old policy if
   * the new one is invalid. Issuer and key changes need a new engine.
   */
  reloadPolicy(policy: PolicyConfigInput): void {
    const next = CompiledPolicy.compile(policy);
    checkRoleTargets(this.config, next);
    this.policy = next;
    this.logger.info({ generation: next.generation, rules: next.rules.length }, 'policy reloaded');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const issuer of this.issuers) issuer.keys.close();
    this.cache.clear();
  }

  decide(req: AuthzRequest): Decision | Promise<Decision> {
    if (this.closed) throw new AuthError('closed', 'engine is closed');
    const token = extractToken(req, this.sources);
    let now = 0;
    let hit: ReturnType<TokenCache['get']>;
    if (typeof token === 'string') {
      now = this.now();
      hit = this.cache.get(token, now);
      // The common case first: a cached identity, usually with a remembered decision.
      if (typeof hit === 'object') return this.count(this.decideCached(req, hit));
    }
    const path = normalizePath(req.path);
    if (path instanceof PathRejection) return this.count(denial('bad_request', null, null));
    if (token === null) return this.count(this.anonymous(req, path, null));
    if (token instanceof TokenRejection) return this.count(denial('malformed_token', null, null));
    if (hit !== undefined) {
      this.counters.hits++;
      return this.count(denial(hit === EXPIRED ? 'expired' : 'not_yet_valid', null, 'hit'));
    }
    const key = tokenKey(token);
    const negative = this.cache.getNegative(key, token, now);
    if (negative !== undefined) {
      this.counters.negativeHits++;
      return this.count(denial(negative.reason, negative.iss, 'negative'));
    }
    this.counters.misses++;
    return this.verifyThenAuthorize(req, path, key, token, now);
  }

  /** decide() with a trace, bypassing the token cache and counters. */
  async explain(req: AuthzRequest, options: { verbose?: boolean } = {}): Promise<Explanation> {
    const trace: string[] = [];
    const query = req.query ? `?${req.query}` : '';
    trace.push(
      `request: ${req.method} ${req.path}${query} host=${req.host ?? '-'} src=${req.src ?? '-'}` +
        `${req.prefectUi ? ' X-Prefect-UI: true' : ''}`,
    );
    const done = (decision: Decision): Explanation => {
      trace.push(
        `decision: ${decision.allow ? 'allow' : 'deny'} ${decision.status} ${decision.reason}` +
          ` role=${decision.role ?? '-'} rule=${decision.rule ?? '-'} tag=${decision.tag ?? '-'}`,
      );
      return { decision, trace };
    };
    const path = normalizePath(req.path);
    if (path instanceof PathRejection) {
      trace.push(`path: refused: ${path.why}`);
      return done(denial('bad_request', null, null));
    }
    trace.push(path === req.path ? `path: ${path}` : `path: ${path} (normalised from ${req.path})`);
    const token = extractToken(req, this.sources);
    if (token === null) {
      trace.push('token: none');
      return done(this.anonymous(req, path, trace, options.verbose));
    }
    if (token instanceof TokenRejection) {
      trace.push(`token: refused: ${token.why}`);
      return done(denial('malformed_token', null, null));
    }
    trace.push(`token: from ${tokenSourceOf(req, this.sources)}, ${token.length} bytes`);
    const outcome = await this.verifier.verify(token, this.now(), trace);
    if (!outcome.ok) {
      trace.push(`verification failed: ${outcome.reason} (${outcome.detail})`);
      return done(denial(outcome.reason, outcome.iss, 'miss'));
    }
    return done(this.authorize(req, path, outcome.identity, 'miss', trace, options.verbose));
  }

  stats(): AuthzStats {
    const c = this.counters;
    return {
      decisions: { ...c.decisions },
      allowed: c.allowed,
      denied: c.denied,
      cache: {
        hits: c.hits,
        misses: c.misses,
        negativeHits: c.negativeHits,
        coalesced: c.coalesced,
        entries: this.cache.size,
        negativeEntries: this.cache.negativeSize,
      },
      verifications: c.verifications,
      verifiers: {
        fastSync: this.verifier.paths.fast - this.verifier.paths.pooled,
        fastPool: this.verifier.paths.pooled,
        jose: this.verifier.paths.jose,
      },
      issuers: this.issuerStatus(),
      policyGeneration: this.policy.generation,
    };
  }

  /**
   * A cached identity: the decision remembered for this request (DecisionMemo), or a new one,
   * remembered. A remembered decision is what authorize() would answer again: same identity,
   * same policy generation, same fields the policy reads; the token's validity window was
   * checked by the cache lookup just before. Rejected paths are not remembered.
   */
  private decideCached(req: AuthzRequest, identity: Identity): Decision {
    const policy = this.policy;
    if (identity.maskGeneration !== policy.generation) this.refreshMasks(identity, policy);
    let memo = identity.decisions;
    if (memo !== null) {
      const d = memo.get(req);
      if (d !== undefined) {
        this.counters.hits++;
        return d;
      }
    }
    const path = normalizePath(req.path);
    if (path instanceof PathRejection) return denial('bad_request', null, null);
    this.counters.hits++;
    const d = Object.freeze(this.authorize(req, path, identity, 'hit', null));
    if (memo === null) identity.decisions = memo = new DecisionMemo(policy.reads, MAX_REMEMBERED_DECISIONS);
    memo.set(req, d);
    return d;
  }

  /** Role masks (and so remembered decisions) belong to one policy generation. */
  private refreshMasks(identity: Identity, policy: CompiledPolicy): void {
    identity.directMask = policy.roles.directMask(identity.roles);
    identity.effectiveMask = policy.roles.effectiveMask(identity.directMask);
    identity.maskGeneration = policy.generation;
    identity.decisions = null;
  }

  private verifyThenAuthorize(
    req: AuthzRequest,
    path: string,
    key: string,
    token: string,
    now: number,
  ): Decision | Promise<Decision> {
    const running = this.inflight.get(key);
    let outcome: VerifyOutcome | Promise<VerifyOutcome>;
    if (running !== undefined && running.token === token) {
      this.counters.coalesced++;
      outcome = running.outcome;
    } else {
      this.counters.verifications++;
      const share = running === undefined;
      // What the caches keep is a copy: `token` is a slice of the NOTIFY's text (detached.ts),
      // and the identity's claims are decoded from a slice of what is verified.
      const own = detached(token);
      const ownKey = tokenKey(own);
      outcome = this.verifier.verify(own, now, null, (result) => {
        if (share) this.inflight.delete(key);
        if (result.ok) this.cache.set(ownKey, own, result.identity, this.now());
        else if (NEGATIVE_CACHEABLE.has(result.reason)) {
          this.cache.setNegative(ownKey, own, result.reason, result.iss, now);
        }
      });
      if (share && outcome instanceof Promise) this.inflight.set(key, { token, outcome });
    }
    // Malformed tokens and unknown issuers are answered without a promise.
    if (!(outcome instanceof Promise)) return this.afterVerify(req, path, outcome);
    return outcome.then((o) => this.afterVerify(req, path, o));
  }

  private afterVerify(req: AuthzRequest, path: string, outcome: VerifyOutcome): Decision {
    return this.count(
      outcome.ok
        ? this.authorize(req, path, outcome.identity, 'miss', null)
        : denial(outcome.reason, outcome.iss, 'miss'),
    );
  }

  private anonymous(req: AuthzRequest, path: string, trace: string[] | null, verbose = false): Decision {
    const policy = this.policy;
    const ctx = requestContext(req, path, null, 0);
    const rule = trace ? policy.matchTraced(ctx, trace, verbose) : policy.match(ctx);
    if (rule === null) return denial('missing_token', null, null);
    const reason: Reason = rule.effect === 'allow' ? 'ok' : 'forbidden';
    return makeDecision(
      reason,
      null,
      null,
      reason === 'ok' ? ANONYMOUS_ROLE : null,
      rule.tag,
      rule.name,
      null,
      NO_CLAIMS,
    );
  }

  private authorize(
    req: AuthzRequest,
    path: string,
    identity: Identity,
    cache: CacheOutcome,
    trace: string[] | null,
    verbose = false,
  ): Decision {
    const policy = this.policy;
    if (identity.maskGeneration !== policy.generation) this.refreshMasks(identity, policy);
    if (trace) {
      const names = (mask: number) => policy.roles.names.filter((_, i) => mask & (1 << i)).join(', ');
      trace.push(
        `policy roles: held [${names(identity.directMask)}], effective [${names(identity.effectiveMask)}]`,
      );
    }
    const ctx = requestContext(req, path, identity, identity.effectiveMask);
    const rule = trace ? policy.matchTraced(ctx, trace, verbose) : policy.match(ctx);
    const allow = rule !== null && rule.effect === 'allow';
    const role = allow
      ? policy.roles.grantingRole(identity.directMask, rule.anyMask | rule.allMask)
      : policy.roles.highestRole(identity.directMask);
    return makeDecision(
      allow ? 'ok' : 'forbidden',
      identity.sub,
      identity.iss,
      role,
      rule?.tag ?? null,
      rule?.name ?? null,
      cache,
      identity.forwarded,
    );
  }

  private count(decision: Decision): Decision {
    const c = this.counters;
    c.decisions[decision.reason]++;
    if (decision.allow) c.allowed++;
    else c.denied++;
    return decision;
  }
}

/**
 * Decisions remembered per cached identity: enough for the handful of routes a UI or a worker
 * polls; a client walking many paths just starts over (a full memo is cleared, not ranked).
 */
const MAX_REMEMBERED_DECISIONS = 32;

function denial(reason: Reason, iss: string | null, cache: CacheOutcome | null): Decision {
  return makeDecision(reason, null, iss, null, null, null, cache, NO_CLAIMS);
}

/** Issuer role mappings must name roles the policy knows; a typo would silently grant nothing. */
function checkRoleTargets(config: AuthzConfig, policy: CompiledPolicy): void {
  const issues: AuthErrorIssue[] = [];
  config.issuers.forEach((issuer, i) => {
    for (const [group, target] of Object.entries(issuer.roles.map)) {
      for (const role of typeof target === 'string' ? [target] : target) {
        if (!policy.roles.has(role))
          issues.push({ path: `issuers.${i}.roles.map.${group}`, message: `unknown role "${role}"` });
      }
    }
    issuer.roles.default.forEach((role, j) => {
      if (!policy.roles.has(role))
        issues.push({ path: `issuers.${i}.roles.default.${j}`, message: `unknown role "${role}"` });
    });
  });
  if (issues.length > 0) {
    const summary = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    throw new AuthError('config_invalid', `invalid authorization config: ${summary}`, { issues });
  }
}

/** The rule-matching context of a request: the same for anonymous and verified requests but for identity. */
function requestContext(
  req: AuthzRequest,
  path: string,
  token: Parameters<typeof newMatchContext>[6],
  roleMask: number,
): ReturnType<typeof newMatchContext> {
  return newMatchContext(
    req.method,
    pathSegments(path),
    req.query,
    req.host,
    req.src,
    req.prefectUi === true,
    token,
    roleMask,
  );
}
