/**
 * Who signs the load script's tokens: the built-in development issuer (ES256, key public in the
 * repository), or a throw-away issuer of the script's own for any other algorithm, with the
 * JWKS (or HMAC secret) and agent config to trust it. Never for production keys.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportJWK, SignJWT } from 'jose';
import { DEV_ALGORITHM, DEV_AUDIENCE, DEV_ISSUER, mintDevToken } from '../auth/index.js';
import type { Algorithm } from './options.js';

/** The role every load token carries: the Prefect preset allows it on all PREFECT_ROUTES. */
export const LOAD_ROLE = 'worker';
export const LOAD_ISSUER = 'urn:spoe-authz:load';
export const LOAD_ISSUER_ID = 'load';

export interface TokenIssuer {
  readonly kind: 'dev' | 'own';
  readonly alg: Algorithm;
  /** The `iss` claim. */
  readonly issuer: string;
  /**
   * Signs a token for `sub` with role {@link LOAD_ROLE}, issued at `iatSec`, valid for
   * `ttlSec` seconds (an expired token: `iatSec` in the past and a short ttl).
   */
  sign(sub: string, iatSec: number, ttlSec: number): Promise<string>;
  /**
   * Writes what the agent needs (a JWKS or secret file) into `dir` and returns the config
   * keys that make the agent trust this issuer (merged into the agent's config).
   */
  agentConfig(dir: string): Promise<Record<string, unknown>>;
  /** SPKI PEM of the public key, for HAProxy's `jwt_verify`; null for HMAC. */
  readonly publicPem: string | null;
  /** Public JWKS; null for HMAC. */
  readonly jwks: { keys: Record<string, unknown>[] } | null;
}

export function devIssuer(): TokenIssuer {
  return {
    kind: 'dev',
    alg: DEV_ALGORITHM,
    issuer: DEV_ISSUER,
    sign: (sub, iatSec, ttlSec) =>
      mintDevToken({ sub, roles: [LOAD_ROLE], now: iatSec * 1000, ttlSeconds: ttlSec }),
    agentConfig: async () => ({ devIssuer: true }),
    publicPem: null,
    jwks: null,
  };
}

function generate(alg: Algorithm): { privateKey: KeyObject; publicKey: KeyObject } {
  if (alg.startsWith('RS') || alg.startsWith('PS'))
    return generateKeyPairSync('rsa', { modulusLength: 2048 });
  if (alg === 'ES256') return generateKeyPairSync('ec', { namedCurve: 'P-256' });
  if (alg === 'ES384') return generateKeyPairSync('ec', { namedCurve: 'P-384' });
  if (alg === 'ES512') return generateKeyPairSync('ec', { namedCurve: 'P-521' });
  if (alg === 'EdDSA' || alg === 'Ed25519') return generateKeyPairSync('ed25519');
  throw new TypeError(`no key pair for ${alg}`);
}

/** A fresh issuer of our own for `alg` (key pair, or a random secret for HS*). */
export async function ownIssuer(alg: Algorithm): Promise<TokenIssuer> {
  const base = {
    id: LOAD_ISSUER_ID,
    issuer: LOAD_ISSUER,
    audiences: [DEV_AUDIENCE],
    algorithms: [alg],
    roles: { claims: ['roles'], passthrough: true },
  };
  const sign =
    (key: KeyObject | Uint8Array, kid: string | undefined) => (sub: string, iat: number, ttl: number) =>
      new SignJWT({ roles: [LOAD_ROLE] })
        .setProtectedHeader(kid === undefined ? { alg, typ: 'JWT' } : { alg, kid, typ: 'JWT' })
        .setIssuer(LOAD_ISSUER)
        .setSubject(sub)
        .setAudience(DEV_AUDIENCE)
        .setIssuedAt(iat)
        .setExpirationTime(iat + ttl)
        .sign(key);

  if (alg.startsWith('HS')) {
    const bytes = alg === 'HS256' ? 32 : alg === 'HS384' ? 48 : 64;
    const secret = randomBytes(bytes);
    return {
      kind: 'own',
      alg,
      issuer: LOAD_ISSUER,
      sign: sign(secret, undefined),
      async agentConfig(dir) {
        const path = join(dir, 'load-issuer.secret');
        await writeFile(path, secret.toString('base64url'), { mode: 0o600 });
        return { issuers: [{ ...base, keys: { type: 'secret', file: path, encoding: 'base64url' } }] };
      },
      publicPem: null,
      jwks: null,
    };
  }

  const { privateKey, publicKey } = generate(alg);
  const jwk = await exportJWK(publicKey);
  const kid = createHash('sha256').update(JSON.stringify(jwk)).digest('base64url').slice(0, 16);
  const jwks = { keys: [{ ...jwk, kid, alg, use: 'sig' }] };
  return {
    kind: 'own',
    alg,
    issuer: LOAD_ISSUER,
    sign: sign(privateKey, kid),
    async agentConfig(dir) {
      const path = join(dir, 'load-issuer.jwks.json');
      await writeFile(path, `${JSON.stringify(jwks, null, 2)}\n`);
      return { issuers: [{ ...base, keys: { type: 'jwks-file', path } }] };
    },
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    jwks,
  };
}

/** The dev issuer for ES256 (what `spoe-authz token` mints), our own issuer otherwise. */
export function issuerFor(alg: Algorithm): Promise<TokenIssuer> {
  return alg === DEV_ALGORITHM ? Promise.resolve(devIssuer()) : ownIssuer(alg);
}
