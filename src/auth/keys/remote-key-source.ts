import {
  type CryptoKey,
  createRemoteJWKSet,
  customFetch,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  jwksCache,
} from 'jose';
import { AuthError } from '../errors.js';
import { discoveryUrlFor, type IssuerConfig, type KeysConfig } from '../issuer-config.js';
import type { AuthLogger } from '../logger.js';
import type { FastKey } from '../verify/jws.js';
import { type FetchLike, fetchJson, isJwkSet } from './http-fetch.js';
import { persistedJwksPath, readPersistedJwks, writePersistedJwks } from './jwks-store.js';
import { KeyIndex } from './key-index.js';
import { checkKeySet, KeySetRejected, type KeySetRejection, keySetRejection } from './key-set-check.js';
import { type KeySetRefusal, type KeySource, type KeySourceStatus, rejectionStatus } from './key-source.js';
import { keyUrlProblem } from './url-check.js';

type RemoteKeys = Extract<KeysConfig, { type: 'oidc' | 'jwks-url' }>;
type RemoteSet = ReturnType<typeof createRemoteJWKSet>;

export interface RemoteKeySourceDeps {
  readonly fetch: FetchLike;
  readonly logger: AuthLogger;
  /** Directory for the last good key set, or null. */
  readonly persistDir: string | null;
}

/**
 * Keys from a JWKS URL, found directly or by OIDC discovery (OpenID Connect Discovery 1.0 4).
 *
 * jose's remote set does the kid lookup, refetch on unknown kid (cooldown, one shared fetch) and
 * timeouts. It is created with `cacheMaxAge: Infinity` so a verify never blocks on, or fails
 * because of, an old set (stale-if-error); freshness comes from our timer instead. Our fetch
 * wrapper records every attempt, turns every failure into AuthError('keys_unavailable') and,
 * after a failure, fails kid-miss refetches fast until the next scheduled retry, so a dead
 * provider costs one attempt per retry interval instead of one per request.
 */
export class RemoteKeySource implements KeySource {
  readonly kind: 'oidc' | 'jwks-url';
  readonly getKey: JWTVerifyGetKey;
  readonly joseKeys: JWTVerifyGetKey;

  private readonly id: string;
  private readonly iss: string;
  /** The issuer and its aliases: a discovery document must name one of them. */
  private readonly isses: readonly string[];
  private readonly keys: RemoteKeys;
  private readonly deps: RemoteKeySourceDeps;
  private readonly persistFile: string | null;
  private readonly algorithms: readonly string[];
  /** Synchronous kid lookup for the current set (key-index.ts); null while (re)building. */
  private index: KeyIndex | null = null;
  private indexedUat: number | undefined;
  /** jose `jwksCache`: seeded from disk, updated in place by jose after each good fetch. */
  private readonly cache: { jwks?: JSONWebKeySet; uat?: number } = {};
  private remote: RemoteSet | null = null;
  private jwksUri: string | null;
  private needDiscovery: boolean;
  private lastAttemptOk: boolean | null = null;
  private lastSuccessAt: number | null = null;
  private lastFailureAt = 0;
  private lastError: string | null = null;
  private fetches = 0;
  private failures = 0;
  private readonly rejections: Record<KeySetRejection, number> = { no_usable_key: 0, invalid_key: 0 };
  /** The last fetched set that was refused, until a set is accepted again. */
  private lastRejection: KeySetRefusal | null = null;
  private forcing = false;
  private persistedUat: number | undefined;
  private refreshing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(issuer: IssuerConfig, deps: RemoteKeySourceDeps) {
    const keys = issuer.keys;
    if (keys.type !== 'oidc' && keys.type !== 'jwks-url')
      throw new TypeError('RemoteKeySource needs a remote key config');
    this.kind = keys.type;
    this.id = issuer.id;
    this.iss = issuer.issuer;
    this.isses = [issuer.issuer, ...issuer.issuerAliases];
    this.keys = keys;
    this.deps = deps;
    this.persistFile = deps.persistDir === null ? null : persistedJwksPath(deps.persistDir, issuer.id);
    this.algorithms = issuer.algorithms;
    this.jwksUri = keys.type === 'jwks-url' ? keys.url : null;
    this.needDiscovery = keys.type === 'oidc';
    if (this.jwksUri !== null) this.createRemote();
    this.getKey = (header, token) => {
      const remote = this.remote;
      if (remote === null) {
        return Promise.reject(new AuthError('keys_unavailable', `issuer ${this.id}: no key set yet`));
      }
      if (this.cache.uat !== this.indexedUat) void this.reindex();
      return this.index?.lookup(header.alg, header.kid) ?? remote(header, token);
    };
    this.joseKeys = (header, token) =>
      this.remote === null
        ? Promise.reject(new AuthError('keys_unavailable', `issuer ${this.id}: no key set yet`))
        : this.remote(header, token);
  }

  keyFor(alg: unknown, kid: unknown): CryptoKey | undefined {
    if (this.cache.uat !== this.indexedUat) {
      void this.reindex();
      return undefined;
    }
    return this.index?.lookup(alg, kid);
  }

