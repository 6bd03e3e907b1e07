import { type CryptoKey, importSPKI, type JWTVerifyGetKey } from 'jose';
import { AuthError } from '../errors.js';
import type { IssuerConfig, KeysConfig } from '../issuer-config.js';
import type { AuthLogger } from '../logger.js';
import { FastKey } from '../verify/jws.js';
import { type FetchLike, readBounded } from './http-fetch.js';
import type { KeySource, KeySourceStatus } from './key-source.js';

type PemKeys = Extract<KeysConfig, { type: 'pem-url' }>;

/** A kid that may go into a URL path: AWS's are UUIDs. */
const KID = /^[A-Za-z0-9_-]{1,128}$/;
/** Keys kept; a provider that signs with more kids than this at once is not one we know. */
const MAX_KIDS = 64;
/** Fetches of kids not seen before, per minute: a flood of made-up kids costs the provider little. */
const NEW_KID_FETCHES_PER_MINUTE = 10;
const MAX_PEM_BYTES = 16 * 1024;

interface Entry {
  readonly crypto: CryptoKey;
  readonly fast: FastKey;
}

/** Why a kid has no key: the provider says it has none (401), or it cannot be asked now (503). */
export class KidRejection {
  readonly reason: 'unknown_key' | 'keys_unavailable' | 'malformed_token';
  readonly detail: string;
  constructor(reason: KidRejection['reason'], detail: string) {
    this.reason = reason;
    this.detail = detail;
  }
}

/**
 * One PEM public key per kid, fetched from a URL template (`.../{kid}`) the first time the kid is
 * seen: the AWS Application Load Balancer's key endpoint (ELB guide, "User claims encoding and
 * signature verification"), which serves no JWKS. A kid's key never changes, so a key once
 * fetched is kept and never fetched again: no later document, good or bad, replaces it. A fetch
 * that fails is not remembered as a key; the kid is tried again after `retryIntervalSeconds`,
 * and kids not seen before are fetched at most NEW_KID_FETCHES_PER_MINUTE times a minute.
 */
export class PemKeySource implements KeySource {
  readonly kind = 'pem-url' as const;
  readonly getKey: JWTVerifyGetKey;
  /** The same resolver: jose has no PEM-per-kid source of its own. */
  readonly joseKeys: JWTVerifyGetKey;
  private readonly id: string;
  private readonly keys: PemKeys;
  private readonly alg: string;
  private readonly fetchImpl: FetchLike;
  private readonly logger: AuthLogger;
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<Entry | KidRejection>>();
  private readonly failedAt = new Map<string, { at: number; rejection: KidRejection }>();
  private windowStart = 0;
  private windowFetches = 0;
  private fetches = 0;
  private failures = 0;
  private lastAttemptOk: boolean | null = null;
  private lastError: string | null = null;
  private lastSuccessAt: number | null = null;

