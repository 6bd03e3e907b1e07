/**
 * Request path normalisation before rule matching.
 *
 * What every server reads the same way is normalised, and the allow carries the result so
 * HAProxy forwards what was judged (README, var `path`):
 * - percent-encoded unreserved characters (RFC 3986 2.3: ALPHA DIGIT - _ ~) are decoded, other
 *   escapes are kept with upper-case hex (RFC 3986 6.2.2.1);
 * - dot segments are removed (RFC 3986 5.2.4) and repeated slashes collapsed.
 *
 * What two reasonable servers could read as different paths is refused rather than guessed:
 * - `;` raw or encoded (path parameters: Tomcat/Spring strip `;...` from a segment, Starlette
 *   and nginx keep it, so `/admin/settings;x=1` names two different routes);
 * - `?` and `#` raw or encoded (a server that decodes before splitting ends the path there);
 * - `%2F`, `%5C` and a backslash (a separator to some servers, not to others), `%2E` (so
 *   `%2e%2e`), `%25` (double encoding: `%252e` is `.` to a server that decodes twice);
 * - NUL and control characters raw or encoded, a space, raw bytes outside ASCII;
 * - escapes of bytes >= 0x80 that are not strict UTF-8 (overlong forms such as `%C0%AF`,
 *   which some decoders read as `/`, truncated sequences, surrogates);
 * - invalid escapes, `..` above the root, a path not starting with `/`.
 * Segments some server could read as one of the policy's literal segments (a case variant,
 * a trailing dot, a Unicode compatibility form) are refused by the policy (path-confusion.ts).
 */
export class PathRejection {
  readonly why: string;
  constructor(why: string) {
    this.why = why;
  }
}

const NOT_ABSOLUTE = new PathRejection('path does not start with "/"');
const CONTROL = new PathRejection('control character or space in path');
const BACKSLASH = new PathRejection('backslash in path');
const NUL = new PathRejection('NUL in path');
const NON_ASCII = new PathRejection('raw byte outside ASCII in path (must be percent-encoded)');
const SEMICOLON = new PathRejection('path parameter (";") in path');
const QUERY = new PathRejection('"?" in path (the path arg must be HAProxy\'s `path`, not `url`)');
const FRAGMENT = new PathRejection('fragment ("#") in path');
const BAD_ESCAPE = new PathRejection('invalid percent-encoding');
const ENCODED_SLASH = new PathRejection('encoded "/" (%2F) in path');
const ENCODED_DOT = new PathRejection('encoded "." (%2E) in path');
const ENCODED_SEMICOLON = new PathRejection('encoded ";" (%3B) in path');
const ENCODED_QUERY = new PathRejection('encoded "?" (%3F) in path');
const ENCODED_FRAGMENT = new PathRejection('encoded "#" (%23) in path');
const DOUBLE_ENCODING = new PathRejection('encoded "%" (%25) in path: double encoding');
const ENCODED_CONTROL = new PathRejection('encoded control character in path');
const BAD_UTF8 = new PathRejection('escapes that are not UTF-8 (overlong, truncated or surrogate)');
const ABOVE_ROOT = new PathRejection('".." above the root');

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function isUnreserved(b: number): boolean {
  return (
    (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b === 45 || b === 95 || b === 126
  );
}

/** Escaped bytes that are refused outright, by value. */
function escapeRejection(b: number): PathRejection | null {
  if (b === 0) return NUL;
  if (b < 0x20 || b === 0x7f) return ENCODED_CONTROL;
  switch (b) {
    case 0x2f:
      return ENCODED_SLASH;
    case 0x2e:
      return ENCODED_DOT;
    case 0x5c:
      return BACKSLASH;
    case 0x3b:
      return ENCODED_SEMICOLON;
    case 0x3f:
      return ENCODED_QUERY;
    case 0x23:
      return ENCODED_FRAGMENT;
    case 0x25:
      return DOUBLE_ENCODING;
    default:
      return null;
  }
}

/** Returns the normalised path, or a PathRejection saying why it is refused. */
export function normalizePath(raw: string): string | PathRejection {
  if (raw.length === 0 || raw.charCodeAt(0) !== 47) return NOT_ABSOLUTE;
  let slow = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c <= 32 || c === 127) return c === 0 ? NUL : CONTROL;
    if (c >= 128) return NON_ASCII;
    switch (c) {
      case 92:
        return BACKSLASH;
      case 59:
        return SEMICOLON;
      case 63:
        return QUERY;
      case 35:
        return FRAGMENT;
      case 37:
        slow = true;
        break;
      case 47: {
        const next = raw.charCodeAt(i + 1);
        if (next === 47 || next === 46) slow = true;
        break;
      }
    }
  }
  return slow ? normalizeSlow(raw) : raw;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeEscapes(raw: string): string | PathRejection {
  let out = '';
  let start = 0;
  /** Bytes >= 0x80 of the escape run in progress, checked as one UTF-8 sequence. */
  let high: number[] | null = null;
  for (let i = raw.indexOf('%'); i !== -1; i = raw.indexOf('%', start)) {
    const hi = hexValue(raw.charCodeAt(i + 1));
    const lo = hexValue(raw.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return BAD_ESCAPE;
    const b = hi * 16 + lo;
    const refused = escapeRejection(b);
    if (refused !== null) return refused;
    if (b >= 0x80) {
      if (high !== null && i !== start) {
        if (!validUtf8(high)) return BAD_UTF8;
        high = null;
      }
      if (high === null) high = [b];
      else high.push(b);
    } else if (high !== null) {
      if (!validUtf8(high)) return BAD_UTF8;
      high = null;
    }
    out += raw.slice(start, i);
    out += isUnreserved(b) ? String.fromCharCode(b) : `%${HEX[hi]}${HEX[lo]}`;
    start = i + 3;
  }
  if (high !== null && !validUtf8(high)) return BAD_UTF8;
  return out + raw.slice(start);
}

function validUtf8(bytes: number[]): boolean {
  try {
    strictUtf8.decode(Uint8Array.from(bytes));
    return true;
  } catch {
    return false;
  }
}

function normalizeSlow(raw: string): string | PathRejection {
  const decoded = decodeEscapes(raw);
  if (decoded instanceof PathRejection) return decoded;
  const parts = decoded.split('/');
  const stack: string[] = [];
  let trailing = false;
  for (let i = 1; i < parts.length; i++) {
    const seg = parts[i] as string;
    const last = i === parts.length - 1;
    if (seg === '' || seg === '.') {
      trailing = last;
    } else if (seg === '..') {
      if (stack.length === 0) return ABOVE_ROOT;
      stack.pop();
      trailing = last;
    } else {
      stack.push(seg);
      trailing = false;
    }
  }
  if (stack.length === 0) return '/';
  return `/${stack.join('/')}${trailing ? '/' : ''}`;
}
