import {
  API_KEY_ISS,
  AUTH_STRING_ISS,
  type CredentialFailure,
  CredentialStore,
  credentialPolicyOf,
} from './apikeys/credential-store.js';
import { looksLikeApiKey } from './apikeys/key-format.js';
import { compileClaimPath } from './claims.js';
import { bindingProblem } from './client-cert.js';
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
import {
  BasicCredential,
  extractToken,
  TokenRejection,
  type TokenSources,
  tokenSourceOf,
} from './verify/token-source.js';
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
  /** API keys and auth strings (config `apiKeys`), or null. */
  private readonly credentials: CredentialStore | null;
  /** Verifications in progress, by token key (token-cache.ts: the token's digest), for coalescing. */
  private readonly inflight = new Map<string, Promise<VerifyOutcome>>();
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
      allowNoKeys: config.allowNoKeys,
    };
    this.issuers = config.issuers.map((issuer) => new CompiledIssuer(issuer, keyDeps));
    const forward = config.forwardClaims.map((spec) => ({ ...spec, path: compileClaimPath(spec.claim) }));
    this.verifier = new TokenVerifier(this.issuers, forward, { verifier: config.verifier });
    this.cache = new TokenCache({
      maxEntries: config.cache.maxEntries,
      maxTtlMs: config.cache.maxTtlSeconds * 1000,
      negativeTtlMs: config.cache.negativeTtlSeconds * 1000,
      negativeMaxEntries: config.cache.negativeMaxEntries,
    });
    this.credentials =
      config.apiKeys === undefined
        ? null
        : new CredentialStore(config.apiKeys, credentialPolicyOf(this.policy), {
            logger: this.logger,
            now: this.now,
            forward,
          });
    // With a keys file, `Authorization: Basic` is an auth string to check, not "no token".
    this.sources = this.credentials === null ? config.tokens : { ...config.tokens, basic: true };
  }

  /** Validates the config (AuthError 'config_invalid' with zod paths) and builds the engine. No I/O but reading configured files. */
  static create(config: unknown, deps: AuthzEngineDeps = {}): AuthzEngine {
    return new AuthzEngine(parseAuthzConfig(config), deps);
  }

  /**
   * Fetches keys (warm-up). Resolves when every issuer has made its first attempt, whatever the
   * outcome: check ready(). Rejects with AuthError('config_invalid') (its `issuer` set) when a
   * configured key set is refused (key-set-check.ts).
   */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new AuthError('closed', 'engine is closed'));
    this.credentials?.start();
    this.starting ??= Promise.all(this.issuers.map((i) => i.keys.start())).then(() => {
      const down = this.issuers.filter((i) => !i.keys.ready()).map((i) => i.id);
      if (down.length > 0) this.logger.warn({ issuers: down }, 'no keys yet for some issuers');
      else this.logger.info({ issuers: this.issuers.length }, 'authorization engine ready');
    });
    return this.starting;
  }

  /**
   * Checks the configured key sets (jwks, jwks-file) as start() would, without fetching remote
   * ones: what `check` can tell before the agent serves.
   */
  async checkConfiguredKeys(): Promise<void> {
    await Promise.all(
      this.issuers
        .filter((i) => i.keys.kind === 'jwks' || i.keys.kind === 'jwks-file')
        .map((i) => i.keys.start()),
    );
  }

  /** True when every issuer has keys to verify with (possibly stale or persisted ones). */
  ready(): boolean {
    return this.issuers.every((i) => i.keys.ready());
  }

  issuerStatus(): IssuerStatus[] {
    return this.issuers.map((i) => ({ id: i.id, iss: i.iss, ...i.keys.status() }));
  }

  /** Refetches every remote key set and re-reads the keys file now, ignoring back-off (e.g. on SIGHUP). */
  async refreshKeys(): Promise<void> {
    await Promise.all([...this.issuers.map((i) => i.keys.refresh(true)), this.credentials?.reload()]);
  }

  /**
   * Swaps in a new policy atomically; in-flight decisions finish with whichever policy they
   * started authorizing with. Throws AuthError('config_invalid') and keeps the old policy if
   * the new one is invalid. Issuer and key changes need a new engine.
   */
  reloadPolicy(policy: PolicyConfigInput): void {
    const next = CompiledPolicy.compile(policy);
    checkRoleTargets(this.config, next);
    this.credentials?.setPolicy(credentialPolicyOf(next));
    this.policy = next;
    this.logger.info({ generation: next.generation, rules: next.rules.length }, 'policy reloaded');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const issuer of this.issuers) issuer.keys.close();
    this.credentials?.close();
    this.cache.clear();
  }

  decide(req: AuthzRequest): Decision | Promise<Decision> {
    if (this.closed) throw new AuthError('closed', 'engine is closed');
    const token = extractToken(req, this.sources);
    let now = 0;
    let hit: ReturnType<TokenCache['get']>;
    let key: string | null = null;
    if (typeof token === 'string') {
      if (looksLikeApiKey(token)) return this.decideApiKey(req, token);
      now = this.now();
      // The common case first: a token seen lately, usually with a remembered decision; then
      // any cached token (hashed: token-cache.ts).
      hit = this.cache.getRecent(token, now);
      if (hit === undefined) {
        key = tokenKey(token);
        hit = this.cache.get(key, token, now);
      }
      if (typeof hit === 'object') {
        // Cached under a policy that read fewer claims than this one: verified again.
        if (hit.holdsClaims(this.policy.claimsRead)) return this.count(this.decideCached(req, hit));
        hit = undefined;
      }
    }
    const path = this.judgePath(req);
    if (typeof path === 'string') return this.count(denial('bad_request', null, null));
    if (token === null) return this.count(this.anonymous(req, path, null));
    if (token instanceof TokenRejection) return this.count(denial('malformed_token', null, null));
    if (token instanceof BasicCredential) return this.decideAuthString(req, path, token);
    if (hit !== undefined) {
      this.counters.hits++;
      return this.count(denial(hit === EXPIRED ? 'expired' : 'not_yet_valid', null, 'hit'));
    }
    key ??= tokenKey(token);
    const negative = this.cache.getNegative(key, now);
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
        `${req.prefectUi ? ' X-Prefect-UI: true' : ''}` +
        `${req.body != null ? ` body=${req.body.length} bytes (declared ${req.bodySize ?? '-'})` : ''}`,
    );
    const done = (decision: Decision): Explanation => {
      trace.push(
        `decision: ${decision.allow ? 'allow' : 'deny'} ${decision.status} ${decision.reason}` +
          ` role=${decision.role ?? '-'} rule=${decision.rule ?? '-'} tag=${decision.tag ?? '-'}`,
      );
      return { decision, trace };
    };
    const path = this.judgePath(req);
    if (typeof path === 'string') {
      trace.push(`path: refused: ${path}`);
      return done(denial('bad_request', null, null));
    }
    trace.push(
      path.path === req.path ? `path: ${path.path}` : `path: ${path.path} (normalised from ${req.path})`,
    );
    const token = extractToken(req, this.sources);
    if (token === null) {
      trace.push('token: none');
      return done(this.anonymous(req, path, trace, options.verbose));
    }
    if (token instanceof TokenRejection) {
      trace.push(`token: refused: ${token.why}`);
      return done(denial('malformed_token', null, null));
    }
    if (token instanceof BasicCredential || looksLikeApiKey(token)) {
      const apiKey = typeof token === 'string';
      trace.push(
        `token: from ${tokenSourceOf(req, this.sources)}, ${apiKey ? 'an API key' : 'an auth string'}`,
      );
      const iss = apiKey ? API_KEY_ISS : AUTH_STRING_ISS;
      const store = this.credentials;
      const outcome: Identity | CredentialFailure =
        store === null
          ? 'bad_credentials'
          : typeof token === 'string'
            ? store.checkKey(token, this.now())
            : await store.verifyAuthString(token);
      if (typeof outcome === 'string') {
        trace.push(`keys file: ${store?.file ?? '(apiKeys not configured)'}: ${outcome}`);
        return done(denial(outcome, iss, 'miss'));
      }
      trace.push(
        `keys file: entry ${outcome.kid}, subject ${outcome.sub}, roles [${outcome.roles.join(', ')}]`,
      );
      return done(this.authorize(req, path, outcome, 'miss', trace, options.verbose));
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
      credentials: this.credentials?.status() ?? null,
      policyGeneration: this.policy.generation,
    };
  }

  /**
   * The request's path as the rules see it, or why it is refused (`bad_request`): a path
   * normalizePath refuses, or a request the policy finds ambiguous (CompiledPolicy.ambiguity).
   */
  private judgePath(req: AuthzRequest): JudgedPath | string {
    const path = normalizePath(req.path);
    if (path instanceof PathRejection) return path.why;
    const segments = pathSegments(path);
    return this.policy.ambiguity(req.method, segments, req.query) ?? { path: path, segments };
  }

  /**
   * A cached identity: the decision remembered for this request (DecisionMemo), or a new one,
   * remembered. A remembered decision is what authorize() would answer again: same identity,
   * same policy generation, same fields the policy reads; the token's validity window was
   * checked by the cache lookup just before. Rejected paths are not remembered.
   */
  private decideCached(req: AuthzRequest, identity: Identity): Decision {
    return this.decideIdentity(req, identity, 'hit', true);
  }

  /** decideCached() for any identity; `tokenCache`: it came from the token cache (counted as a hit). */
  private decideIdentity(
    req: AuthzRequest,
    identity: Identity,
    cache: CacheOutcome,
    tokenCache: boolean,
  ): Decision {
    // Before any remembered decision: the binding depends on the connection, not the token.
    if (
      identity.certThumbprint !== null &&
      bindingProblem(identity.certThumbprint, req.clientCert) !== null
    ) {
      if (tokenCache) this.counters.hits++;
      return denial('cert_mismatch', identity.iss, cache);
    }
    const policy = this.policy;
    if (identity.maskGeneration !== policy.generation) this.refreshMasks(identity, policy);
    // A body is judged afresh every time (bodies differ where paths do not).
    if (policy.reads.body && req.body != null) {
      const path = this.judgePath(req);
      if (typeof path === 'string') return denial('bad_request', null, null);
      if (tokenCache) this.counters.hits++;
      return this.authorize(req, path, identity, cache, null);
    }
    let memo = identity.decisions;
    if (memo !== null) {
      const d = memo.get(req);
      if (d !== undefined) {
        if (tokenCache) this.counters.hits++;
        return d;
      }
    }
    const path = this.judgePath(req);
    if (typeof path === 'string') return denial('bad_request', null, null);
    if (tokenCache) this.counters.hits++;
    const d = Object.freeze(this.authorize(req, path, identity, cache, null));
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

  /**
   * An API key (`spoe_...`, whichever token source carried it): never the JWT path, so an
   * unknown or mistyped key is `bad_credentials`, not a malformed JWT. Synchronous.
   */
  private decideApiKey(req: AuthzRequest, token: string): Decision {
    const outcome =
      this.credentials === null ? 'bad_credentials' : this.credentials.checkKey(token, this.now());
    if (typeof outcome !== 'string') return this.count(this.decideIdentity(req, outcome, 'miss', false));
    if (typeof this.judgePath(req) === 'string') return this.count(denial('bad_request', null, null));
    return this.count(denial(outcome, API_KEY_ISS, 'miss'));
  }

  /** `Authorization: Basic`: a remembered auth string, or a bounded scrypt check. */
  private decideAuthString(
    req: AuthzRequest,
    path: JudgedPath,
    basic: BasicCredential,
  ): Decision | Promise<Decision> {
    const store = this.credentials;
    if (store === null) return this.count(denial('bad_credentials', AUTH_STRING_ISS, 'miss'));
    const known = store.cachedAuthString(basic, this.now());
    if (known !== undefined) return this.count(this.decideIdentity(req, known, 'hit', false));
    const outcome = store.verifyAuthString(basic);
    if (!(outcome instanceof Promise)) return this.afterCredential(req, path, outcome);
    return outcome.then((o) => this.afterCredential(req, path, o));
  }

  private afterCredential(
    req: AuthzRequest,
    path: JudgedPath,
    outcome: Identity | CredentialFailure,
  ): Decision {
    return this.count(
      typeof outcome === 'string'
        ? denial(outcome, AUTH_STRING_ISS, 'miss')
        : this.authorize(req, path, outcome, 'miss', null),
    );
  }

  private verifyThenAuthorize(
    req: AuthzRequest,
    path: JudgedPath,
    key: string,
    token: string,
    now: number,
  ): Decision | Promise<Decision> {
    const running = this.inflight.get(key);
    let outcome: VerifyOutcome | Promise<VerifyOutcome>;
    if (running !== undefined) {
      this.counters.coalesced++;
      outcome = running;
    } else {
      this.counters.verifications++;
      // The cache's front keeps a copy: `token` is a slice of the NOTIFY's text (detached.ts).
      const own = detached(token);
      outcome = this.verifier.verify(own, now, null, (result) => {
        this.inflight.delete(key);
        if (result.ok) {
          // Of the claims, the cache keeps what this policy reads; the decision below is made
          // in the same turn of the event loop, with the same policy.
          result.identity.keepOnly(this.policy.claimsRead);
          this.cache.set(key, own, result.identity, this.now());
        } else if (NEGATIVE_CACHEABLE.has(result.reason)) {
          this.cache.setNegative(key, result.reason, result.iss, now);
        }
      });
      if (outcome instanceof Promise) this.inflight.set(key, outcome);
    }
    // Malformed tokens and unknown issuers are answered without a promise.
    if (!(outcome instanceof Promise)) return this.afterVerify(req, path, outcome);
    return outcome.then((o) => this.afterVerify(req, path, o));
  }

  private afterVerify(req: AuthzRequest, path: JudgedPath, outcome: VerifyOutcome): Decision {
    return this.count(
      outcome.ok
        ? this.authorize(req, path, outcome.identity, 'miss', null)
        : denial(outcome.reason, outcome.iss, 'miss'),
    );
  }

  private anonymous(req: AuthzRequest, path: JudgedPath, trace: string[] | null, verbose = false): Decision {
    const policy = this.policy;
    const ctx = requestContext(req, path, null, 0, policy);
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
    path: JudgedPath,
    identity: Identity,
    cache: CacheOutcome,
    trace: string[] | null,
    verbose = false,
  ): Decision {
    if (identity.certThumbprint !== null) {
      const problem = bindingProblem(identity.certThumbprint, req.clientCert);
      if (problem !== null) {
        trace?.push(`client certificate: ${problem}`);
        return denial('cert_mismatch', identity.iss, cache);
      }
      trace?.push('client certificate: the one the token is bound to (cnf x5t#S256)');
    }
    const policy = this.policy;
    if (identity.maskGeneration !== policy.generation) this.refreshMasks(identity, policy);
    if (trace) {
      const names = (mask: number) => policy.roles.names.filter((_, i) => mask & (1 << i)).join(', ');
      trace.push(
        `policy roles: held [${names(identity.directMask)}], effective [${names(identity.effectiveMask)}]`,
      );
    }
    const ctx = requestContext(req, path, identity, identity.effectiveMask, policy);
    const rule = trace ? policy.matchTraced(ctx, trace, verbose) : policy.match(ctx);
    const allow = rule !== null && rule.effect === 'allow';
    if (rule === null && ctx.bodyFailure !== null) {
      // A rule could have matched had the body been judgeable: say so rather than "forbidden".
      trace?.push(`body: ${ctx.bodyFailure}`);
      return makeDecision(
        ctx.bodyFailure,
        identity.sub,
        identity.iss,
        policy.roles.highestRole(identity.directMask),
        null,
        null,
        cache,
        NO_CLAIMS,
      );
    }
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

/** A path the rules may judge: normalised, and its segments. */
interface JudgedPath {
  readonly path: string;
  readonly segments: readonly string[];
}

/** The rule-matching context of a request: the same for anonymous and verified requests but for identity. */
function requestContext(
  req: AuthzRequest,
  path: JudgedPath,
  token: Parameters<typeof newMatchContext>[6],
  roleMask: number,
  policy: CompiledPolicy,
): ReturnType<typeof newMatchContext> {
  return newMatchContext(
    req.method,
    path.segments,
    req.query,
    req.host,
    req.src,
    req.prefectUi === true,
    token,
    roleMask,
    policy.reads.body
      ? { body: req.body ?? null, bodySize: req.bodySize ?? null, maxBytes: policy.config.bodyMaxBytes }
      : undefined,
    policy.reads.cert ? (req.clientCert ?? null) : null,
  );
}
