/**
 * The credentials of the keys file, checked per request: API keys (a hash lookup, synchronous)
 * and auth strings (scrypt on the thread pool, bounded, then remembered). The file is read at
 * construction (a problem is an AuthError 'config_invalid' naming the field); later it is
 * re-read on change (fs.watch on its directory, since writers rename over it, plus a stat poll)
 * and on reload(); a version that does not validate is logged and the last good one stays.
 */
import { type FSWatcher, type Stats, statSync, watch } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { LRUCache } from 'lru-cache';
import { type ForwardClaimSpec, forwardClaims } from '../claims.js';
import { AuthError } from '../errors.js';
import { Identity } from '../identity.js';
import { type AuthLogger, silentLogger } from '../logger.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';
import type { BasicCredential } from '../verify/token-source.js';
import type { ApiKeysConfig } from './apikeys-config.js';
import {
  DEFAULT_SCRYPT,
  hashPassword,
  KdfLimiter,
  parseScryptHash,
  type ScryptHash,
  verifyPassword,
} from './auth-string-hash.js';
import { apiKeyId, digestsEqual, sha256Digest, storedDigest } from './key-format.js';
import {
  type KeyEntry,
  type KeysFile,
  type KeysFileIssue,
  KeysFileProblem,
  parseKeysFile,
  readKeysFile,
} from './keys-file.js';

import { API_KEY_ISS, AUTH_STRING_ISS } from './reserved-iss.js';

export { API_KEY_ISS, AUTH_STRING_ISS } from './reserved-iss.js';

/** Why a credential was refused (reasons.ts). */
export type CredentialFailure = 'bad_credentials' | 'revoked' | 'expired' | 'credentials_busy';

interface Credential {
  readonly entry: KeyEntry;
  /**
   * api-key: the key itself, once a request has proven it (hash matched): later requests
   * compare against it in constant time instead of hashing. Lives as long as this table (a
   * reload builds new credentials), like a verified JWT in the token cache.
   */
  proven: Buffer | null;
  /** api-key: SHA-256 of the key. */
  readonly digest: Buffer | null;
  /** auth-string: the password's scrypt hash. */
  readonly scrypt: ScryptHash | null;
  readonly expiresAtMs: number;
  readonly revoked: boolean;
  readonly identity: Identity;
}

interface KeyTable {
  readonly byId: ReadonlyMap<string, Credential>;
  /** auth strings by user: the one not revoked, else the most recently created. */
  readonly byUser: ReadonlyMap<string, Credential>;
  readonly counts: { readonly apiKeys: number; readonly authStrings: number; readonly revoked: number };
}

interface FileVersion {
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly size: number;
  readonly ino: number;
}

function versionOf(st: Stats): FileVersion {
  return { mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, size: st.size, ino: st.ino };
}

function sameVersion(a: FileVersion | null, b: FileVersion | null): boolean {
  return (
    a !== null &&
    b !== null &&
    a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs &&
    a.size === b.size &&
    a.ino === b.ino
  );
}

/** What the policy says about credentials: which roles exist, which claim carries work pools. */
export interface CredentialPolicy {
  hasRole(name: string): boolean;
  readonly workPoolClaim: string | undefined;
}

export function credentialPolicyOf(policy: CompiledPolicy): CredentialPolicy {
  return {
    hasRole: (name) => policy.roles.has(name),
    workPoolClaim: policy.config.prefect.workPoolClaim,
  };
}

export interface CredentialStoreDeps {
  readonly logger?: AuthLogger;
  readonly now?: () => number;
  readonly forward?: readonly ForwardClaimSpec[];
}

export interface CredentialStoreStatus {
  readonly file: string;
  readonly apiKeys: number;
  readonly authStrings: number;
  readonly revoked: number;
  readonly reloads: number;
  readonly reloadFailures: number;
  readonly hashes: number;
  readonly hashesRefused: number;
  readonly authStringCacheEntries: number;
}

