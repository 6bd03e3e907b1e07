/**
 * Request path normalisation before rule matching.
 *
 * - percent-encoded unreserved characters (RFC 3986 2.3: ALPHA DIGIT - _ ~) are decoded, other
 *   escapes are kept with upper-case hex (RFC 3986 6.2.2.1);
 * - dot segments are removed (RFC 3986 5.2.4) and repeated slashes collapsed;
 * - anything that could name two different paths is refused rather than guessed: `%2F`, an
 *   encoded dot (`%2e`, so `%2e%2e`), a backslash raw or encoded (`%5C`), NUL raw or encoded,
 *   other control characters, invalid escapes, `..` above the root, a path not starting with `/`.
 *
 * The upstream sees the raw path, so HAProxy should apply the same normalisation
 * (`http-request normalize-uri ...`) or the policy must not depend on the difference.
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
const BAD_ESCAPE = new PathRejection('invalid percent-encoding');
const ENCODED_SLASH = new PathRejection('encoded "/" (%2F) in path');
const ENCODED_DOT = new PathRejection('encoded "." (%2E) in path');
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

/** Returns the normalised path, or a PathRejection saying why it is refused. */
export function normalizePath(raw: string): string | PathRejection {
  if (raw.length === 0 || raw.charCodeAt(0) !== 47) return NOT_ABSOLUTE;
  let slow = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c <= 32 || c === 127) return c === 0 ? NUL : CONTROL;
    if (c === 92) return BACKSLASH;
    if (c === 37) slow = true;
    else if (c === 47) {
      const next = raw.charCodeAt(i + 1);
      if (next === 47 || next === 46) slow = true;
    }
  }
  return slow ? normalizeSlow(raw) : raw;
}

function decodeEscapes(raw: string): string | PathRejection {
  let out = '';
  let start = 0;
  for (let i = raw.indexOf('%'); i !== -1; i = raw.indexOf('%', start)) {
    const hi = hexValue(raw.charCodeAt(i + 1));
    const lo = hexValue(raw.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return BAD_ESCAPE;
    const b = hi * 16 + lo;
    if (b === 0x2f) return ENCODED_SLASH;
    if (b === 0x2e) return ENCODED_DOT;
    if (b === 0x5c) return BACKSLASH;
    if (b === 0) return NUL;
    out += raw.slice(start, i);
    out += isUnreserved(b) ? String.fromCharCode(b) : `%${HEX[hi]}${HEX[lo]}`;
    start = i + 3;
  }
  return out + raw.slice(start);
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
