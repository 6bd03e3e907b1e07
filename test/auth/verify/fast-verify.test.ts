/**
 * The fast path (verifier.ts with jws.ts and claims-validation.ts: node:crypto + a mirror of
 * jose's claim checks) against `verifier: jose` (jose's jwtVerify with jose's own key selection,
 * createLocalJWKSet or the raw secret), on the same issuers, keys and clock. Every case is
 * verified by both; outcomes (ok, reason, issuer, and the whole identity when ok) must be equal,
 * and the case table also pins which path answered. jose-differential.test.ts does the same
 * over generated key sets against jose alone.
 */
import { createSecretKey, generateKeyPairSync, KeyObject, type webcrypto } from 'node:crypto';
import fc from 'fast-check';
import * as jose from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileClaimPath } from '../../../src/auth/claims.js';
import { AuthzEngine, type Decision } from '../../../src/auth/index.js';
import { CompiledIssuer } from '../../../src/auth/issuer.js';
import { ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, IssuerSchema } from '../../../src/auth/issuer-config.js';
import { silentLogger } from '../../../src/auth/logger.js';
import { TokenVerifier, type VerifyOutcome } from '../../../src/auth/verify/verifier.js';
import { jwks as jwksOf, makeKey, NOW_MS, NOW_S } from '../helpers/keys.js';
import { request } from '../helpers/request.js';
import { signerFor } from '../helpers/signer.js';

// Every algorithm an issuer may be configured with.
const ASYM = [...ASYMMETRIC_ALGORITHMS];
const HMAC = [...HMAC_ALGORITHMS];
const ALL = [...ASYM, ...HMAC];

const A = 'https://idp.example.com';
const S = 'https://strict.example.com';
const E = 'https://edge.example.com';
const SH = 'https://strict-edge.example.com';
const W = 'https://weak.example.com';
const R = 'https://rotating.example.com';
const AUD = 'prefect';
const SECRET = Buffer.alloc(64, 'an edge secret, long enough for HS512; ');

interface AlgKey {
  readonly alg: string;
  readonly kid: string;
  readonly iss: string;
  readonly strictIss: string;
  readonly sign: (data: Buffer) => Buffer;
  /** Same algorithm, another key. */
  readonly signOther: (data: Buffer) => Buffer;
  /** jose's own signer, for tokens minted the ordinary way. */
  readonly joseKey: jose.CryptoKey | Uint8Array;
}

const keyObject = (k: jose.CryptoKey) => KeyObject.from(k as unknown as webcrypto.CryptoKey);

let keys: Record<string, AlgKey>;
let fast: TokenVerifier;
let slow: TokenVerifier;
let weak: (data: Buffer) => Buffer;
let rotating: [(data: Buffer) => Buffer, (data: Buffer) => Buffer];

function issuer(config: Record<string, unknown>): CompiledIssuer {
  return new CompiledIssuer(IssuerSchema.parse(config), {
    fetch: () => Promise.reject(new Error('no network in this test')),
    logger: silentLogger,
    persistDir: null,
  });
}

