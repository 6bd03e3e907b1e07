/**
 * Finding the token in a request, and the checks made before any parsing or crypto: size and
 * compact JWS shape (RFC 7515 7.1: three base64url parts separated by dots).
 */
export interface TokenSources {
  readonly bearer: boolean;
  /** `Authorization: Basic` is a credential (auth strings are configured: src/auth/apikeys/). */
  readonly basic?: boolean;
  readonly cookie: string | null;
  readonly header: string | null;
  readonly maxBytes: number;
}

export interface TokenInput {
  readonly authorization: string | null;
  readonly cookie: string | null;
  readonly tokenHeader?: string | null | undefined;
}

/** A token was offered but cannot be one. */
export class TokenRejection {
  readonly why: string;
  constructor(why: string) {
    this.why = why;
  }
}

/**
 * `Authorization: Basic <token68>` (RFC 7617), as Prefect clients send PREFECT_API_AUTH_STRING:
 * the base64 part, not decoded yet (apikeys/ decodes and checks it).
 */
export class BasicCredential {
  readonly encoded: string;
  constructor(encoded: string) {
    this.encoded = encoded;
  }
}

const EMPTY = new TokenRejection('empty token');
const OVERSIZED = new TokenRejection('token larger than the configured limit');

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

const BEARER = 'bearer';
const BASIC = 'basic';

/** The token68 after `Basic` (any case), or null for another scheme; '' for a bare "Basic". */
function basicToken(value: string): string | null {
  let start = 0;
  let end = value.length;
  while (start < end && isSpace(value.charCodeAt(start))) start++;
  while (end > start && isSpace(value.charCodeAt(end - 1))) end--;
  if (end - start < 5) return null;
  for (let i = 0; i < 5; i++) {
    if ((value.charCodeAt(start + i) | 0x20) !== BASIC.charCodeAt(i)) return null;
  }
  if (end - start === 5) return '';
  if (!isSpace(value.charCodeAt(start + 5))) return null;
  let t = start + 6;
  while (t < end && isSpace(value.charCodeAt(t))) t++;
  return value.slice(t, end);
}

/**
 * RFC 6750 2.1 `Bearer` (any case) + spaces/tabs + token, surrounding whitespace ignored;
 * returns the token ('' for a bare "Bearer"), or null for other schemes. No allocation but the
 * token itself: this runs on every request.
 */
function bearerToken(value: string): string | null {
  let start = 0;
  let end = value.length;
  while (start < end && isSpace(value.charCodeAt(start))) start++;
  while (end > start && isSpace(value.charCodeAt(end - 1))) end--;
  if (end - start < 6) return null;
  for (let i = 0; i < 6; i++) {
    if ((value.charCodeAt(start + i) | 0x20) !== BEARER.charCodeAt(i)) return null;
  }
  if (end - start === 6) return '';
  if (!isSpace(value.charCodeAt(start + 6))) return null;
  let t = start + 7;
  while (t < end && isSpace(value.charCodeAt(t))) t++;
  return value.slice(t, end);
}

function unquote(value: string): string {
  // RFC 6265 4.1.1: cookie-value may be wrapped in DQUOTEs.
  return value.length >= 2 && value.charCodeAt(0) === 34 && value.charCodeAt(value.length - 1) === 34
    ? value.slice(1, -1)
    : value;
}

/**
 * The first source present wins, in this order: Authorization Bearer, custom header, cookie.
 * An Authorization header with another scheme (Basic, as Prefect's UI sends) is not a token
 * and lets the other sources speak, unless `sources.basic`: then Basic is a credential of its
 * own and decides alone. Returns null when no source offers a token.
 */
export function extractToken(
  req: TokenInput,
  sources: TokenSources,
): string | TokenRejection | BasicCredential | null {
  let token: string | null = null;
  if (sources.bearer && req.authorization) token = bearerToken(req.authorization);
  if (token === null && sources.basic === true && req.authorization) {
    const basic = basicToken(req.authorization);
    if (basic !== null) {
      if (basic.length === 0) return EMPTY;
      return basic.length > sources.maxBytes ? OVERSIZED : new BasicCredential(basic);
    }
  }
  if (token === null && sources.header !== null && req.tokenHeader) {
    token = bearerToken(req.tokenHeader) ?? req.tokenHeader.trim();
  }
  if (token === null && sources.cookie !== null && req.cookie) token = unquote(req.cookie.trim());
  if (token === null) return null;
  if (token.length === 0) return EMPTY;
  if (token.length > sources.maxBytes) return OVERSIZED;
  return token;
}

/** base64url alphabet (RFC 4648 5), no padding. */
const B64URL = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_')
  B64URL[c.charCodeAt(0)] = 1;

/**
 * Compact JWS shape: header.payload.signature, each base64url without padding, header and
 * payload non-empty, no part of length 1 mod 4 (not valid base64). The signature may be empty
 * (`alg: none`); the algorithm check rejects that later with the right reason.
 */
export function compactShapeProblem(token: string): string | null {
  let dots = 0;
  let partStart = 0;
  for (let i = 0; i <= token.length; i++) {
    const c = i === token.length ? 46 : token.charCodeAt(i);
    if (c === 46) {
      const len = i - partStart;
      if (len % 4 === 1) return 'a part is not valid base64url';
      if (len === 0 && dots < 2) return 'empty header or payload';
      if (i < token.length) dots++;
      partStart = i + 1;
      if (dots > 2) return 'more than three parts';
    } else if (c >= 128 || B64URL[c] !== 1) {
      return 'character outside base64url';
    }
  }
  return dots === 2 ? null : 'not three dot-separated parts';
}

/** JSON object in a base64url segment, or undefined. Only for routing and explain, never trusted. */
export function decodeSegment(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Which source extractToken() takes the token from (for explain). */
export function tokenSourceOf(
  req: TokenInput,
  sources: TokenSources,
): 'bearer' | 'basic' | 'header' | 'cookie' | null {
  if (sources.bearer && req.authorization && bearerToken(req.authorization) !== null) return 'bearer';
  if (sources.basic === true && req.authorization && basicToken(req.authorization) !== null) return 'basic';
  if (sources.header !== null && req.tokenHeader) return 'header';
  if (sources.cookie !== null && req.cookie) return 'cookie';
  return null;
}
