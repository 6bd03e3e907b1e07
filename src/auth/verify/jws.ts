import { isAscii } from 'node:buffer';
import { constants, createHmac, KeyObject, timingSafeEqual, verify, type webcrypto } from 'node:crypto';
import type { CryptoKey } from 'jose';

/**
 * JWS signature checks with node:crypto on keys prepared once, for the fast path of verify.ts.
 * jose v6 runs every verification through WebCrypto, with its own base64, JSON and key checks
 * around a thread-pool job; the OpenSSL call alone costs a fraction of that.
 *
 * Where the call runs depends on its cost (`npm run bench:auth` measures both): RSA verify and
 * HMAC run synchronously on the event loop, where they cost less than a thread-pool round trip.
 * ECDSA and Ed25519 verifications cost several times more and are `offload`ed to libuv's pool
 * (crypto.verify with a callback): the same CPU per verification, but they would otherwise pin
 * the event loop's core while the pool can use every core.
 *
 * A FastKey exists only where jose, handed the same CryptoKey, would accept it for the
 * algorithm (jose lib/key.js checkCryptoKey, checkModulusLength): a public key of the
 * algorithm's WebCrypto name, hash and curve, with the "verify" usage, RSA of 2048 bits or more.
 * Otherwise there is no FastKey and jose gives its own answer.
 */

type Kind = 'pkcs1' | 'pss' | 'ecdsa' | 'eddsa' | 'hmac';

interface AlgSpec {
  readonly kind: Kind;
  /** node:crypto digest name; null for Ed25519 (no pre-hash). */
  readonly hash: string | null;
  /** WebCrypto algorithm jose expects the CryptoKey to carry (jose lib/jws_algorithms.js). */
  readonly name: string;
  readonly webHash?: string;
  readonly namedCurve?: string;
  /** RSA-PSS salt length: the hash length (RFC 7518 3.5). */
  readonly saltLength?: number;
  /** ECDSA: R || S, each the curve's coordinate size (RFC 7518 3.4). */
  readonly signatureLength?: number;
}

const ALGS: Readonly<Record<string, AlgSpec>> = {
  RS256: { kind: 'pkcs1', hash: 'sha256', name: 'RSASSA-PKCS1-v1_5', webHash: 'SHA-256' },
  RS384: { kind: 'pkcs1', hash: 'sha384', name: 'RSASSA-PKCS1-v1_5', webHash: 'SHA-384' },
  RS512: { kind: 'pkcs1', hash: 'sha512', name: 'RSASSA-PKCS1-v1_5', webHash: 'SHA-512' },
  PS256: { kind: 'pss', hash: 'sha256', name: 'RSA-PSS', webHash: 'SHA-256', saltLength: 32 },
  PS384: { kind: 'pss', hash: 'sha384', name: 'RSA-PSS', webHash: 'SHA-384', saltLength: 48 },
  PS512: { kind: 'pss', hash: 'sha512', name: 'RSA-PSS', webHash: 'SHA-512', saltLength: 64 },
  ES256: { kind: 'ecdsa', hash: 'sha256', name: 'ECDSA', namedCurve: 'P-256', signatureLength: 64 },
  ES384: { kind: 'ecdsa', hash: 'sha384', name: 'ECDSA', namedCurve: 'P-384', signatureLength: 96 },
  ES512: { kind: 'ecdsa', hash: 'sha512', name: 'ECDSA', namedCurve: 'P-521', signatureLength: 132 },
  EdDSA: { kind: 'eddsa', hash: null, name: 'Ed25519' },
  Ed25519: { kind: 'eddsa', hash: null, name: 'Ed25519' },
  HS256: { kind: 'hmac', hash: 'sha256', name: 'HMAC', webHash: 'SHA-256' },
  HS384: { kind: 'hmac', hash: 'sha384', name: 'HMAC', webHash: 'SHA-384' },
  HS512: { kind: 'hmac', hash: 'sha512', name: 'HMAC', webHash: 'SHA-512' },
};

/** A verification key for one algorithm, used synchronously. */
export class FastKey {
  readonly alg: string;
  private readonly kind: Kind;
  private readonly hash: string | null;
  /** What crypto.verify gets: the KeyObject, or it with padding / signature encoding options. */
  private readonly keyInput:
    | KeyObject
    | { key: KeyObject; padding?: number; saltLength?: number; dsaEncoding?: 'ieee-p1363' };
  private readonly signatureLength: number;
  /** Verify on libuv's thread pool (verifyAsync) rather than on the event loop. */
  readonly offload: boolean;

  private constructor(alg: string, spec: AlgSpec, key: KeyObject) {
    this.alg = alg;
    this.kind = spec.kind;
    this.hash = spec.hash;
    this.signatureLength = spec.signatureLength ?? -1;
    this.offload = spec.kind === 'ecdsa' || spec.kind === 'eddsa';
    switch (spec.kind) {
      case 'pss':
        this.keyInput = {
          key,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: spec.saltLength as number,
        };
        break;
      case 'ecdsa':
        this.keyInput = { key, dsaEncoding: 'ieee-p1363' };
        break;
      default:
        this.keyInput = key;
    }
  }