beforeAll(async () => {
  keys = {};
  const jwks: jose.JWK[] = [];
  for (const alg of ASYM) {
    const pair = await jose.generateKeyPair(alg, { extractable: true });
    const other = await jose.generateKeyPair(alg, { extractable: true });
    const kid = `k-${alg}`;
    jwks.push({ ...(await jose.exportJWK(pair.publicKey)), kid, alg, use: 'sig' });
    keys[alg] = {
      alg,
      kid,
      iss: A,
      strictIss: S,
      sign: signerFor(alg, keyObject(pair.privateKey)),
      signOther: signerFor(alg, keyObject(other.privateKey)),
      joseKey: pair.privateKey,
    };
  }
  const secret = createSecretKey(SECRET);
  const otherSecret = createSecretKey(Buffer.alloc(64, 'x'));
  for (const alg of HMAC) {
    keys[alg] = {
      alg,
      kid: 'edge',
      iss: E,
      strictIss: SH,
      sign: signerFor(alg, secret),
      signOther: signerFor(alg, otherSecret),
      joseKey: SECRET,
    };
  }
  // RSA-1024: jose refuses it (checkModulusLength), so the fast path must leave it to jose.
  const weakPair = generateKeyPairSync('rsa', { modulusLength: 1024 });
  weak = signerFor('RS256', weakPair.privateKey);
  const weakJwk = { ...weakPair.publicKey.export({ format: 'jwk' }), kid: 'weak', alg: 'RS256' };
  // Two ES256 keys: a token without kid matches both (jose: JWKSMultipleMatchingKeys, try each).
  const r1 = await jose.generateKeyPair('ES256', { extractable: true });
  const r2 = await jose.generateKeyPair('ES256', { extractable: true });
  rotating = [signerFor('ES256', keyObject(r1.privateKey)), signerFor('ES256', keyObject(r2.privateKey))];
  const rotatingJwks = [
    { ...(await jose.exportJWK(r1.publicKey)), kid: 'r1' },
    { ...(await jose.exportJWK(r2.publicKey)), kid: 'r2' },
  ];
  const secretKeys = { type: 'secret', value: SECRET.toString('base64'), encoding: 'base64' };
  const strict = {
    typ: 'at+jwt',
    maxTokenAgeSeconds: 600,
    requiredClaims: ['email'],
    critical: ['urn:example:ext'],
  };
  const issuers = [
    issuer({
      id: 'a',
      issuer: A,
      audiences: [AUD, 'other'],
      algorithms: ASYM,
      keys: { type: 'jwks', jwks: { keys: jwks } },
    }),
    issuer({
      id: 's',
      issuer: S,
      audiences: [AUD],
      algorithms: ASYM,
      keys: { type: 'jwks', jwks: { keys: jwks } },
      ...strict,
    }),
    issuer({ id: 'e', issuer: E, audiences: [AUD, 'other'], algorithms: HMAC, keys: secretKeys }),
    issuer({ id: 'sh', issuer: SH, audiences: [AUD], algorithms: HMAC, keys: secretKeys, ...strict }),
    issuer({
      id: 'w',
      issuer: W,
      audiences: [AUD],
      algorithms: ['RS256'],
      keys: { type: 'jwks', jwks: { keys: [weakJwk] } },
    }),
    issuer({
      id: 'r',
      issuer: R,
      audiences: [AUD],
      algorithms: ['ES256'],
      clockToleranceSeconds: 0,
      keys: { type: 'jwks', jwks: { keys: rotatingJwks } },
    }),
  ];
  // The weak-key issuer's set is refused at start (key-set-check.ts); its index is built all the
  // same, so the fast path and jose are still compared on a key jose refuses.
  await Promise.all(
    issuers.map((i) =>
      i.id === 'w' ? expect(i.keys.start()).rejects.toThrow(/RSA modulus of 1024 bits/) : i.keys.start(),
    ),
  );
  const forward = [{ name: 'email', claim: 'email', maxLength: 64, path: compileClaimPath('email') }];
  fast = new TokenVerifier(issuers, forward);
  slow = new TokenVerifier(issuers, forward, { verifier: 'jose' });
  // RSA key generation for every algorithm: slow on a busy 2-core machine.
}, 60_000);

// ---------------------------------------------------------------------------------------------

type Part = Record<string, unknown> | string | Buffer;

interface Mint {
  header?: Part;
  payload?: Part;
  /** Signature bytes from the signing input (default: the key's signer). */
  signer?: (data: Buffer) => Buffer;
  /** Applied to the signature bytes. */
  sig?: (sig: Buffer) => Buffer;
  /** Appended to the header / payload segment before signing (to make a length 1 mod 4). */
  headerTail?: string;
  payloadTail?: string;
}

/** Object members with value undefined are removed from the defaults. */
function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base, ...over };
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out;
}

const segment = (part: Part) =>
  (Buffer.isBuffer(part)
    ? part
    : Buffer.from(typeof part === 'string' ? part : JSON.stringify(part))
  ).toString('base64url');

function defaultPayload(iss: string): Record<string, unknown> {
  return { iss, aud: AUD, sub: 'alice', iat: NOW_S, exp: NOW_S + 3600, email: 'a@example.com' };
}

/** A token signed over exactly the segments given, whatever they contain. */
function mint(k: AlgKey, m: Mint = {}, iss = k.iss): string {
  const header =
    m.header === undefined || (typeof m.header === 'object' && !Buffer.isBuffer(m.header))
      ? merge({ alg: k.alg, typ: 'JWT', kid: k.kid }, (m.header as Record<string, unknown>) ?? {})
      : m.header;
  const payload =
    m.payload === undefined || (typeof m.payload === 'object' && !Buffer.isBuffer(m.payload))
      ? merge(defaultPayload(iss), (m.payload as Record<string, unknown>) ?? {})
      : m.payload;
  const input = `${segment(header)}${m.headerTail ?? ''}.${segment(payload)}${m.payloadTail ?? ''}`;
  let sig = (m.signer ?? k.sign)(Buffer.from(input));
  if (m.sig) sig = m.sig(sig);
  return `${input}.${sig.toString('base64url')}`;
}