  /** Same rule as keyFor(): nothing from an index older than jose's current set. */
  fastKeyFor(alg: string, kid: unknown): FastKey | undefined {
    if (this.cache.uat !== this.indexedUat) {
      void this.reindex();
      return undefined;
    }
    return this.index?.fastLookup(alg, kid);
  }

  async start(): Promise<void> {
    await this.loadPersisted();
    await this.refresh(true);
    await this.reindex();
  }

  refresh(force = false): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.refreshing === null) {
      this.refreshing = this.refreshOnce(force).finally(() => {
        this.refreshing = null;
        this.schedule();
      });
    }
    return this.refreshing;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  ready(): boolean {
    return this.remote !== null && this.cache.jwks !== undefined;
  }

  providerDown(): boolean {
    return this.lastAttemptOk === false;
  }

  status(): KeySourceStatus {
    return {
      kind: this.kind,
      ready: this.ready(),
      providerUp: this.lastAttemptOk,
      origin: this.lastSuccessAt !== null ? 'network' : this.cache.jwks !== undefined ? 'persisted' : 'none',
      url: this.jwksUri,
      keyCount: this.cache.jwks?.keys.length ?? 0,
      fetches: this.fetches,
      failures: this.failures,
      lastSuccessAgeMs: this.lastSuccessAt === null ? null : Date.now() - this.lastSuccessAt,
      lastError: this.lastError,
      rejections: { ...this.rejections },
      lastRejection: rejectionStatus(this.lastRejection),
    };
  }

  /**
   * Rebuilds the kid index after jose replaced the set (cache.uat moved). Until it is ready
   * lookups go to jose, so a key that left the set is never served from an old index.
   */
  private async reindex(): Promise<void> {
    const { jwks, uat } = this.cache;
    this.indexedUat = uat;
    this.index = null;
    if (jwks === undefined) return;
    const index = await KeyIndex.build(jwks, this.algorithms);
    if (this.indexedUat === uat) this.index = index;
  }

  private async loadPersisted(): Promise<void> {
    if (this.persistFile === null) return;
    try {
      const saved = await readPersistedJwks(this.persistFile, this.iss);
      if (saved === null) return;
      if (this.kind === 'jwks-url' && saved.jwksUri !== this.jwksUri) return;
      if (keyUrlProblem(saved.jwksUri, this.keys.allowInsecureHttp) !== null) return;
      // Written by a version that did not check what it fetched: the same rules as a fetch.
      const refused = keySetRejection(
        await checkKeySet(saved.jwks, this.algorithms),
        this.algorithms,
        this.persistFile,
      );
      if (refused !== null) throw refused;
      this.cache.jwks = saved.jwks;
      this.cache.uat = saved.uat;
      this.persistedUat = saved.uat;
      this.jwksUri = saved.jwksUri;
      this.createRemote();
      this.deps.logger.info(
        { issuer: this.id, keys: saved.jwks.keys.length, savedAt: new Date(saved.uat).toISOString() },
        'seeded JWKS from persisted copy',
      );
    } catch (err) {
      this.deps.logger.warn({ issuer: this.id, err: String(err) }, 'ignoring persisted JWKS');
    }
  }

  private async refreshOnce(force: boolean): Promise<void> {
    if (this.needDiscovery || this.jwksUri === null) {
      try {
        await this.discover();
      } catch (err) {
        this.recordFailure(err);
        return;
      }
    }
    const remote = this.remote;
    if (remote === null) return;
    // jose calls our fetch synchronously inside reload(), so the flag covers exactly this call.
    this.forcing = force;
    const reloading = remote.reload();
    this.forcing = false;
    try {
      await reloading;
    } catch {
      // Already recorded by the fetch wrapper. The provider may have moved its jwks_uri.
      if (this.kind === 'oidc') this.needDiscovery = true;
    }
    await this.persist();
  }

  private async discover(): Promise<void> {
    const url = discoveryUrlFor(this.iss, this.keys.type === 'oidc' ? this.keys.discoveryUrl : undefined);
    this.fetches++;
    const doc = await fetchJson(this.deps.fetch, url, {
      signal: AbortSignal.timeout(this.keys.timeoutMs),
      headers: { accept: 'application/json' },
    });
    if (typeof doc !== 'object' || doc === null)
      throw new AuthError('discovery_failed', `${url}: not a JSON object`);
    const { issuer, jwks_uri: jwksUri } = doc as { issuer?: unknown; jwks_uri?: unknown };
    if (!discoveryIssuerMatches(issuer, this.isses)) {
      throw new AuthError('discovery_failed', `${url}: issuer ${JSON.stringify(issuer)} is not ${this.iss}`);
    }
    if (typeof jwksUri !== 'string') throw new AuthError('discovery_failed', `${url}: no jwks_uri`);
    const problem = keyUrlProblem(jwksUri, this.keys.allowInsecureHttp);
    if (problem !== null) throw new AuthError('insecure_url', `${url}: jwks_uri ${problem}`);
    this.needDiscovery = false;
    if (jwksUri !== this.jwksUri || this.remote === null) {
      this.jwksUri = jwksUri;
      this.createRemote();
    }
  }

  private createRemote(): void {
    this.remote = createRemoteJWKSet(new URL(this.jwksUri as string), {
      cacheMaxAge: Number.POSITIVE_INFINITY,
      cooldownDuration: this.keys.cooldownSeconds * 1000,
      timeoutDuration: this.keys.timeoutMs,
      [customFetch]: this.fetchJwks,
      [jwksCache]: this.cache,
    } as Parameters<typeof createRemoteJWKSet>[1]);
  }

  private readonly fetchJwks = async (url: string, init: RequestInit): Promise<Response> => {
    if (!this.forcing && this.lastAttemptOk === false) {
      const wait = this.lastFailureAt + this.keys.retryIntervalSeconds * 1000 - Date.now();
      if (wait > 0) {
        throw new AuthError(
          'keys_unavailable',
          `issuer ${this.id}: key provider unreachable (${this.lastError}), next attempt in ${Math.ceil(wait / 1000)}s`,
        );
      }
    }
    this.fetches++;
    try {
      const json = await fetchJson(this.deps.fetch, url, {
        signal: init.signal as AbortSignal,
        headers: init.headers as Headers,
      });
      if (!isJwkSet(json)) throw new AuthError('keys_unavailable', `${url}: not a JWK Set`);
      // A set that would fail valid tokens is a failed fetch: jose keeps the last good set.
      const refused = keySetRejection(await checkKeySet(json, this.algorithms), this.algorithms, url);
      if (refused !== null) throw refused;
      this.recordSuccess(json.keys.length);
      setTimeout(() => void this.persist(), 100).unref();
      return Response.json(json);
    } catch (err) {
      this.recordFailure(err);
      throw err;
    }
  };

  private recordSuccess(keyCount: number): void {
    const wasDown = this.lastAttemptOk === false;
    this.lastAttemptOk = true;
    this.lastSuccessAt = Date.now();
    this.lastError = null;
    this.lastRejection = null;
    if (wasDown) this.deps.logger.info({ issuer: this.id, keys: keyCount }, 'key provider reachable again');
  }

  private recordFailure(err: unknown): void {
    this.failures++;
    this.lastAttemptOk = false;
    this.lastFailureAt = Date.now();
    this.lastError = err instanceof Error ? err.message : String(err);
    const haveKeys = this.cache.jwks !== undefined;
    if (err instanceof KeySetRejected) {
      this.rejections[err.rejection]++;
      this.lastRejection = { reason: err.rejection, message: err.message, at: this.lastFailureAt };
      this.deps.logger.warn(
        { issuer: this.id, reason: err.rejection, err: this.lastError, haveKeys },
        haveKeys
          ? 'fetched key set rejected; verifying with the last good set'
          : 'fetched key set rejected; no keys to verify with yet',
      );
      return;
    }
    this.deps.logger.warn({ issuer: this.id, err: this.lastError, haveKeys }, 'key fetch failed');
  }

  private async persist(): Promise<void> {
    const { jwks, uat } = this.cache;
    if (this.persistFile === null || jwks === undefined || uat === undefined || uat === this.persistedUat)
      return;
    this.persistedUat = uat;
    try {
      await writePersistedJwks(this.persistFile, {
        version: 1,
        iss: this.iss,
        jwksUri: this.jwksUri as string,
        uat,
        jwks,
      });
    } catch (err) {
      this.deps.logger.warn({ issuer: this.id, err: String(err) }, 'cannot persist JWKS');
    }
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.timer !== null) clearTimeout(this.timer);
    const ok = this.lastAttemptOk !== false;
    // ±10% jitter so a fleet of agents does not refresh in step.
    const delay = ok
      ? this.keys.refreshIntervalSeconds * 1000 * (0.9 + Math.random() * 0.2)
      : this.keys.retryIntervalSeconds * 1000;
    this.timer = setTimeout(() => void this.refresh(true), delay);
    this.timer.unref();
  }
}

/**
 * A discovery document's `issuer` names ours: exactly, or as the multi-tenant template Microsoft
 * Entra ID publishes for `common`/`organizations` (https://login.microsoftonline.com/{tenantid}/v2.0),
 * where `{tenantid}` stands for one path segment of an issuer we route here: the template can
 * only vouch for tenants we configured.
 */
export function discoveryIssuerMatches(issuer: unknown, isses: readonly string[]): boolean {
  if (typeof issuer !== 'string') return false;
  if (isses.includes(issuer)) return true;
  const parts = issuer.split('{tenantid}');
  if (parts.length !== 2) return false;
  const [before, after] = parts as [string, string];
  return isses.some(
    (iss) =>
      iss.length > before.length + after.length &&
      iss.startsWith(before) &&
      iss.endsWith(after) &&
      /^[^/?#]+$/.test(iss.slice(before.length, iss.length - after.length)),
  );
}
