import { type CryptoKey, importJWK, type JWK } from 'jose';
import { FastKey } from '../verify/jws.js';

/**
 * kid/alg -> imported public key for one JWK Set, answered synchronously.
 *
 * jose's JWKS resolvers are async functions that re-filter the set on every call; at 64
 * verifications in flight that cost ~10-15% of RS256 throughput (authz-reference 2.6). This
 * index is consulted first and returns the CryptoKey itself (jwtVerify accepts a resolver
 * returning a key). When it has no answer (unknown kid, no kid with several candidates, keys
 * not imported yet) the caller falls back to jose's resolver, which keeps every semantic:
 * refetch on unknown kid, cooldown, JWKSMultipleMatchingKeys.
 *
 * Selection mirrors jose jwks/local.js `isUsableJWK`, so the index never picks a key jose
 * would not: kty (and crv) of the algorithm, kid equality, JWK `alg` equal if present, `use`
 * absent or "sig", `key_ops` absent or containing "verify", `ext` boolean if present.
 *
 * Each entry also carries a FastKey (jws.ts): the node KeyObject behind that same CryptoKey,
 * for the synchronous fast path of verify.ts, when jose would accept the CryptoKey as is.
 */
const FAMILY: Readonly<Record<string, { readonly kty: string; readonly crv?: string }>> = {
  RS256: { kty: 'RSA' },
  RS384: { kty: 'RSA' },
  RS512: { kty: 'RSA' },
  PS256: { kty: 'RSA' },
  PS384: { kty: 'RSA' },
  PS512: { kty: 'RSA' },
  ES256: { kty: 'EC', crv: 'P-256' },
  ES384: { kty: 'EC', crv: 'P-384' },
  ES512: { kty: 'EC', crv: 'P-521' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
  Ed25519: { kty: 'OKP', crv: 'Ed25519' },
};

export type Jwk = Record<string, unknown>;

/**
 * jose's candidate rule for (JWK, algorithm), private material aside: the keys jose would try
 * for a token of this algorithm. key-set-check.ts uses it to find entries that would poison a set.
 */
export function selectsForAlgorithm(jwk: Jwk, alg: string): boolean {
  const family = FAMILY[alg];
  if (family === undefined || jwk.kty !== family.kty) return false;
  if (family.crv !== undefined && jwk.crv !== family.crv) return false;
  if (jwk.ext !== undefined && typeof jwk.ext !== 'boolean') return false;
  const ops = jwk.key_ops;
  if (ops !== undefined) {
    if (!Array.isArray(ops) || !ops.includes('verify')) return false;
    if (ops.some((op, i) => typeof op !== 'string' || ops.indexOf(op) !== i)) return false;
  }
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  return jwk.use === undefined || jwk.use === 'sig';
}

/** Private or secret material: jose refuses such a member of a key set. */
export function holdsPrivateMaterial(jwk: Jwk): boolean {
  return jwk.d !== undefined || jwk.k !== undefined || jwk.priv !== undefined;
}

function usable(jwk: Jwk, alg: string): boolean {
  // Private or secret material: leave such keys to jose's error path.
  return selectsForAlgorithm(jwk, alg) && !holdsPrivateMaterial(jwk);
}

/** One usable (key, algorithm) pair: the CryptoKey for jose, the FastKey (or null) for node:crypto. */
export interface IndexedKey {
  readonly key: CryptoKey;
  readonly fast: FastKey | null;
}

export class KeyIndex {
  /** kid -> alg -> key. */
  private readonly byKid = new Map<string, Map<string, IndexedKey>>();
  /** alg -> the only usable key for tokens without kid (absent when none or several). */
  private readonly single = new Map<string, IndexedKey>();

  /** Imports every unambiguous usable (key, algorithm) pair; keys that fail to import are left to jose. */
  static async build(
    jwks: { readonly keys: readonly unknown[] },
    algorithms: readonly string[],
  ): Promise<KeyIndex> {
    const index = new KeyIndex();
    const pairs: Array<[Jwk, string]> = [];
    const perAlg = new Map<string, number>();
    const perKid = new Map<string, number>();
    for (const raw of jwks.keys) {
      if (typeof raw !== 'object' || raw === null) continue;
      const jwk = raw as Jwk;
      for (const alg of algorithms) {
        if (!usable(jwk, alg)) continue;
        pairs.push([jwk, alg]);
        perAlg.set(alg, (perAlg.get(alg) ?? 0) + 1);
        if (typeof jwk.kid === 'string')
          perKid.set(`${jwk.kid}\u0000${alg}`, (perKid.get(`${jwk.kid}\u0000${alg}`) ?? 0) + 1);
      }
    }
    await Promise.all(
      pairs.map(async ([jwk, alg]) => {
        let key: Awaited<ReturnType<typeof importJWK>>;
        try {
          key = await importJWK({ ...jwk } as JWK, alg);
        } catch {
          return;
        }
        if (!('type' in key) || key.type !== 'public') return;
        const entry: IndexedKey = {
          key: key as CryptoKey,
          fast: FastKey.fromCryptoKey(alg, key as CryptoKey),
        };
        // Several candidates for one lookup: jose raises JWKSMultipleMatchingKeys; let it.
        if (typeof jwk.kid === 'string' && perKid.get(`${jwk.kid}\u0000${alg}`) === 1) {
          let algs = index.byKid.get(jwk.kid);
          if (algs === undefined) {
            algs = new Map();
            index.byKid.set(jwk.kid, algs);
          }
          algs.set(alg, entry);
        }
        if (perAlg.get(alg) === 1) index.single.set(alg, entry);
      }),
    );
    return index;
  }

  lookup(alg: unknown, kid: unknown): CryptoKey | undefined {
    return this.entry(alg, kid)?.key;
  }

  /** The node:crypto key for (alg, kid) when the index has one jose would accept. */
  fastLookup(alg: unknown, kid: unknown): FastKey | undefined {
    return this.entry(alg, kid)?.fast ?? undefined;
  }

  private entry(alg: unknown, kid: unknown): IndexedKey | undefined {
    if (typeof alg !== 'string') return undefined;
    if (kid === undefined) return this.single.get(alg);
    return typeof kid === 'string' ? this.byKid.get(kid)?.get(alg) : undefined;
  }
}