/** For the strict issuers: typ at+jwt unless the case says otherwise. */
const strictMint = (
  k: AlgKey,
  m: { header?: Record<string, unknown>; payload?: Record<string, unknown> } = {},
) => mint(k, { payload: m.payload ?? {}, header: { typ: 'at+jwt', ...m.header } }, k.strictIss);

function summary(o: VerifyOutcome): unknown {
  return o.ok ? { ok: true, identity: o.identity } : { ok: false, reason: o.reason, iss: o.iss };
}

/** Both verifiers on one token; which path the fast-enabled one took. */
async function both(token: string): Promise<{ fast: VerifyOutcome; jose: VerifyOutcome; path: string }> {
  const before = { ...fast.paths };
  const a = await fast.verify(token, NOW_MS, null);
  const path = fast.paths.fast > before.fast ? 'fast' : fast.paths.jose > before.jose ? 'jose' : 'none';
  const b = await slow.verify(token, NOW_MS, null);
  expect(slow.paths.fast).toBe(0);
  return { fast: a, jose: b, path };
}

type Case = [
  name: string,
  reason: string,
  path: 'fast' | 'jose' | 'none',
  make: (k: AlgKey) => string | Promise<string>,
];

/** Characters to cut from a part of `length` so that it becomes 1 mod 4 (not base64 to jose). */
const lengthTo1Mod4 = (length: number) => (((length - 1) % 4) + 4) % 4;
/** Characters to add to a part of `length` so that it becomes 1 mod 4. */
const padTo1Mod4 = (length: number) => (((1 - length) % 4) + 4) % 4;

const flip = (sig: Buffer) => {
  const out = Buffer.from(sig);
  out[out.length >> 1] = (out[out.length >> 1] as number) ^ 1;
  return out;
};