  constructor(issuer: IssuerConfig, deps: { readonly fetch: FetchLike; readonly logger: AuthLogger }) {
    if (issuer.keys.type !== 'pem-url') throw new TypeError('PemKeySource needs keys.type "pem-url"');
    this.id = issuer.id;
    this.keys = issuer.keys;
    // One algorithm per PEM key: the schema allows exactly one with pem-url.
    this.alg = issuer.algorithms[0] as string;
    this.fetchImpl = deps.fetch;
    this.logger = deps.logger;
    this.getKey = async (header) => {
      const found = await this.resolve(header.alg, header.kid);
      if (found instanceof KidRejection) {
        if (found.reason === 'keys_unavailable') throw new AuthError('keys_unavailable', found.detail);
        throw Object.assign(new Error(found.detail), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
      }
      return found.crypto;
    };
    this.joseKeys = this.getKey;
  }

  keyFor(alg: unknown, kid: unknown): CryptoKey | undefined {
    return alg === this.alg && typeof kid === 'string' ? this.entries.get(kid)?.crypto : undefined;
  }

  fastKeyFor(alg: string, kid: unknown): FastKey | undefined {
    return alg === this.alg && typeof kid === 'string' ? this.entries.get(kid)?.fast : undefined;
  }

  /** The key for (alg, kid): at once when known, else after one fetch (shared by concurrent callers). */
  resolve(alg: unknown, kid: unknown): Entry | KidRejection | Promise<Entry | KidRejection> {
    if (alg !== this.alg)
      return new KidRejection('unknown_key', `no ${String(alg)} key (this issuer's keys are ${this.alg})`);
    if (typeof kid !== 'string' || !KID.test(kid))
      return new KidRejection('malformed_token', 'kid missing or not [A-Za-z0-9_-]{1,128}');
    const known = this.entries.get(kid);
    if (known !== undefined) return known;
    const running = this.pending.get(kid);
    if (running !== undefined) return running;
    const now = Date.now();
    const failed = this.failedAt.get(kid);
    if (failed !== undefined && now - failed.at < this.keys.retryIntervalSeconds * 1000)
      return failed.rejection;
    if (now - this.windowStart >= 60_000) {
      this.windowStart = now;
      this.windowFetches = 0;
    }
    if (this.windowFetches >= NEW_KID_FETCHES_PER_MINUTE) {
      return new KidRejection(
        'keys_unavailable',
        `issuer ${this.id}: too many new kids this minute; ${kid} not fetched`,
      );
    }
    this.windowFetches++;
    const fetching = this.fetchKey(kid).finally(() => this.pending.delete(kid));
    this.pending.set(kid, fetching);
    return fetching;
  }

  private async fetchKey(kid: string): Promise<Entry | KidRejection> {
    const url = this.keys.url.replace('{kid}', encodeURIComponent(kid));
    this.fetches++;
    let outcome: Entry | KidRejection;
    try {
      outcome = await this.fetchPem(url);
    } catch (err) {
      outcome = new KidRejection(
        'keys_unavailable',
        `${url}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (outcome instanceof KidRejection) {
      this.failures++;
      // The provider answering "no such key" is up; anything else means we could not ask it.
      this.lastAttemptOk = outcome.reason === 'unknown_key';
      this.lastError = outcome.detail;
      this.failedAt.set(kid, { at: Date.now(), rejection: outcome });
      if (this.failedAt.size > MAX_KIDS) this.failedAt.delete(this.failedAt.keys().next().value as string);
      this.logger.warn({ issuer: this.id, kid, err: outcome.detail }, 'key fetch failed');
      return outcome;
    }
    this.lastAttemptOk = true;
    this.lastError = null;
    this.lastSuccessAt = Date.now();
    this.failedAt.delete(kid);
    if (this.entries.size >= MAX_KIDS) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(kid, outcome);
    return outcome;
  }

  private async fetchPem(url: string): Promise<Entry | KidRejection> {
    const response = await this.fetchImpl(url, {
      method: 'GET',
      redirect: 'manual',
      signal: AbortSignal.timeout(this.keys.timeoutMs),
      headers: { accept: 'application/x-pem-file, text/plain' },
    });
    if (response.status === 403 || response.status === 404) {
      await response.body?.cancel().catch(() => {});
      return new KidRejection('unknown_key', `${url}: HTTP ${response.status} (no such key)`);
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => {});
      return new KidRejection('keys_unavailable', `${url}: HTTP ${response.status}, expected 200`);
    }
    const text = await readBounded(response, MAX_PEM_BYTES);
    if (
      text === null ||
      !/^-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----\s*$/.test(text)
    ) {
      return new KidRejection('keys_unavailable', `${url}: not a PEM public key`);
    }
    let crypto: CryptoKey;
    try {
      crypto = await importSPKI(text, this.alg);
    } catch (err) {
      return new KidRejection('keys_unavailable', `${url}: not a ${this.alg} public key (${String(err)})`);
    }
    const fast = FastKey.fromCryptoKey(this.alg, crypto);
    if (fast === null) return new KidRejection('keys_unavailable', `${url}: key unusable for ${this.alg}`);
    return { crypto, fast };
  }

  async start(): Promise<void> {}
  async refresh(): Promise<void> {}
  close(): void {}
  /** Keys are fetched per kid on first use: there is nothing to wait for. */
  ready(): boolean {
    return true;
  }
  providerDown(): boolean {
    return this.lastAttemptOk === false;
  }
  status(): KeySourceStatus {
    return {
      kind: this.kind,
      ready: true,
      providerUp: this.lastAttemptOk,
      origin: this.entries.size > 0 ? 'network' : 'none',
      url: this.keys.url,
      keyCount: this.entries.size,
      fetches: this.fetches,
      failures: this.failures,
      lastSuccessAgeMs: this.lastSuccessAt === null ? null : Date.now() - this.lastSuccessAt,
      lastError: this.lastError,
      // One key per kid, kept once fetched: no set is ever replaced, so none is refused.
      rejections: { no_usable_key: 0, invalid_key: 0 },
      lastRejection: null,
    };
  }
}
