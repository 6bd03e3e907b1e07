/**
 * The verifier held to jose over generated key sets and tokens. The reference is jose alone:
 * `createLocalJWKSet` (its own key selection) or the raw HMAC secret, and `jwtVerify`, with
 * jose's documented way through `JWKSMultipleMatchingKeys` (try each candidate). Around it, only
 * what the README states the agent adds, written here from the README and not from src/:
 * structure first, the issuer picked by `iss`, `exp` required, `sub` a short printable string,
 * and the mapping of jose's error codes to reasons.
 *
 * Generated: key sets of 1-4 entries over RSA (2048 and 1024 bits), P-256/384/521 and Ed25519
 * keys, with several keys per kid, no kid, numeric kids, `alg`, `use`, `key_ops` and `ext`
 * variants, private material; tokens for every algorithm the engine accepts, signed by a key
 * in the set or not, with kid variants and claim faults. Both settings (`verifier: fast` and
 * `verifier: jose`) must give the reference's answer for every case.
 */
import { createSecretKey, generateKeyPairSync, KeyObject, type webcrypto } from 'node:crypto';
import fc from 'fast-check';
import * as jose from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { AuthError } from '../../../src/auth/errors.js';
import { CompiledIssuer } from '../../../src/auth/issuer.js';
import { ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, IssuerSchema } from '../../../src/auth/issuer-config.js';
import { silentLogger } from '../../../src/auth/logger.js';
import { TokenVerifier } from '../../../src/auth/verify/verifier.js';
import { NOW_MS, NOW_S } from '../helpers/keys.js';
import { signerFor } from '../helpers/signer.js';

const ISS = 'https://idp.example.com';
const AUD = 'prefect';
const TOLERANCE = 30;
const ASYM: readonly string[] = [...ASYMMETRIC_ALGORITHMS];
const HMAC: readonly string[] = [...HMAC_ALGORITHMS];
const SECRET = Buffer.alloc(64, 'a shared edge secret long enough for HS512 ');

// ------------------------------------------------------------------------------------------
// The reference: jose, plus what the README says the agent adds.

const B64URL_PART = /^[A-Za-z0-9_-]*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function jsonObjectOf(part: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(utf8.decode(Buffer.from(part, 'base64url')));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** README "Reasons", step 3: the token's structure. */
function structureProblem(token: string): boolean {
  const parts = token.split('.');
  if (parts.length !== 3) return true;
  const [h, p, s] = parts as [string, string, string];
  if (h === '' || p === '' || ![h, p, s].every((x) => B64URL_PART.test(x) && x.length % 4 !== 1)) return true;
  const header = jsonObjectOf(h);
  if (header === null || jsonObjectOf(p) === null) return true;
  const crit = header.crit;
  if (crit !== undefined) {
    if (!Array.isArray(crit) || crit.length === 0) return true;
    if (crit.some((c) => typeof c !== 'string' || c === '' || !Object.hasOwn(header, c))) return true;
    if (crit.includes('b64') && header.b64 !== true) return true;
  }
  return typeof header.alg !== 'string' || header.alg === '';
}

/** jose error code -> reason, as the README's reason table describes them. */
function reasonOf(err: unknown): string {
  const e = err as { code?: string; claim?: string; reason?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'nbf' && e.reason === 'check_failed') return 'not_yet_valid';
      if (e.claim === 'aud') return 'bad_audience';
      return 'bad_claims';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad_signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'bad_algorithm';
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'bad_algorithm';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'malformed_token';
    // The key set is junk (e.g. a member with private material): the provider's fault, 503.
    case 'ERR_JWKS_INVALID':
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JOSE_GENERIC':
      return 'keys_unavailable';
    default:
      // No matching key, several and none verifying, a key jose refuses to use (TypeError).
      return 'unknown_key';
  }
}