const CASES: Case[] = [
  [
    'valid, minted by jose SignJWT',
    'ok',
    'fast',
    (k) =>
      new jose.SignJWT({ email: 'a@example.com', roles: ['x'] })
        .setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'JWT' })
        .setIssuer(k.iss)
        .setAudience(AUD)
        .setSubject('alice')
        .setIssuedAt(NOW_S)
        .setExpirationTime(NOW_S + 60)
        .sign(k.joseKey),
  ],
  ['valid', 'ok', 'fast', (k) => mint(k)],
  ['valid without typ', 'ok', 'fast', (k) => mint(k, { header: { typ: undefined } })],
  ['valid with cty and x5t', 'ok', 'fast', (k) => mint(k, { header: { cty: 'JWT', x5t: 'abc' } })],
  ['valid, non-ASCII claims', 'ok', 'fast', (k) => mint(k, { payload: { name: 'Zoë ✓' } })],
  [
    'valid, payload with a UTF-8 BOM (jose strips it)',
    'ok',
    'fast',
    (k) =>
      mint(k, {
        payload: Buffer.concat([
          Buffer.from([0xef, 0xbb, 0xbf]),
          Buffer.from(JSON.stringify(defaultPayload(k.iss))),
        ]),
      }),
  ],
  [
    'valid, exp 1e400 (Infinity)',
    'ok',
    'fast',
    (k) => mint(k, { payload: `{"iss":"${k.iss}","aud":"${AUD}","exp":1e400}` }),
  ],
  ['signature by another key', 'bad_signature', 'fast', (k) => mint(k, { signer: k.signOther })],
  ['signature with a flipped bit', 'bad_signature', 'fast', (k) => mint(k, { sig: flip })],
  ['signature one byte short', 'bad_signature', 'fast', (k) => mint(k, { sig: (s) => s.subarray(0, -1) })],
  [
    'signature one byte long',
    'bad_signature',
    'fast',
    (k) => mint(k, { sig: (s) => Buffer.concat([s, Buffer.from([0])]) }),
  ],
  [
    'signature with a leading zero byte',
    'bad_signature',
    'fast',
    (k) => mint(k, { sig: (s) => Buffer.concat([Buffer.from([0]), s]) }),
  ],
  ['empty signature', 'bad_signature', 'fast', (k) => mint(k, { sig: () => Buffer.alloc(0) })],
  [
    'signature segment of length 1 mod 4',
    'malformed_token',
    'none',
    (k) => {
      const token = mint(k);
      return token.slice(0, token.length - lengthTo1Mod4(token.length - token.lastIndexOf('.') - 1));
    },
  ],
  [
    'payload swapped after signing',
    'bad_signature',
    'fast',
    (k) => {
      const [h, , s] = mint(k).split('.');
      const [, p] = mint(k, { payload: { sub: 'root' } }).split('.');
      return `${h}.${p}.${s}`;
    },
  ],
  ['expired an hour ago', 'expired', 'fast', (k) => mint(k, { payload: { exp: NOW_S - 3600 } })],
  ['exp 29 s ago (within tolerance)', 'ok', 'fast', (k) => mint(k, { payload: { exp: NOW_S - 29 } })],
  ['exp exactly tolerance ago', 'expired', 'fast', (k) => mint(k, { payload: { exp: NOW_S - 30 } })],
  ['exp 31 s ago', 'expired', 'fast', (k) => mint(k, { payload: { exp: NOW_S - 31 } })],
  ['exp fractional', 'ok', 'fast', (k) => mint(k, { payload: { exp: NOW_S - 29.5 } })],
  ['nbf in an hour', 'not_yet_valid', 'fast', (k) => mint(k, { payload: { nbf: NOW_S + 3600 } })],
  ['nbf exactly tolerance ahead', 'ok', 'fast', (k) => mint(k, { payload: { nbf: NOW_S + 30 } })],
  ['nbf 31 s ahead', 'not_yet_valid', 'fast', (k) => mint(k, { payload: { nbf: NOW_S + 31 } })],
  ['nbf a string', 'bad_claims', 'fast', (k) => mint(k, { payload: { nbf: 'soon' } })],
  ['nbf null', 'bad_claims', 'fast', (k) => mint(k, { payload: { nbf: null } })],
  ['iat a string', 'bad_claims', 'fast', (k) => mint(k, { payload: { iat: 'now' } })],
  ['iat in the future (no maxTokenAge)', 'ok', 'fast', (k) => mint(k, { payload: { iat: NOW_S + 3600 } })],
  ['missing exp', 'bad_claims', 'fast', (k) => mint(k, { payload: { exp: undefined } })],
  ['exp a string', 'bad_claims', 'fast', (k) => mint(k, { payload: { exp: 'tomorrow' } })],
  ['wrong iss', 'unknown_issuer', 'none', (k) => mint(k, {}, 'https://evil.example.com')],
  [
    'iss of another issuer (signature still checked)',
    'bad_signature',
    'fast',
    (k) => mint(k, { signer: k.signOther }, k.strictIss),
  ],
  [
    'two iss members (last wins)',
    'bad_signature',
    'fast',
    (k) =>
      mint(k, {
        signer: k.signOther,
        payload: `{"iss":"x","iss":"${k.iss}","aud":"${AUD}","exp":${NOW_S + 60}}`,
      }),
  ],
  ['wrong aud', 'bad_audience', 'fast', (k) => mint(k, { payload: { aud: 'grafana' } })],
  [
    'aud array with an accepted member',
    'ok',
    'fast',
    (k) => mint(k, { payload: { aud: ['grafana', 'other'] } }),
  ],
  [
    'aud array without one',
    'bad_audience',
    'fast',
    (k) => mint(k, { payload: { aud: ['grafana', 'loki'] } }),
  ],
  ['aud array with a non-string', 'ok', 'fast', (k) => mint(k, { payload: { aud: [1, AUD] } })],
  ['aud a number', 'bad_audience', 'fast', (k) => mint(k, { payload: { aud: 5 } })],
  ['missing aud', 'bad_audience', 'fast', (k) => mint(k, { payload: { aud: undefined } })],
  ['sub too long', 'bad_claims', 'fast', (k) => mint(k, { payload: { sub: 'x'.repeat(513) } })],
  ['sub of 512 characters', 'ok', 'fast', (k) => mint(k, { payload: { sub: 'x'.repeat(512) } })],
  ['sub with a newline', 'bad_claims', 'fast', (k) => mint(k, { payload: { sub: 'alice\nX: 1' } })],
  ['sub a number', 'bad_claims', 'fast', (k) => mint(k, { payload: { sub: 42 } })],
  [
    'payload not JSON (signed)',
    'malformed_token',
    'none',
    (k) => mint(k, { payload: `{"iss":"${k.iss}", nope` }),
  ],
  [
    'payload a JSON array (signed)',
    'malformed_token',
    'none',
    (k) => mint(k, { payload: `[{"iss":"${k.iss}"}]` }),
  ],
  [
    'payload invalid UTF-8 (signed)',
    'malformed_token',
    'none',
    (k) =>
      mint(k, {
        payload: Buffer.concat([
          Buffer.from(`{"iss":"${k.iss}","x":"`),
          Buffer.from([0xc3, 0x28]),
          Buffer.from('"}'),
        ]),
      }),
  ],
  [
    'payload segment of length 1 mod 4 (signed)',
    'malformed_token',
    'none',
    (k) => mint(k, { payloadTail: 'A'.repeat(padTo1Mod4(segment(defaultPayload(k.iss)).length)) }),
  ],
  [
    'header segment of length 1 mod 4 (signed)',
    'malformed_token',
    'none',
    (k) =>
      mint(k, { headerTail: 'A'.repeat(padTo1Mod4(segment({ alg: k.alg, typ: 'JWT', kid: k.kid }).length)) }),
  ],
  [
    'alg none',
    'bad_algorithm',
    'jose',
    (k) => mint(k, { header: { alg: 'none' }, sig: () => Buffer.alloc(0) }),
  ],
  ['alg empty', 'malformed_token', 'none', (k) => mint(k, { header: { alg: '' } })],
  [
    'alg of the other family',
    'bad_algorithm',
    'jose',
    (k) => mint(k, { header: { alg: k.alg.startsWith('HS') ? 'RS256' : 'HS256' } }),
  ],
  ['alg unknown to jose', 'bad_algorithm', 'jose', (k) => mint(k, { header: { alg: 'XS256' } })],
  ['header without alg', 'malformed_token', 'none', (k) => mint(k, { header: { alg: undefined } })],
  ['header a JSON array', 'malformed_token', 'none', (k) => mint(k, { header: `[{"alg":"${k.alg}"}]` })],
  [
    'header with a duplicate alg (last wins)',
    'ok',
    'fast',
    (k) => mint(k, { header: `{"alg":"none","alg":"${k.alg}","kid":"${k.kid}"}` }),
  ],
  [
    'header with __proto__',
    'ok',
    'jose',
    (k) => mint(k, { header: `{"alg":"${k.alg}","kid":"${k.kid}","__proto__":{"crit":["x"]}}` }),
  ],
  ['header non-ASCII', 'ok', 'jose', (k) => mint(k, { header: { typ: 'JWT✓' } })],
  [
    'crit we do not know',
    'malformed_token',
    'jose',
    (k) => mint(k, { header: { crit: ['urn:evil'], 'urn:evil': 1 } }),
  ],
  ['crit empty', 'malformed_token', 'none', (k) => mint(k, { header: { crit: [] } })],
  [
    'b64 false with crit',
    'malformed_token',
    'none',
    (k) => mint(k, { header: { b64: false, crit: ['b64'] } }),
  ],
  ['b64 false without crit (ignored by jose)', 'ok', 'jose', (k) => mint(k, { header: { b64: false } })],
  [
    'jku in the header (jose ignores it)',
    'ok',
    'jose',
    (k) => mint(k, { header: { jku: 'https://evil.example.com/jwks' } }),
  ],
  ['jwk in the header', 'ok', 'jose', (k) => mint(k, { header: { jwk: { kty: 'oct', k: 'AAAA' } } })],
  ['x5u in the header', 'ok', 'jose', (k) => mint(k, { header: { x5u: 'https://evil.example.com/cert' } })],
  [
    'kid unknown',
    'unknown_key',
    'jose',
    (k) => (k.alg.startsWith('HS') ? 'skip' : mint(k, { header: { kid: 'nope' } })),
  ],
  [
    'kid a number',
    'unknown_key',
    'jose',
    (k) => (k.alg.startsWith('HS') ? 'skip' : mint(k, { header: { kid: 7 } })),
  ],
  [
    "kid of another algorithm's key",
    'unknown_key',
    'jose',
    (k) =>
      k.alg.startsWith('HS')
        ? 'skip'
        : mint(k, { header: { kid: k.alg === 'ES256' ? 'k-ES384' : 'k-ES256' } }),
  ],
  ['no kid (one key for the algorithm)', 'ok', 'fast', (k) => mint(k, { header: { kid: undefined } })],
  // The strict issuers: typ at+jwt, email required, maxTokenAge 600 s, crit urn:example:ext known.
  ['strict: valid', 'ok', 'fast', (k) => strictMint(k)],
  [
    'strict: typ application/AT+JWT',
    'ok',
    'fast',
    (k) => strictMint(k, { header: { typ: 'application/AT+JWT' } }),
  ],
  ['strict: typ JWT', 'bad_claims', 'fast', (k) => strictMint(k, { header: { typ: 'JWT' } })],
  ['strict: typ missing', 'bad_claims', 'fast', (k) => strictMint(k, { header: { typ: undefined } })],
  ['strict: typ a number', 'bad_claims', 'fast', (k) => strictMint(k, { header: { typ: 1 } })],
  ['strict: email missing', 'bad_claims', 'fast', (k) => strictMint(k, { payload: { email: undefined } })],
  ['strict: iat missing', 'bad_claims', 'fast', (k) => strictMint(k, { payload: { iat: undefined } })],
  [
    'strict: iat 630 s ago (max + tolerance)',
    'ok',
    'fast',
    (k) => strictMint(k, { payload: { iat: NOW_S - 630 } }),
  ],
  ['strict: iat 631 s ago', 'expired', 'fast', (k) => strictMint(k, { payload: { iat: NOW_S - 631 } })],
  ['strict: iat 31 s ahead', 'bad_claims', 'fast', (k) => strictMint(k, { payload: { iat: NOW_S + 31 } })],
  ['strict: iat a string', 'bad_claims', 'fast', (k) => strictMint(k, { payload: { iat: '0' } })],
  [
    'strict: expired and too old (exp checked first)',
    'expired',
    'fast',
    (k) => strictMint(k, { payload: { iat: NOW_S - 7200, exp: NOW_S - 3600 } }),
  ],
  [
    'strict: wrong aud and no email (email reported)',
    'bad_claims',
    'fast',
    (k) => strictMint(k, { payload: { aud: 'x', email: undefined } }),
  ],
  [
    'strict: the known crit',
    'ok',
    'jose',
    (k) => strictMint(k, { header: { crit: ['urn:example:ext'], 'urn:example:ext': 1 } }),
  ],
  [
    'strict: a known crit without its member',
    'malformed_token',
    'none',
    (k) => strictMint(k, { header: { crit: ['urn:example:ext'] } }),
  ],
];

