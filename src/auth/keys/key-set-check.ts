/**
 * Whether a key set may replace the one an issuer verifies with. Shared by every key source:
 * a remote set that fails is a failed fetch (the last good set stays, nothing is persisted); a
 * configured one (`jwks`, `jwks-file`) stops the agent at start with the field path.
 *
 * A set is refused when
 * - `invalid_key`: an entry jose would pick for one of the issuer's algorithms (same kty/crv,
 *   `alg`, `use`, `key_ops` rules as jose's own selection) cannot be imported as a public key
 *   for it: corrupt members, an RSA modulus under 2048 bits, private or secret material, usages
 *   WebCrypto refuses. jose would
 *   fail every token that names it, so one such entry under a known `kid` would turn valid
 *   tokens into 401s;
 * - `no_usable_key`: no entry imports for any of the issuer's algorithms (`{"keys":[]}`, keys
 *   for other algorithms or uses only): every token would fail.
 * Entries jose never picks for these algorithms (other kty, `use: enc`, another `alg`) are
 * ignored, as RFC 7517 5 asks for members a reader does not understand. A well-formed set that
 * drops keys passes: a key the provider retired stops verifying at once.
 *
 * A source whose provider publishes something else (PEM certificates, one key per URL) converts
 * it to JWKs first (`createPublicKey(pem).export({ format: 'jwk' })`) and checks the result here.
 */
import { type CryptoKey, importJWK, type JWK } from 'jose';
import { AuthError } from '../errors.js';
import { holdsPrivateMaterial, type Jwk, selectsForAlgorithm } from './key-index.js';

export const KEY_SET_REJECTIONS = ['no_usable_key', 'invalid_key'] as const;
export type KeySetRejection = (typeof KEY_SET_REJECTIONS)[number];

export interface KeySetProblem {
  /** Index of the entry in `keys`. */
  readonly index: number;
  readonly kid: string | undefined;
  readonly message: string;
}

export interface KeySetCheck {
  /** Entries that import as a public key for at least one of the algorithms. */
  readonly usable: number;
  readonly entries: number;
  readonly problems: readonly KeySetProblem[];
}

/**
 * A key set refused by checkKeySet(). Code `keys_unavailable` (an outage to the verifier: 503
 * for a token whose key is not in the last good set), `rejection` says why.
 */
export class KeySetRejected extends AuthError {
  readonly rejection: KeySetRejection;
  readonly problems: readonly KeySetProblem[];

  constructor(rejection: KeySetRejection, message: string, problems: readonly KeySetProblem[]) {
    super('keys_unavailable', message);
    this.rejection = rejection;
    this.problems = problems;
  }
}

export async function checkKeySet(
  jwks: { readonly keys: readonly unknown[] },
  algorithms: readonly string[],
): Promise<KeySetCheck> {
  const problems: KeySetProblem[] = [];
  const usable = await Promise.all(
    jwks.keys.map(async (raw, index) => {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        problems.push({ index, kid: undefined, message: 'not a JSON object' });
        return false;
      }
      const jwk = raw as Jwk;
      const kid = typeof jwk.kid === 'string' ? jwk.kid : undefined;
      let ok = false;
      for (const alg of algorithms) {
        if (!selectsForAlgorithm(jwk, alg)) continue;
        const problem = await importProblem(jwk, alg);
        if (problem === null) ok = true;
        else problems.push({ index, kid, message: `${alg}: ${problem}` });
      }
      return ok;
    }),
  );
  problems.sort((a, b) => a.index - b.index);
  return { usable: usable.filter(Boolean).length, entries: jwks.keys.length, problems };
}

/** jose verifies RSA signatures only with a modulus of at least this many bits. */
const MIN_RSA_BITS = 2048;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * WebCrypto imports an RSA JWK whose members are not base64url, or whose modulus is a few bytes
 * long; jose then fails every token under that kid. EC and OKP points are checked by the import.
 */
function rsaProblem(jwk: Jwk): string | null {
  const { n, e } = jwk;
  if (typeof n !== 'string' || !BASE64URL.test(n)) return 'RSA member "n" is not base64url';
  if (typeof e !== 'string' || !BASE64URL.test(e)) return 'RSA member "e" is not base64url';
  const modulus = Buffer.from(n, 'base64url');
  let i = 0;
  while (i < modulus.length && modulus[i] === 0) i++;
  const bits = i === modulus.length ? 0 : (modulus.length - i - 1) * 8 + (32 - Math.clz32(modulus[i]!));
  if (bits < MIN_RSA_BITS) return `RSA modulus of ${bits} bits (jose verifies with ${MIN_RSA_BITS} or more)`;
  return null;
}

async function importProblem(jwk: Jwk, alg: string): Promise<string | null> {
  if (holdsPrivateMaterial(jwk)) return 'holds private key material (a key set publishes public keys only)';
  if (jwk.kty === 'RSA') {
    const problem = rsaProblem(jwk);
    if (problem !== null) return problem;
  }
  let key: Awaited<ReturnType<typeof importJWK>>;
  try {
    key = await importJWK({ ...jwk } as JWK, alg);
  } catch (err) {
    return `cannot be imported as a ${String(jwk.kty)} public key (${oneLine(err)})`;
  }
  if (!('type' in key) || (key as CryptoKey).type !== 'public') return 'not a public key';
  return null;
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
}

/** The problem of an entry, as a person reads it: `entry 2 (kid "k1"): RS256: ...`. */
export function describeProblem(p: KeySetProblem): string {
  return `entry ${p.index}${p.kid === undefined ? '' : ` (kid ${JSON.stringify(p.kid)})`}: ${p.message}`;
}

/** Why the checked set must not be used, or null when it may. `where` starts the message (a URL, a file). */
export function keySetRejection(
  check: KeySetCheck,
  algorithms: readonly string[],
  where: string,
): KeySetRejected | null {
  const first = check.problems[0];
  if (first !== undefined) {
    const more = check.problems.length > 1 ? ` (and ${check.problems.length - 1} more)` : '';
    return new KeySetRejected('invalid_key', `${where}: ${describeProblem(first)}${more}`, check.problems);
  }
  if (check.usable === 0) {
    return new KeySetRejected(
      'no_usable_key',
      `${where}: no key usable for ${algorithms.join(', ')} among ${check.entries} entries`,
      [],
    );
  }
  return null;
}
