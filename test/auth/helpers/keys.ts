import * as jose from 'jose';

/** A fixed clock for JWT tests: 2030-01-01T00:00:00Z. */
export const NOW_MS = Date.UTC(2030, 0, 1);
export const NOW_S = NOW_MS / 1000;

export type TestAlg = 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA';

export interface TestKey {
  readonly alg: string;
  readonly kid: string;
  readonly privateKey: jose.CryptoKey;
  readonly publicKey: jose.CryptoKey;
  /** Public JWK with kid, alg and use. */
  readonly jwk: jose.JWK & { kty: string; kid: string };
}

export async function makeKey(alg: TestAlg, kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  const exported = await jose.exportJWK(publicKey);
  const jwk = { ...exported, kty: exported.kty as string, kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, jwk };
}

export function jwks(...keys: TestKey[]): { keys: TestKey['jwk'][] } {
  return { keys: keys.map((k) => k.jwk) };
}

export interface TokenSpec {
  iss?: string | undefined;
  aud?: string | string[] | undefined;
  sub?: string | undefined;
  /** Seconds from NOW (default 3600); null omits exp. */
  exp?: number | null;
  iat?: number | null;
  nbf?: number;
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  /** Omit kid from the header. */
  noKid?: boolean;
  /** Extension parameters the signer accepts in `crit`. */
  crit?: Record<string, boolean>;
}

export async function sign(
  key: TestKey | { alg: string; secret: Uint8Array },
  spec: TokenSpec = {},
): Promise<string> {
  const payload: jose.JWTPayload = { ...spec.claims };
  if (spec.iss !== undefined) payload.iss = spec.iss;
  if (spec.aud !== undefined) payload.aud = spec.aud;
  if (!('sub' in payload)) payload.sub = spec.sub ?? 'alice';
  if (spec.exp !== null) payload.exp = NOW_S + (spec.exp ?? 3600);
  if (spec.iat !== null) payload.iat = NOW_S + (spec.iat ?? 0);
  if (spec.nbf !== undefined) payload.nbf = NOW_S + spec.nbf;
  const header: jose.JWTHeaderParameters = { alg: key.alg, typ: 'JWT' };
  if ('kid' in key && !spec.noKid) header.kid = key.kid;
  Object.assign(header, spec.header);
  const signingKey = 'secret' in key ? key.secret : key.privateKey;
  return new jose.SignJWT(payload)
    .setProtectedHeader(header)
    .sign(signingKey, spec.crit ? { crit: spec.crit } : undefined);
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A token assembled by hand (no signing library checks): for alg none and other forgeries. */
export function forge(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  signature = '',
): string {
  return `${b64(header)}.${b64(payload)}.${signature}`;
}

/** HMAC signature computed by hand over header.payload, with any bytes as the secret. */
export async function hmacForge(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  secret: Uint8Array,
): Promise<string> {
  const input = `${b64(header)}.${b64(payload)}`;
  const key = await crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ]);
  const sig = Buffer.from(await crypto.subtle.sign('HMAC', key, Buffer.from(input))).toString('base64url');
  return `${input}.${sig}`;
}