describe('fast path and jose agree, for every algorithm', () => {
  for (const alg of ALL) {
    it.each(CASES)(`${alg}: %s -> %s (%s)`, async (_name, reason, path, make) => {
      const token = await make(keys[alg] as AlgKey);
      if (token === 'skip') return;
      const got = await both(token);
      expect(summary(got.fast)).toEqual(summary(got.jose));
      expect(got.fast.ok ? 'ok' : got.fast.reason).toBe(reason);
      expect(got.path).toBe(path);
    });
  }
});

describe('keys the fast path leaves to jose', () => {
  const weakToken = (payload: Record<string, unknown> = {}) => {
    const k = keys.RS256 as AlgKey;
    return mint({ ...k, kid: 'weak', sign: weak }, { payload }, W);
  };

  it('an RSA key under 2048 bits (jose refuses it)', async () => {
    const got = await both(weakToken());
    expect(summary(got.fast)).toEqual(summary(got.jose));
    expect(got.path).toBe('jose');
    expect(got.fast.ok).toBe(false);
  });

  it('a token without kid matching several keys, and the same with a kid', async () => {
    const k: AlgKey = { ...(keys.ES256 as AlgKey), iss: R };
    for (const [i, signer] of rotating.entries()) {
      const noKid = await both(mint({ ...k, sign: signer }, { header: { kid: undefined } }));
      expect(summary(noKid.fast)).toEqual(summary(noKid.jose));
      expect(noKid.fast.ok).toBe(true);
      expect(noKid.path).toBe('jose');
      const withKid = await both(mint({ ...k, sign: signer, kid: `r${i + 1}` }));
      expect(summary(withKid.fast)).toEqual(summary(withKid.jose));
      expect(withKid.fast.ok).toBe(true);
      expect(withKid.path).toBe('fast');
    }
  });

  it('answers synchronously for RSA and HMAC, on the thread pool for ECDSA and EdDSA', async () => {
    for (const alg of ALL) {
      const before = { ...fast.paths };
      const outcome = fast.verify(mint(keys[alg] as AlgKey), NOW_MS, null);
      const pooled = alg.startsWith('E');
      expect(outcome instanceof Promise, alg).toBe(pooled);
      expect((await outcome).ok, alg).toBe(true);
      expect(fast.paths.fast - before.fast, alg).toBe(1);
      expect(fast.paths.pooled - before.pooled, alg).toBe(pooled ? 1 : 0);
    }
  });

  it('reports each outcome to `done` once, synchronously on the synchronous fast path', () => {
    const seen: VerifyOutcome[] = [];
    const outcome = fast.verify(
      mint(keys.RS256 as AlgKey, { payload: { exp: NOW_S - 3600 } }),
      NOW_MS,
      null,
      (o) => seen.push(o),
    );
    expect(seen).toEqual([outcome]);
    expect(seen[0]).toMatchObject({ ok: false, reason: 'expired', iss: A });
  });

  it('reports each outcome to `done` once, before the promise settles, on the pooled fast path', async () => {
    const seen: VerifyOutcome[] = [];
    const pending = fast.verify(mint(keys.EdDSA as AlgKey, { sig: flip }), NOW_MS, null, (o) => seen.push(o));
    expect(seen).toEqual([]);
    const outcome = await pending;
    expect(seen).toEqual([outcome]);
    expect(outcome).toMatchObject({ ok: false, reason: 'bad_signature', iss: A });
  });

  it('traces which path verified', async () => {
    const trace: string[] = [];
    await fast.verify(mint(keys.ES256 as AlgKey), NOW_MS, trace);
    expect(trace).toContain('verifier: fast path (node:crypto, thread pool)');
    const rsTrace: string[] = [];
    await fast.verify(mint(keys.RS256 as AlgKey), NOW_MS, rsTrace);
    expect(rsTrace).toContain('verifier: fast path (node:crypto)');
    const joseTrace: string[] = [];
    await fast.verify(mint(keys.ES256 as AlgKey, { header: { jku: 'x' } }), NOW_MS, joseTrace);
    expect(joseTrace).toContain('verifier: jose');
  });
});