async function reference(
  token: string,
  keys: jose.JWTVerifyGetKey | Uint8Array,
  algorithms: readonly string[],
): Promise<string> {
  if (structureProblem(token)) return 'malformed_token';
  const payload = jsonObjectOf(token.split('.')[1] as string) as Record<string, unknown>;
  if (payload.iss !== ISS) return 'unknown_issuer';
  const options: jose.JWTVerifyOptions = {
    algorithms: [...algorithms],
    issuer: ISS,
    audience: AUD,
    clockTolerance: TOLERANCE,
    requiredClaims: ['exp'],
    currentDate: new Date(NOW_MS),
  };
  let result: jose.JWTVerifyResult;
  try {
    result =
      keys instanceof Uint8Array
        ? await jose.jwtVerify(token, keys, options)
        : await jose.jwtVerify(token, keys, options);
  } catch (err) {
    const e = err as { code?: string };
    if (
      e.code === 'ERR_JOSE_NOT_SUPPORTED' &&
      jsonObjectOf(token.split('.')[0] as string)?.crit !== undefined
    )
      return 'malformed_token';
    if (e.code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') return reasonOf(err);
    let last = 'bad_signature';
    for await (const key of err as AsyncIterable<jose.CryptoKey>) {
      try {
        result = await jose.jwtVerify(token, key, options);
        return subProblem(result.payload) ?? 'ok';
      } catch (inner) {
        last = reasonOf(inner);
        if (last !== 'bad_signature') return last;
      }
    }
    return last;
  }
  return subProblem(result.payload) ?? 'ok';
}

/** README: `sub` is a printable string of at most 512 characters, or absent. */
function subProblem(payload: jose.JWTPayload): string | null {
  const sub = payload.sub;
  if (sub === undefined) return null;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are the point
  return typeof sub === 'string' && sub.length <= 512 && !/[\u0000-\u001f\u007f]/.test(sub)
    ? null
    : 'bad_claims';
}

// ------------------------------------------------------------------------------------------
// Keys, key sets and tokens.

interface PoolKey {
  readonly name: string;
  /** Algorithms this key can sign. */
  readonly algs: readonly string[];
  readonly publicJwk: jose.JWK;
  readonly privateJwk: jose.JWK;
  readonly privateKey: KeyObject;
}

let pool: PoolKey[];

async function poolKey(name: string, genAlg: string, algs: string[]): Promise<PoolKey> {
  const pair = await jose.generateKeyPair(genAlg, { extractable: true });
  return {
    name,
    algs,
    publicJwk: await jose.exportJWK(pair.publicKey),
    privateJwk: await jose.exportJWK(pair.privateKey),
    privateKey: KeyObject.from(pair.privateKey as unknown as webcrypto.CryptoKey),
  };
}

/** jose will not generate RSA under 2048 bits; node:crypto will (jose refuses to verify with it). */
async function weakRsaKey(): Promise<PoolKey> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  return {
    name: 'rsa-1024',
    algs: RSA_ALGS,
    publicJwk: publicKey.export({ format: 'jwk' }) as jose.JWK,
    privateJwk: privateKey.export({ format: 'jwk' }) as jose.JWK,
    privateKey,
  };
}

const RSA_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];

beforeAll(async () => {
  pool = await Promise.all([
    poolKey('rsa-a', 'RS256', RSA_ALGS),
    poolKey('rsa-b', 'RS256', RSA_ALGS),
    weakRsaKey(),
    poolKey('p256-a', 'ES256', ['ES256']),
    poolKey('p256-b', 'ES256', ['ES256']),
    poolKey('p384', 'ES384', ['ES384']),
    poolKey('p521', 'ES512', ['ES512']),
    poolKey('ed-a', 'EdDSA', ['EdDSA', 'Ed25519']),
    poolKey('ed-b', 'EdDSA', ['EdDSA', 'Ed25519']),
  ]);
}, 120_000);

const entryArb = fc.record({
  key: fc.nat({ max: 8 }),
  kid: fc.constantFrom(undefined, undefined, 'a', 'a', 'b', 7, ''),
  alg: fc.constantFrom('absent', 'absent', 'first', 'last', 'other'),
  use: fc.constantFrom(undefined, undefined, undefined, 'sig', 'enc'),
  keyOps: fc.constantFrom<unknown>(
    undefined,
    undefined,
    undefined,
    ['verify'],
    ['sign'],
    ['verify', 'sign'],
    ['verify', 'verify'],
    'verify',
    [],
  ),
  ext: fc.constantFrom<unknown>(undefined, undefined, true, false, 'yes'),
  priv: fc.constantFrom(false, false, false, false, false, false, true),
});
type Entry = typeof entryArb extends fc.Arbitrary<infer T> ? T : never;

function jwkOf(e: Entry): jose.JWK {
  const k = pool[e.key] as PoolKey;
  const jwk: Record<string, unknown> = { ...(e.priv ? k.privateJwk : k.publicJwk) };
  if (e.kid !== undefined) jwk.kid = e.kid;
  if (e.alg === 'first') jwk.alg = k.algs[0];
  if (e.alg === 'last') jwk.alg = k.algs[k.algs.length - 1];
  if (e.alg === 'other') jwk.alg = k.algs.includes('ES256') ? 'ES384' : 'ES256';
  if (e.use !== undefined) jwk.use = e.use;
  if (e.keyOps !== undefined) jwk.key_ops = e.keyOps;
  if (e.ext !== undefined) jwk.ext = e.ext;
  return jwk as jose.JWK;
}

