import { createSecretKey, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { type CryptoKey, createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { AuthError, type AuthErrorIssue } from '../errors.js';
import { HMAC_MIN_BYTES, type IssuerConfig, type KeysConfig } from '../issuer-config.js';
import type { AuthLogger } from '../logger.js';
import { FastKey } from '../verify/jws.js';
import { isJwkSet } from './http-fetch.js';
import { KeyIndex } from './key-index.js';
import { checkKeySet, describeProblem, type KeySetRejection, keySetRejection } from './key-set-check.js';

export interface KeySourceStatus {
  readonly kind: KeysConfig['type'];
  /** Keys are available for verification (possibly stale ones). */
  readonly ready: boolean;
  /** Last fetch attempt succeeded (true), failed (false); null if never tried or no provider. */
  readonly providerUp: boolean | null;
  /** Where the current keys came from. */
  readonly origin: 'config' | 'network' | 'persisted' | 'none';
  readonly url: string | null;
  readonly keyCount: number;
  readonly fetches: number;
  readonly failures: number;
  readonly lastSuccessAgeMs: number | null;
  readonly lastError: string | null;
  /** Fetched sets refused (key-set-check.ts), by why; a refused set is also a failure. */
  readonly rejections: Readonly<Record<KeySetRejection, number>>;
  /** The last fetched set that was refused, while no set has been accepted since. */
  readonly lastRejection: {
    readonly reason: KeySetRejection;
    readonly message: string;
    readonly ageMs: number;
  } | null;
}

/** A refused key set as a source remembers it. */
export interface KeySetRefusal {
  readonly reason: KeySetRejection;
  readonly message: string;
  /** Date.now() when it was refused. */
  readonly at: number;
}

/** `KeySourceStatus.lastRejection` of a remembered refusal. */
export function rejectionStatus(refusal: KeySetRefusal | null): KeySourceStatus['lastRejection'] {
  return refusal === null
    ? null
    : { reason: refusal.reason, message: refusal.message, ageMs: Date.now() - refusal.at };
}

/** Where an issuer's verification keys come from. */
export interface KeySource {
  readonly kind: KeysConfig['type'];
  /** jose key resolver: (protectedHeader, token) -> key. */
  readonly getKey: JWTVerifyGetKey;
  /**
   * jose's own key selection (createLocalJWKSet / createRemoteJWKSet, or the raw HMAC secret),
   * with nothing of key-index.ts in front: what `verifier: jose` verifies with.
   */
  readonly joseKeys: JWTVerifyGetKey;
  /**
   * The key for (alg, kid) when known without any work, else undefined (then use getKey).
   * Handing jwtVerify the key itself rather than a resolver is measurably faster.
   */
  keyFor(alg: unknown, kid: unknown): CryptoKey | undefined;
  /**
   * The node:crypto key for (alg, kid), under exactly the conditions keyFor() would hand jose
   * the matching CryptoKey (and jose would accept it), else undefined. For verify.ts's fast path.
   */
  fastKeyFor(alg: string, kid: unknown): FastKey | undefined;
  /**
   * Load/fetch keys; resolves when the first attempt is over, whatever its outcome. A configured
   * set (jwks, jwks-file) that key-set-check.ts refuses rejects with AuthError('config_invalid').
   */
  start(): Promise<void>;
  /** Fetch now (remote sources); `force` ignores the failure back-off. Never rejects. */
  refresh(force?: boolean): Promise<void>;
  close(): void;
  ready(): boolean;
  /** The provider is known to be unreachable (last fetch failed). */
  providerDown(): boolean;
  status(): KeySourceStatus;
}

function staticStatus(kind: KeysConfig['type'], keyCount: number): KeySourceStatus {
  return {
    kind,
    ready: true,
    providerUp: null,
    origin: 'config',
    url: null,
    keyCount,
    fetches: 0,
    failures: 0,
    lastSuccessAgeMs: null,
    lastError: null,
    rejections: { no_usable_key: 0, invalid_key: 0 },
    lastRejection: null,
  };
}

/** AuthError('config_invalid') about one issuer; issue paths are relative to its config. */
function configError(issuerId: string, issues: AuthErrorIssue[], cause?: unknown): AuthError {
  const summary = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  return new AuthError('config_invalid', `issuer ${issuerId}: ${summary}`, {
    cause,
    issuer: issuerId,
    issues,
  });
}

/**
 * A JWKS given inline or read once from a file. start() checks it (key-set-check.ts): an entry
 * jose would pick that does not import, or no usable key at all (unless `allowNoKeys`), is a
 * config error naming the issuer and the field.
 */
export class LocalKeySource implements KeySource {
  readonly kind: 'jwks' | 'jwks-file';
  readonly getKey: JWTVerifyGetKey;
  readonly joseKeys: JWTVerifyGetKey;
  private keyCount: number;
  private readonly indexing: Promise<void>;
  private index: KeyIndex | null = null;
  private viaJose: JWTVerifyGetKey;
  private readonly issuer: IssuerConfig;
  private readonly options: LocalKeySourceOptions;
  /** The file's text last read and accepted (jwks-file), so an unchanged file is not re-imported. */
  private acceptedText: string | null = null;
  private readonly rejections: Record<KeySetRejection, number> = { no_usable_key: 0, invalid_key: 0 };
  private lastRejection: KeySetRefusal | null = null;
  private lastError: string | null = null;
  private failures = 0;

  constructor(
    kind: 'jwks' | 'jwks-file',
    jwks: JSONWebKeySet,
    issuer: IssuerConfig,
    options: LocalKeySourceOptions = {},
  ) {
    this.kind = kind;
    this.issuer = issuer;
    this.options = options;
    this.keyCount = jwks.keys.length;
    this.viaJose = createLocalJWKSet(jwks);
    const algorithms = issuer.algorithms;
    const checking = checkKeySet(jwks, algorithms).then((check) => {
      const where = kind === 'jwks-file' ? (issuer.keys as { path: string }).path : 'inline JWKS';
      const refused = keySetRejection(check, algorithms, where);
      if (refused === null || (refused.rejection === 'no_usable_key' && options.allowNoKeys === true)) return;
      const issues =
        refused.rejection === 'no_usable_key'
          ? [
              {
                path: kind === 'jwks-file' ? 'keys.path' : 'keys.jwks',
                message: `${refused.message} (allowNoKeys: true starts anyway)`,
              },
            ]
          : check.problems.map((p) =>
              kind === 'jwks-file'
                ? { path: 'keys.path', message: `${where}: ${describeProblem(p)}` }
                : {
                    path: `keys.jwks.keys.${p.index}`,
                    message: p.kid === undefined ? p.message : `kid ${JSON.stringify(p.kid)}: ${p.message}`,
                  },
            );
      throw configError(issuer.id, issues);
    });
    this.joseKeys = (header, token) => this.viaJose(header, token);
    const indexed = KeyIndex.build(jwks, algorithms).then((index) => {
      this.index = index;
    });
    // start() reports a refused set; until someone asks, no unhandled rejection.
    this.indexing = Promise.all([checking, indexed]).then(() => {});
    this.indexing.catch(() => {});
    // Synchronous index first (key-index.ts), jose's resolver for everything else.
    this.getKey = (header, token) =>
      this.index?.lookup(header.alg, header.kid) ?? this.viaJose(header, token);
  }

  static fromFile(path: string, issuer: IssuerConfig, options: LocalKeySourceOptions = {}): LocalKeySource {
    const fail = (message: string, cause?: unknown) =>
      configError(issuer.id, [{ path: 'keys.path', message }], cause);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8'));
    } catch (cause) {
      const why =
        cause instanceof SyntaxError ? 'not JSON' : ((cause as NodeJS.ErrnoException).code ?? String(cause));
      throw fail(`cannot read JWKS file ${path}: ${why}`, cause);
    }
    if (!isJwkSet(parsed)) throw fail(`${path} is not a JWK Set ({"keys": [{"kty": ...}, ...]})`);
    const source = new LocalKeySource('jwks-file', parsed as JSONWebKeySet, issuer, options);
    source.acceptedText = JSON.stringify(parsed);
    return source;
  }

  start(): Promise<void> {
    return this.indexing;
  }
  keyFor(alg: unknown, kid: unknown): CryptoKey | undefined {
    return this.index?.lookup(alg, kid);
  }
  fastKeyFor(alg: string, kid: unknown): FastKey | undefined {
    return this.index?.fastLookup(alg, kid);
  }
  /**
   * jwks-file: reads the file again (SIGHUP) under the rules of a fetch: a set key-set-check.ts
   * refuses, or a file that cannot be read, leaves the keys read before in place and says so.
   */
  async refresh(): Promise<void> {
    if (this.kind !== 'jwks-file') return;
    const path = (this.issuer.keys as { path: string }).path;
    const algorithms = this.issuer.algorithms;
    const logger = this.options.logger;
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(path, 'utf8'));
      if (!isJwkSet(parsed)) throw new Error('not a JWK Set');
    } catch (err) {
      this.failures++;
      this.lastError = `${path}: ${err instanceof Error ? err.message : String(err)}`;
      logger?.warn({ issuer: this.issuer.id, err: this.lastError }, 'key file not re-read; keeping its keys');
      return;
    }
    const text = JSON.stringify(parsed);
    if (text === this.acceptedText) return;
    const refused = keySetRejection(await checkKeySet(parsed, algorithms), algorithms, path);
    if (refused !== null && !(refused.rejection === 'no_usable_key' && this.options.allowNoKeys === true)) {
      this.failures++;
      this.rejections[refused.rejection]++;
      this.lastError = refused.message;
      this.lastRejection = { reason: refused.rejection, message: refused.message, at: Date.now() };
      logger?.warn(
        { issuer: this.issuer.id, reason: refused.rejection, err: refused.message },
        'key file rejected; verifying with the keys read before',
      );
      return;
    }
    const jwks = parsed as JSONWebKeySet;
    const index = await KeyIndex.build(jwks, algorithms);
    this.viaJose = createLocalJWKSet(jwks);
    this.index = index;
    this.keyCount = jwks.keys.length;
    this.acceptedText = text;
    this.lastError = null;
    this.lastRejection = null;
    logger?.info({ issuer: this.issuer.id, keys: this.keyCount }, 'key file re-read');
  }
  close(): void {}
  ready(): boolean {
    return true;
  }
  providerDown(): boolean {
    return false;
  }
  status(): KeySourceStatus {
    return {
      ...staticStatus(this.kind, this.keyCount),
      failures: this.failures,
      lastError: this.lastError,
      rejections: { ...this.rejections },
      lastRejection: rejectionStatus(this.lastRejection),
    };
  }
}