/** Strict UTF-8: an auth string that is not valid UTF-8 matches nothing. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Decoded `user:password` of a Basic credential, or null when it is not one. */
export function decodeBasic(encoded: string): { user: string; password: string } | null {
  if (encoded.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return null;
  let text: string;
  try {
    text = UTF8.decode(Buffer.from(encoded, 'base64'));
  } catch {
    return null;
  }
  const colon = text.indexOf(':');
  if (colon <= 0) return null;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

export class CredentialStore {
  readonly file: string;
  private readonly config: ApiKeysConfig;
  private readonly logger: AuthLogger;
  private readonly now: () => number;
  private readonly forward: readonly ForwardClaimSpec[];
  private policy: CredentialPolicy;
  private doc: KeysFile;
  private table: KeyTable;
  private version: FileVersion | null;
  /** The last version that failed to load, so one broken version is reported once. */
  private failedVersion: FileVersion | null = null;
  private readonly limiter: KdfLimiter;
  /** Verified auth strings by SHA-256 of the Basic token68; emptied on every reload. */
  private readonly verified: LRUCache<string, { identity: Identity; untilMs: number }> | null;
  private readonly inflight = new Map<string, Promise<Identity | CredentialFailure>>();
  /** Compared against for unknown users, so they cost what a known user costs (made on first use). */
  private dummy: Promise<ScryptHash> | null = null;
  private watcher: FSWatcher | null = null;
  private poller: NodeJS.Timeout | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private reloading: Promise<boolean> | null = null;
  private reloadAgain = false;
  private closed = false;
  private reloads = 0;
  private reloadFailures = 0;

  /** Reads the file now; AuthError('config_invalid') with `apiKeys.file` when it cannot be used. */
  constructor(config: ApiKeysConfig, policy: CredentialPolicy, deps: CredentialStoreDeps = {}) {
    this.config = config;
    this.file = config.file;
    this.logger = deps.logger ?? silentLogger;
    this.now = deps.now ?? Date.now;
    this.forward = deps.forward ?? [];
    this.policy = policy;
    let version: FileVersion | null = null;
    try {
      version = versionOf(statSync(this.file));
    } catch {}
    const doc = readKeysFile(this.file);
    if (doc instanceof KeysFileProblem) throw configError(doc);
    const table = this.build(doc, policy);
    if (table instanceof KeysFileProblem) throw configError(table);
    this.doc = doc;
    this.table = table;
    this.version = version;
    this.limiter = new KdfLimiter(config.maxConcurrentHashes, config.maxQueuedHashes);
    this.verified =
      config.authStringCacheEntries > 0 && config.authStringCacheSeconds > 0
        ? new LRUCache({ max: config.authStringCacheEntries })
        : null;
  }

  /** Watches the file (and polls it); idempotent. */
  start(): void {
    if (this.closed || this.poller !== null) return;
    this.poller = setInterval(() => this.poll(), this.config.pollSeconds * 1000);
    this.poller.unref();
    try {
      const name = basename(this.file);
      this.watcher = watch(dirname(this.file), { persistent: false }, (_event, filename) => {
        if (filename === null || filename === name) this.changed();
      });
      this.watcher.on('error', (err) => {
        this.logger.warn({ file: this.file, err: String(err) }, 'keys file: watching failed; polling only');
        this.watcher?.close();
        this.watcher = null;
      });
    } catch (err) {
      this.logger.warn({ file: this.file, err: String(err) }, 'keys file: cannot watch; polling only');
    }
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = null;
    if (this.poller !== null) clearInterval(this.poller);
    if (this.debounce !== null) clearTimeout(this.debounce);
    this.poller = this.debounce = null;
    this.verified?.clear();
  }

  /**
   * Re-validates the loaded file against a new policy (roles, work-pool claim) and rebuilds
   * the identities; throws AuthError('config_invalid') and keeps everything when it fails.
   */
  setPolicy(policy: CredentialPolicy): void {
    const table = this.build(this.doc, policy);
    if (table instanceof KeysFileProblem) throw configError(table);
    this.policy = policy;
    this.swap(this.doc, table, this.version);
  }

  /** Re-reads the file now. Resolves true when a new version was loaded; never rejects. */
  reload(): Promise<boolean> {
    if (this.reloading !== null) {
      this.reloadAgain = true;
      return this.reloading;
    }
    const run = async (): Promise<boolean> => {
      let loaded = false;
      do {
        this.reloadAgain = false;
        loaded = (await this.load()) || loaded;
      } while (this.reloadAgain && !this.closed);
      return loaded;
    };
    this.reloading = run().finally(() => {
      this.reloading = null;
    });
    return this.reloading;
  }

  status(): CredentialStoreStatus {
    const c = this.table.counts;
    return {
      file: this.file,
      apiKeys: c.apiKeys,
      authStrings: c.authStrings,
      revoked: c.revoked,
      reloads: this.reloads,
      reloadFailures: this.reloadFailures,
      hashes: this.limiter.computed,
      hashesRefused: this.limiter.refused,
      authStringCacheEntries: this.verified?.size ?? 0,
    };
  }

  /** An API key: the identity it grants, or why not. Synchronous; constant-time comparison. */
  checkKey(token: string, now: number): Identity | CredentialFailure {
    const id = apiKeyId(token);
    const credential = id === null ? undefined : this.table.byId.get(id);
    if (credential === undefined || credential.digest === null) {
      sha256Digest(token); // the same work as for a known id
      return 'bad_credentials';
    }
    const presented = Buffer.from(token, 'latin1'); // apiKeyId() checked: ASCII only
    const proven = credential.proven;
    if (proven === null || !digestsEqual(presented, proven)) {
      if (!digestsEqual(sha256Digest(token), credential.digest)) return 'bad_credentials';
      credential.proven = presented;
    }
    return this.standing(credential, now);
  }

  /** A remembered auth string (verified since the last reload), or undefined: verify it. */
  cachedAuthString(basic: BasicCredential, now: number): Identity | undefined {
    if (this.verified === null) return undefined;
    const key = cacheKey(basic);
    const hit = this.verified.get(key);
    if (hit === undefined) return undefined;
    if (now < hit.untilMs) return hit.identity;
    this.verified.delete(key);
    return undefined;
  }

  /**
   * Checks an auth string with scrypt (bounded by the limiter: 'credentials_busy' at once when
   * full). Concurrent checks of the same header share one computation. Only a success is
   * remembered, and only if the file did not change meanwhile.
   */
  verifyAuthString(
    basic: BasicCredential,
  ): Identity | CredentialFailure | Promise<Identity | CredentialFailure> {
    const decoded = decodeBasic(basic.encoded);
    if (decoded === null) return 'bad_credentials';
    const key = cacheKey(basic);
    const running = this.inflight.get(key);
    if (running !== undefined) return running;
    const table = this.table;
    const credential = table.byUser.get(decoded.user);
    const work = this.limiter.run(async () => {
      this.dummy ??= hashPassword('unknown user', DEFAULT_SCRYPT).then(
        (h) => parseScryptHash(h) as ScryptHash,
      );
      const hash = credential?.scrypt ?? (await this.dummy);
      return verifyPassword(decoded.password, hash);
    });
    if (work === null) return 'credentials_busy';
    const outcome = work.then(
      (matched): Identity | CredentialFailure | Promise<Identity | CredentialFailure> => {
        if (this.table !== table) {
          // Reloaded meanwhile: the entry may be revoked or replaced; check against the new table.
          if (this.inflight.get(key) === shared) this.inflight.delete(key);
          return this.verifyAuthString(basic);
        }
        if (!matched || credential === undefined) return 'bad_credentials';
        const now = this.now();
        const result = this.standing(credential, now);
        if (typeof result !== 'string' && this.verified !== null) {
          const untilMs = Math.min(now + this.config.authStringCacheSeconds * 1000, credential.expiresAtMs);
          this.verified.set(key, { identity: result, untilMs });
        }
        return result;
      },
      (err: unknown) => {
        this.logger.error({ err: String(err) }, 'auth string: hashing failed');
        return 'credentials_busy' as const;
      },
    );
    const shared: Promise<Identity | CredentialFailure> = outcome.finally(() => {
      if (this.inflight.get(key) === shared) this.inflight.delete(key);
    });
    this.inflight.set(key, shared);
    return shared;
  }

  private standing(credential: Credential, now: number): Identity | CredentialFailure {
    if (credential.revoked) return 'revoked';
    if (now >= credential.expiresAtMs) return 'expired';
    return credential.identity;
  }

  private changed(): void {
    if (this.closed) return;
    if (this.debounce !== null) clearTimeout(this.debounce);
    // Editors and `apikey` write, then rename: read once things settle.
    this.debounce = setTimeout(() => {
      this.debounce = null;
      void this.reload();
    }, 50);
    this.debounce.unref();
  }

  private poll(): void {
    stat(this.file).then(
      (st) => {
        const v = versionOf(st);
        if (!sameVersion(v, this.version) && !sameVersion(v, this.failedVersion)) void this.reload();
      },
      () => {
        if (this.version !== null && this.failedVersion === null) void this.reload();
      },
    );
  }

  private async load(): Promise<boolean> {
    if (this.closed) return false;
    let version: FileVersion | null = null;
    let parsed: KeysFile | KeysFileProblem;
    try {
      version = versionOf(await stat(this.file));
      if (sameVersion(version, this.version)) return false;
      parsed = parseKeysFile(this.file, await readFile(this.file, 'utf8'));
    } catch (err) {
      parsed = new KeysFileProblem(this.file, [
        { path: '', message: `cannot read: ${(err as Error).message}` },
      ]);
    }
    const table = parsed instanceof KeysFileProblem ? parsed : this.build(parsed, this.policy);
    if (table instanceof KeysFileProblem) {
      this.reloadFailures++;
      const known = version !== null ? sameVersion(version, this.failedVersion) : this.failedVersion !== null;
      this.failedVersion = version ?? { mtimeMs: -1, ctimeMs: -1, size: -1, ino: -1 };
      if (!known) {
        this.logger.warn(
          { file: this.file, issues: table.issues.map(formatIssue) },
          'keys file not reloaded; keeping the last good version',
        );
      }
      return false;
    }
    this.failedVersion = null;
    this.swap(parsed as KeysFile, table, version);
    this.reloads++;
    const c = table.counts;
    this.logger.info(
      { file: this.file, apiKeys: c.apiKeys, authStrings: c.authStrings, revoked: c.revoked },
      'keys file reloaded',
    );
    return true;
  }

  private swap(doc: KeysFile, table: KeyTable, version: FileVersion | null): void {
    this.doc = doc;
    this.table = table;
    this.version = version;
    // Remembered auth strings belong to the old table (a revoked one must not live on).
    this.verified?.clear();
  }

  /** The table for a validated document, or the problems the policy finds in it. */
  private build(doc: KeysFile, policy: CredentialPolicy): KeyTable | KeysFileProblem {
    const issues: KeysFileIssue[] = [];
    const byId = new Map<string, Credential>();
    const byUser = new Map<string, Credential>();
    let apiKeys = 0;
    let authStrings = 0;
    let revoked = 0;
    doc.keys.forEach((entry, i) => {
      entry.roles.forEach((role, j) => {
        if (!policy.hasRole(role))
          issues.push({ path: `keys.${i}.roles.${j}`, message: `unknown role "${role}"` });
      });
      if (entry.workPools.length > 0 && policy.workPoolClaim === undefined) {
        issues.push({
          path: `keys.${i}.workPools`,
          message: 'set policy.prefect.workPoolClaim, or the work-pool restriction would not be enforced',
        });
      }
      const credential = this.credential(entry, policy);
      if (entry.type === 'api-key') {
        byId.set(entry.id, credential);
        apiKeys++;
      } else {
        const user = entry.user as string;
        const other = byUser.get(user);
        if (
          other === undefined ||
          (other.revoked && (!credential.revoked || entry.createdAt > other.entry.createdAt))
        )
          byUser.set(user, credential);
        authStrings++;
      }
      if (credential.revoked) revoked++;
    });
    if (issues.length > 0) return new KeysFileProblem(this.file, issues);
    return { byId, byUser, counts: { apiKeys, authStrings, revoked } };
  }

  private credential(entry: KeyEntry, policy: CredentialPolicy): Credential {
    const apiKey = entry.type === 'api-key';
    const iss = apiKey ? API_KEY_ISS : AUTH_STRING_ISS;
    const claims: Record<string, unknown> = { iss, sub: entry.sub, roles: [...entry.roles] };
    if (policy.workPoolClaim !== undefined) claims[policy.workPoolClaim] = [...entry.workPools];
    Object.freeze(claims);
    const expiresAtMs = entry.expiresAt === null ? Number.POSITIVE_INFINITY : Date.parse(entry.expiresAt);
    return {
      entry,
      proven: null,
      digest: apiKey ? storedDigest(entry.hash) : null,
      scrypt: apiKey ? null : parseScryptHash(entry.hash),
      expiresAtMs,
      revoked: entry.revokedAt !== null,
      identity: new Identity(
        {
          issuerId: iss,
          iss,
          sub: entry.sub,
          kid: entry.id,
          alg: apiKey ? 'sha256' : 'scrypt',
          expiresAtMs,
          notBeforeMs: Number.NEGATIVE_INFINITY,
          roles: entry.roles,
          forwarded: forwardClaims(claims, this.forward),
          // An API key is not a token: nothing binds it to a certificate.
          certThumbprint: null,
        },
        claims,
      ),
    };
  }
}

function cacheKey(basic: BasicCredential): string {
  return sha256Digest(basic.encoded).toString('base64');
}

function formatIssue(i: KeysFileIssue): string {
  return i.path ? `${i.path}: ${i.message}` : i.message;
}

/** A keys file problem as a config error on `apiKeys.file` (the message names the file's field). */
function configError(problem: KeysFileProblem): AuthError {
  return new AuthError('config_invalid', `invalid keys file ${problem.message}`, {
    issues: problem.issues.map((i) => ({
      path: 'apiKeys.file',
      message: `${problem.file}: ${formatIssue(i)}`,
    })),
  });
}