  /** The FastKey for a CryptoKey jose would verify `alg` with, or null (leave it to jose). */
  static fromCryptoKey(alg: string, key: CryptoKey): FastKey | null {
    const spec = ALGS[alg];
    if (spec === undefined || spec.kind === 'hmac' || key.type !== 'public') return null;
    if (!key.usages.includes('verify')) return null;
    const algorithm = key.algorithm as {
      name?: unknown;
      hash?: { name?: unknown };
      namedCurve?: unknown;
      modulusLength?: unknown;
    };
    if (algorithm.name !== spec.name) return null;
    if (spec.webHash !== undefined && algorithm.hash?.name !== spec.webHash) return null;
    if (spec.namedCurve !== undefined && algorithm.namedCurve !== spec.namedCurve) return null;
    if (
      (spec.kind === 'pkcs1' || spec.kind === 'pss') &&
      (typeof algorithm.modulusLength !== 'number' || algorithm.modulusLength < 2048)
    ) {
      return null;
    }
    let keyObject: KeyObject;
    try {
      keyObject = KeyObject.from(key as unknown as webcrypto.CryptoKey);
    } catch {
      return null;
    }
    return keyObject.type === 'public' ? new FastKey(alg, spec, keyObject) : null;
  }

  /** An HMAC key for HS256/384/512 from the shared secret's bytes, or null for other algorithms. */
  static hmac(alg: string, secret: KeyObject): FastKey | null {
    const spec = ALGS[alg];
    if (spec === undefined || spec.kind !== 'hmac' || secret.type !== 'secret') return null;
    return new FastKey(alg, spec, secret);
  }

  /**
   * Whether `signature` signs `data`. Never throws: whatever OpenSSL refuses is a signature
   * that does not verify, as jose maps a throwing subtle.verify to signature failure.
   */
  verify(data: Buffer, signature: Buffer): boolean {
    try {
      if (this.kind === 'hmac') {
        const mac = createHmac(this.hash as string, this.keyInput as KeyObject)
          .update(data)
          .digest();
        return mac.length === signature.length && timingSafeEqual(mac, signature);
      }
      // node would also refuse these; checked first so the answer never depends on it.
      if (this.kind === 'ecdsa' && signature.length !== this.signatureLength) return false;
      return verify(this.hash, data, this.keyInput, signature);
    } catch {
      return false;
    }
  }

  /** verify() on libuv's thread pool. Never rejects; the same answers as verify(). */
  verifyAsync(data: Buffer, signature: Buffer): Promise<boolean> {
    if (this.kind === 'hmac' || (this.kind === 'ecdsa' && signature.length !== this.signatureLength))
      return Promise.resolve(this.verify(data, signature));
    return new Promise((resolve) => {
      try {
        verify(this.hash, data, this.keyInput, signature, (err, ok) => resolve(err === null && ok));
      } catch {
        resolve(false);
      }
    });
  }
}

/** Header members the fast path takes; anything else (crit, b64, jku, jwk, x5u, x5c, ...) goes to jose. */
const ORDINARY_HEADER: ReadonlySet<string> = new Set([
  'alg',
  'kid',
  'typ',
  'cty',
  // Certificate thumbprints (RFC 7515 4.1.7-8), sent by Entra ID; jose never reads them.
  'x5t',
  'x5t#S256',
]);

/** A protected header the fast path may act on: the members jose's compact JWT verify reads. */
export interface FastHeader {
  readonly alg: string;
  readonly kid: string | undefined;
  readonly typ: unknown;
}

/**
 * The header segment as jose would parse it (base64url, strict UTF-8, a JSON object), when it
 * is ordinary: only ORDINARY_HEADER members, alg a non-empty string, kid absent or a string,
 * plain ASCII (so no BOM or decoding question can arise). Else null: let jose decide.
 */
export function fastHeader(segment: string): FastHeader | null {
  if (segment.length % 4 === 1) return null;
  const bytes = Buffer.from(segment, 'base64url');
  if (!isAscii(bytes)) return null;
  let header: unknown;
  try {
    header = JSON.parse(bytes.toString('latin1'));
  } catch {
    return null;
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return null;
  for (const name of Object.keys(header)) if (!ORDINARY_HEADER.has(name)) return null;
  const { alg, kid, typ } = header as Record<string, unknown>;
  if (typeof alg !== 'string' || alg === '' || ALGS[alg] === undefined) return null;
  if (kid !== undefined && typeof kid !== 'string') return null;
  return { alg, kid, typ };
}

/** jose decodes with a fatal UTF-8 TextDecoder (lib/buffer_utils.js strictDecoder), BOM stripped. */
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/** Bytes as jose's strictDecoder reads them; throws (TypeError) on malformed UTF-8. */
export function strictUtf8(bytes: Buffer): string {
  return isAscii(bytes) ? bytes.toString('latin1') : strictDecoder.decode(bytes);
}