// ---------------------------------------------------------------------------------------------

const headerMutation = fc.record({
  alg: fc.constantFrom(
    'keep',
    'keep',
    'keep',
    'none',
    '',
    'HS256',
    'RS256',
    'ES256',
    'EdDSA',
    'PS512',
    'XS1',
  ),
  kid: fc.constantFrom('keep', 'keep', 'drop', 'unknown', 7),
  typ: fc.constantFrom('JWT', 'at+jwt', 'application/at+JWT', 'drop', 1, 'jwt'),
  extra: fc.constantFrom(
    {},
    {},
    {},
    { crit: ['urn:example:ext'], 'urn:example:ext': true },
    { crit: ['urn:evil'], 'urn:evil': true },
    { crit: ['b64'], b64: false },
    { b64: false },
    { jku: 'https://x.example.com' },
    { x5t: 'thumb' },
    { cty: 'JWT' },
    { zip: 'DEF' },
  ),
});

const claimOffset = fc.oneof(
  fc.constant(undefined),
  fc.integer({ min: -700, max: 700 }),
  fc.constantFrom('soon', null, 1.5),
);

const payloadMutation = fc.record({
  iss: fc.constantFrom('self', 'self', 'self', 'strict', 'evil', 'missing', 5),
  aud: fc.constantFrom(AUD, AUD, ['x', 'other'], ['x'], 'x', undefined, 5, null, [AUD, 3]),
  exp: claimOffset,
  nbf: fc.oneof(fc.constant(undefined), fc.constant(undefined), claimOffset),
  iat: fc.oneof(fc.constant(0), claimOffset),
  sub: fc.constantFrom('alice', undefined, 'x'.repeat(513), 'a\tb', 5),
  email: fc.constantFrom('a@example.com', undefined),
  form: fc.constantFrom('object', 'object', 'object', 'object', 'array', 'notjson', 'badutf8'),
});