const tokenArb = fc.record({
  signer: fc.nat({ max: 8 }),
  /** Index into the signer's algorithms, or an algorithm of another family. */
  alg: fc.oneof(fc.nat({ max: 5 }), fc.constantFrom('ES256', 'RS256', 'EdDSA', 'HS256', 'none')),
  kid: fc.constantFrom<unknown>(undefined, undefined, 'a', 'a', 'b', 'zzz', 7, ''),
  header: fc.constantFrom<Record<string, unknown>>(
    {},
    {},
    {},
    {},
    {},
    {},
    {},
    {},
    { typ: 'at+jwt' },
    { cty: 'JWT', x5t: 'thumb' },
    { jku: 'https://evil.example.com/jwks' },
    { crit: ['b64'], b64: true },
    { crit: ['urn:x'], 'urn:x': 1 },
    { crit: [] },
  ),
  claims: fc.constantFrom(
    'ok',
    'ok',
    'ok',
    'expired',
    'aud',
    'aud-array',
    'no-exp',
    'exp-string',
    'exp-float',
    'iat-string',
    'nbf',
    'iss',
    'sub',
  ),
  sig: fc.constantFrom('ok', 'ok', 'ok', 'ok', 'flip', 'empty'),
  /** Most tokens are signed by a key of the set, with its kid: the cases the fast path takes. */
  fromSet: fc.constantFrom(true, true, true, false),
});
type TokenCase = typeof tokenArb extends fc.Arbitrary<infer T> ? T : never;