export interface LocalKeySourceOptions {
  /** A set with no usable key is accepted (config `allowNoKeys`); a corrupt one never is. */
  readonly allowNoKeys?: boolean;
  /** Where a refused re-read of a jwks-file is reported. */
  readonly logger?: AuthLogger;
}

const HMAC_HASH = { HS256: 'SHA-256', HS384: 'SHA-384', HS512: 'SHA-512' } as const;

function loadSecret(keys: Extract<KeysConfig, { type: 'secret' }>, issuerId: string): Buffer {
  let text: string;
  if (keys.value !== undefined) {
    text = keys.value;
  } else if (keys.env !== undefined) {
    const value = process.env[keys.env];
    if (value === undefined || value === '') {
      throw configError(issuerId, [
        { path: 'keys.env', message: `environment variable ${keys.env} is not set` },
      ]);
    }
    text = value;
  } else {
    try {
      text = readFileSync(keys.file as string, 'utf8').replace(/\r?\n$/, '');
    } catch (cause) {
      const why = (cause as NodeJS.ErrnoException).code ?? String(cause);
      throw configError(
        issuerId,
        [{ path: 'keys.file', message: `cannot read secret file ${keys.file}: ${why}` }],
        cause,
      );
    }
  }
  return Buffer.from(text, keys.encoding);
}

