/** SET-VAR / UNSET-VAR arguments (§1.9): the scope byte and the var name, validated once. */
import { VarScope } from './constants.js';

const VAR_NAME_RE = /^[A-Za-z0-9._]+$/;
const MAX_CACHED_NAMES = 4096;
/** Var name → `<varint len><bytes>`. Names come from code, so the set is small. */
const varNameCache = new Map<string, Buffer>();
// Direct-mapped front cache: an identity compare of (usually internalised) literals is much
// cheaper than a Map lookup, and a handler sets the same few names on every ACK.
const FRONT_SIZE = 64;
const frontKeys: (string | null)[] = new Array<string | null>(FRONT_SIZE).fill(null);
const frontVals: Buffer[] = new Array<Buffer>(FRONT_SIZE).fill(Buffer.alloc(0));

/** Encoded var name; validated once. Throws TypeError for names HAProxy cannot store. */
export function encodedVarName(name: string): Buffer {
  const slot = typeof name === 'string' ? (name.length * 7 + name.charCodeAt(0)) & (FRONT_SIZE - 1) : 0;
  if (frontKeys[slot] === name) return frontVals[slot]!;
  let b = varNameCache.get(name);
  if (b === undefined) {
    if (typeof name !== 'string' || !VAR_NAME_RE.test(name)) {
      throw new TypeError(`invalid variable name ${JSON.stringify(name)}: expected [A-Za-z0-9._]+`);
    }
    // ASCII by the regex, so chars = bytes; one-byte length varint below 240.
    if (name.length >= 240) throw new TypeError(`variable name too long: ${name.length} bytes`);
    b = Buffer.allocUnsafe(1 + name.length);
    b[0] = name.length;
    b.write(name, 1, 'latin1');
    if (varNameCache.size < MAX_CACHED_NAMES) varNameCache.set(name, b);
  }
  frontKeys[slot] = name;
  frontVals[slot] = b;
  return b;
}

/** The scope byte; TypeError unless one of {@link VarScope}. */
export function checkScope(scope: unknown): number {
  if (typeof scope !== 'number' || (scope | 0) !== scope || scope < VarScope.PROC || scope > VarScope.RES) {
    throw new TypeError(`invalid variable scope ${String(scope)}`);
  }
  return scope;
}
