import type { Claims } from './claims.js';
import { claimAt } from './claims.js';

/**
 * The client certificate HAProxy verified on the TLS connection, as the SPOE message hands it
 * over (`ssl_c_used`, `ssl_c_verify`, `ssl_c_s_dn`, `ssl_c_der,sha2(256)`), and certificate-bound
 * access tokens (RFC 8705 3: `cnf` claim member `x5t#S256`, the base64url SHA-256 of the DER).
 */
export interface ClientCertificate {
  /** HAProxy verified the chain: `ssl_c_verify` is 0 (X509_V_OK). */
  readonly verified: boolean;
  /** `ssl_c_s_dn` as HAProxy formats it (`/C=../O=../CN=..` by default). */
  readonly subject: string | null;
  /** SHA-256 of the DER certificate, base64url (the form of `x5t#S256`). */
  readonly sha256: string | null;
}

/** `cnf.x5t#S256` of verified claims, or null when the token is not certificate-bound. */
export function certThumbprint(claims: Claims): string | null {
  const cnf = claimAt(claims, 'cnf');
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) return null;
  const x5t = (cnf as Record<string, unknown>)['x5t#S256'];
  return typeof x5t === 'string' ? x5t : null;
}

/**
 * Why a certificate-bound token may not be used on this request, or null when it may: the
 * connection must carry a certificate HAProxy verified whose SHA-256 is the token's.
 */
export function bindingProblem(
  thumbprint: string,
  cert: ClientCertificate | null | undefined,
): string | null {
  if (cert === null || cert === undefined)
    return 'token is bound to a client certificate (cnf x5t#S256); none was presented';
  if (!cert.verified) return 'token is bound to a client certificate; the one presented did not verify';
  if (cert.sha256 === null) return 'token is bound to a client certificate; HAProxy sent no ssl_c_sha256';
  if (cert.sha256 !== thumbprint) return 'token is bound to another client certificate (x5t#S256 differs)';
  return null;
}

/** A SHA-256 as HAProxy may send it: 32 bytes (BINARY) or 64 hex digits; base64url, or null. */
export function sha256Arg(value: Uint8Array | string | null | undefined): string | null {
  if (value instanceof Uint8Array)
    return value.length === 32 ? Buffer.from(value).toString('base64url') : null;
  if (typeof value === 'string' && /^[0-9A-Fa-f]{64}$/.test(value))
    return Buffer.from(value, 'hex').toString('base64url');
  return null;
}