/** A shared HMAC secret (tokens minted by an edge, e.g. a Cloudflare Worker). */
export class SecretKeySource implements KeySource {
  readonly kind = 'secret' as const;
  readonly getKey: JWTVerifyGetKey;
  readonly joseKeys: JWTVerifyGetKey;
  private readonly algorithms: readonly string[];

  constructor(issuer: IssuerConfig) {
    const keys = issuer.keys;
    if (keys.type !== 'secret') throw new TypeError('SecretKeySource needs keys.type "secret"');
    const secret = loadSecret(keys, issuer.id);
    for (const alg of issuer.algorithms) {
      const min = HMAC_MIN_BYTES[alg as keyof typeof HMAC_MIN_BYTES];
      if (min !== undefined && secret.length < min) {
        const field =
          keys.value !== undefined ? 'keys.value' : keys.env !== undefined ? 'keys.env' : 'keys.file';
        throw configError(issuer.id, [
          {
            path: field,
            message: `${alg} needs a secret of at least ${min} bytes (RFC 7518 3.2), got ${secret.length}`,
          },
        ]);
      }
    }
    this.algorithms = issuer.algorithms;
    // jose imports a raw secret itself (for every verification: only `verifier: jose` pays it).
    const raw = new Uint8Array(secret);
    this.joseKeys = () => raw;
    // The secret needs no import for node:crypto: its FastKeys exist from the start. jose's
    // resolver below ignores kid, and so does fastKeyFor().
    const secretKey = createSecretKey(secret);
    for (const alg of issuer.algorithms) {
      const fast = FastKey.hmac(alg, secretKey);
      if (fast !== null) this.fast.set(alg, fast);
    }
    // One CryptoKey per algorithm, imported once: jose would import a raw secret on every verify.
    const imported = new Map<string, Promise<webcrypto.CryptoKey>>();
    const ready = this.ready_;
    this.getKey = (header) => {
      const alg = header.alg as keyof typeof HMAC_HASH;
      let key = imported.get(alg);
      if (key === undefined) {
        const hash = HMAC_HASH[alg];
        if (hash === undefined) return Promise.reject(new TypeError(`no HMAC key for ${String(alg)}`));
        key = webcrypto.subtle.importKey('raw', secret, { name: 'HMAC', hash }, false, ['verify']);
        imported.set(alg, key);
        void key.then((k) => ready.set(alg, k as unknown as CryptoKey));
      }
      return key;
    };
  }

  private readonly ready_ = new Map<string, CryptoKey>();
  private readonly fast = new Map<string, FastKey>();

  keyFor(alg: unknown): CryptoKey | undefined {
    return typeof alg === 'string' ? this.ready_.get(alg) : undefined;
  }

  fastKeyFor(alg: string): FastKey | undefined {
    return this.fast.get(alg);
  }

  async start(): Promise<void> {
    // Import now so the first request does not pay for it.
    await Promise.all(this.algorithms.map((alg) => this.getKey({ alg }, { payload: '', signature: '' })));
  }
  async refresh(): Promise<void> {}
  close(): void {}
  ready(): boolean {
    return true;
  }
  providerDown(): boolean {
    return false;
  }
  status(): KeySourceStatus {
    return staticStatus('secret', this.algorithms.length);
  }
}