const signatureMutation = fc.constantFrom('good', 'good', 'good', 'other', 'short', 'long', 'flip', 'empty');

function mutated(
  k: AlgKey,
  h: typeof headerMutation extends fc.Arbitrary<infer T> ? T : never,
  p: typeof payloadMutation extends fc.Arbitrary<infer T> ? T : never,
  s: string,
  tail: number,
): string {
  const header: Record<string, unknown> = { alg: k.alg, kid: k.kid, typ: h.typ, ...h.extra };
  if (h.alg !== 'keep') header.alg = h.alg;
  if (h.kid === 'drop') delete header.kid;
  else if (h.kid !== 'keep') header.kid = h.kid;
  if (h.typ === 'drop') delete header.typ;
  const iss =
    p.iss === 'self' ? k.iss : p.iss === 'strict' ? k.strictIss : p.iss === 'evil' ? 'https://evil' : p.iss;
  const at = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) ? NOW_S + v : v);
  const claims: Record<string, unknown> = {
    iss: iss === 'missing' ? undefined : iss,
    aud: p.aud,
    exp: at(p.exp),
    nbf: at(p.nbf),
    iat: at(p.iat),
    sub: p.sub,
    email: p.email,
  };
  for (const [name, v] of Object.entries(claims)) if (v === undefined) delete claims[name];
  const json = JSON.stringify(claims);
  const payload =
    p.form === 'array'
      ? `[${json}]`
      : p.form === 'notjson'
        ? json.slice(0, -1)
        : p.form === 'badutf8'
          ? Buffer.concat([Buffer.from(json.slice(0, -1)), Buffer.from(',"x":"\xff"}', 'latin1')])
          : json;
  const signer = s === 'other' ? k.signOther : k.sign;
  const sig = (b: Buffer) =>
    s === 'short'
      ? b.subarray(0, -1)
      : s === 'long'
        ? Buffer.concat([b, Buffer.from([1])])
        : s === 'flip'
          ? flip(b)
          : s === 'empty'
            ? Buffer.alloc(0)
            : b;
  return mint(k, {
    header: JSON.stringify(header),
    payload,
    signer,
    sig,
    payloadTail: tail === 1 ? 'A' : '',
  });
}