function claimsOf(kind: string): Record<string, unknown> {
  const c: Record<string, unknown> = { iss: ISS, aud: AUD, sub: 'alice', iat: NOW_S, exp: NOW_S + 600 };
  if (kind === 'expired') c.exp = NOW_S - 3600;
  if (kind === 'aud') c.aud = 'grafana';
  if (kind === 'no-exp') delete c.exp;
  if (kind === 'nbf') c.nbf = NOW_S + 3600;
  if (kind === 'iss') c.iss = 'https://evil.example.com';
  if (kind === 'sub') c.sub = 'a\nb';
  if (kind === 'aud-array') c.aud = ['grafana', AUD];
  if (kind === 'exp-string') c.exp = String(c.exp);
  if (kind === 'exp-float') c.exp = NOW_S - TOLERANCE + 0.5;
  if (kind === 'iat-string') c.iat = 'now';
  return c;
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** A token as the case says, or null when the key cannot sign it (PS512 with 1024 bits). */
function mint(t: TokenCase, secret: KeyObject | null): string | null {
  const k = pool[t.signer] as PoolKey;
  const alg = typeof t.alg === 'number' ? (k.algs[t.alg % k.algs.length] as string) : t.alg;
  const header: Record<string, unknown> = { alg, typ: 'JWT', ...t.header };
  if (t.kid !== undefined) header.kid = t.kid;
  const input = `${b64(header)}.${b64(claimsOf(t.claims))}`;
  let sig: Buffer;
  try {
    sig =
      alg === 'none'
        ? Buffer.alloc(0)
        : signerFor(alg, alg.startsWith('HS') ? (secret as KeyObject) : k.privateKey)(Buffer.from(input));
  } catch {
    return null;
  }
  if (t.sig === 'flip' && sig.length > 0) sig[sig.length >> 1] = (sig[sig.length >> 1] as number) ^ 1;
  if (t.sig === 'empty') sig = Buffer.alloc(0);
  return `${input}.${sig.toString('base64url')}`;
}

function verifiers(config: Record<string, unknown>): {
  fast: TokenVerifier;
  jose: TokenVerifier;
  issuer: CompiledIssuer;
} {
  const issuer = new CompiledIssuer(IssuerSchema.parse(config), {
    fetch: () => Promise.reject(new Error('no network in this test')),
    logger: silentLogger,
    persistDir: null,
  });
  return {
    issuer,
    fast: new TokenVerifier([issuer], []),
    jose: new TokenVerifier([issuer], [], { verifier: 'jose' }),
  };
}

async function outcomeOf(v: TokenVerifier, token: string): Promise<string> {
  const o = await v.verify(token, NOW_MS, null);
  return o.ok ? 'ok' : o.reason;
}

// ------------------------------------------------------------------------------------------

describe('fast path and verifier: jose against jose alone', () => {
  it('agree over generated key sets and tokens, every asymmetric algorithm', async () => {
    let compared = 0;
    let fastTaken = 0;
    const reasons = new Set<string>();
    const wanted = ['ok', 'bad_signature', 'unknown_key', 'bad_algorithm', 'expired', 'bad_audience'];
    // Random seeds, so each run explores other cases; rarely a run reaches too few of the cases
    // counted below, and then another run follows (at most three).
    for (
      let run = 0;
      run < 3 && !(compared > 200 && fastTaken > 20 && wanted.every((r) => reasons.has(r)));
      run++
    )
      await fc.assert(
        fc.asyncProperty(
          fc.array(entryArb, { minLength: 1, maxLength: 4 }),
          fc.array(tokenArb, { minLength: 1, maxLength: 6 }),
          async (entries, tokens) => {
            const jwks = { keys: entries.map(jwkOf) };
            let v: ReturnType<typeof verifiers>;
            try {
              v = verifiers({
                id: 'idp',
                issuer: ISS,
                audiences: [AUD],
                algorithms: ASYM,
                clockToleranceSeconds: TOLERANCE,
                keys: { type: 'jwks', jwks },
              });
              await v.issuer.keys.start();
            } catch (err) {
              // A set the agent refuses to start with is never verified against.
              if (err instanceof AuthError) return;
              throw err;
            }
            const local = jose.createLocalJWKSet(jwks);
            for (const generated of tokens) {
              let t = generated;
              if (t.fromSet) {
                const e = entries[t.signer % entries.length] as Entry;
                t = { ...t, signer: e.key, kid: e.kid };
              }
              const token = mint(t, null);
              if (token === null) continue;
              const want = await reference(token, local, ASYM);
              const before = v.fast.paths.fast;
              const fast = await outcomeOf(v.fast, token);
              if (v.fast.paths.fast > before) fastTaken++;
              const viaJose = await outcomeOf(v.jose, token);
              expect({ fast, jose: viaJose }, `${token}\n${JSON.stringify(jwks)}`).toEqual({
                fast: want,
                jose: want,
              });
              reasons.add(want);
              compared++;
            }
          },
        ),
        { numRuns: 400 },
      );
    expect(compared).toBeGreaterThan(200);
    // A sanity bound: the generator must reach the fast path at all (about 50-65 per run).
    expect(fastTaken).toBeGreaterThan(20);
    for (const r of wanted) expect(reasons, r).toContain(r);
  }, 240_000);

  it('agree for HMAC secrets over every HS algorithm', async () => {
    const v = verifiers({
      id: 'edge',
      issuer: ISS,
      audiences: [AUD],
      algorithms: HMAC,
      clockToleranceSeconds: TOLERANCE,
      keys: { type: 'secret', value: SECRET.toString('base64'), encoding: 'base64' },
    });
    await v.issuer.keys.start();
    const secret = createSecretKey(SECRET);
    const other = createSecretKey(Buffer.alloc(64, 'x'));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...HMAC, 'RS256', 'none'),
        fc.constantFrom<unknown>(undefined, 'edge', 7),
        fc.constantFrom('ok', 'ok', 'expired', 'aud', 'no-exp', 'nbf', 'iss', 'sub'),
        fc.constantFrom('ok', 'ok', 'other', 'flip', 'empty'),
        async (alg, kid, claims, sig) => {
          const header: Record<string, unknown> = { alg, ...(kid === undefined ? {} : { kid }) };
          const input = `${b64(header)}.${b64(claimsOf(claims))}`;
          let s = alg.startsWith('HS')
            ? signerFor(alg, sig === 'other' ? other : secret)(Buffer.from(input))
            : Buffer.from('not a signature');
          if (sig === 'flip') s[0] = (s[0] as number) ^ 1;
          if (sig === 'empty') s = Buffer.alloc(0);
          const token = `${input}.${s.toString('base64url')}`;
          const want = await reference(token, new Uint8Array(SECRET), HMAC);
          expect({ fast: await outcomeOf(v.fast, token), jose: await outcomeOf(v.jose, token) }).toEqual({
            fast: want,
            jose: want,
          });
        },
      ),
      { numRuns: 300, interruptAfterTimeLimit: 15_000 },
    );
  }, 30_000);
});