describe('property: random header, payload and signature mutations', () => {
  it('give the same outcome on the fast path and on jose', async () => {
    let fastTaken = 0;
    // Random seeds, so each run explores other cases; rarely a run reaches the fast path too
    // seldom for the bound below, and then another run follows (at most three).
    for (let run = 0; run < 3 && fastTaken <= 20; run++)
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...ALL),
          headerMutation,
          payloadMutation,
          signatureMutation,
          fc.constantFrom(0, 0, 0, 1),
          async (alg, h, p, s, tail) => {
            const got = await both(mutated(keys[alg] as AlgKey, h, p, s, tail));
            if (got.path === 'fast') fastTaken++;
            expect(summary(got.fast)).toEqual(summary(got.jose));
          },
        ),
        { numRuns: 1_000 },
      );
    // The generator is tuned so that a fair share of cases reach the fast path at all.
    expect(fastTaken).toBeGreaterThan(20);
  }, 180_000);
});

describe('through the engine', () => {
  it('decides an RS256 miss synchronously and caches it before the next request', async () => {
    const key = await makeKey('RS256', 'k');
    const engine = AuthzEngine.create(
      {
        issuers: [
          {
            id: 'idp',
            issuer: A,
            audiences: [AUD],
            algorithms: ['RS256'],
            keys: { type: 'jwks', jwks: jwksOf(key) },
          },
        ],
        policy: { preset: 'none', rules: [{ name: 'any-token', path: '/**' }] },
      },
      { now: () => NOW_MS },
    );
    await engine.start();
    const token = await new jose.SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k' })
      .setIssuer(A)
      .setAudience(AUD)
      .setExpirationTime(NOW_S + 60)
      .sign(key.privateKey);
    const decisions = Array.from({ length: 3 }, () => engine.decide(request('GET', '/api/flows', { token })));
    expect(decisions.some((d) => d instanceof Promise)).toBe(false);
    expect((decisions as Decision[]).map((d) => [d.reason, d.cache])).toEqual([
      ['ok', 'miss'],
      ['ok', 'hit'],
      ['ok', 'hit'],
    ]);
    expect(engine.stats()).toMatchObject({ verifications: 1, cache: { coalesced: 0 } });
    engine.close();
  });
});
