import type { ClaimValue, ForwardedClaims } from './decision.js';

export type Claims = Readonly<Record<string, unknown>>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A claim name or dotted path, split once. */
export interface ClaimPath {
  readonly whole: string;
  readonly parts: readonly string[] | null;
}

export function compileClaimPath(path: string): ClaimPath {
  return { whole: path, parts: path.includes('.') ? path.split('.') : null };
}

/**
 * A claim by name or dotted path. The whole name is tried first, so namespaced claims such as
 * `https://example.com/roles` or `cognito:groups` work; then `realm_access.roles` style walks.
 */
export function claimAt(claims: Claims, path: string | ClaimPath): unknown {
  const p = typeof path === 'string' ? compileClaimPath(path) : path;
  if (Object.hasOwn(claims, p.whole)) return claims[p.whole];
  if (p.parts === null) return undefined;
  let node: unknown = claims;
  for (const part of p.parts) {
    if (!isRecord(node) || !Object.hasOwn(node, part)) return undefined;
    node = node[part];
  }
  return node;
}

/** String members of a claim: array elements, or the string itself (split on spaces if asked). */
export function claimStrings(value: unknown, spaceDelimited: boolean): string[] {
  if (typeof value === 'string') {
    if (!spaceDelimited) return value === '' ? [] : [value];
    return value.split(' ').filter((s) => s !== '');
  }
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string' && v !== '');
  return [];
}

/** `scope` (RFC 8693 4.2, space-delimited) and `scp` (string or array) merged. */
export function tokenScopes(claims: Claims): ReadonlySet<string> {
  const out = new Set<string>();
  for (const s of claimStrings(claims.scope, true)) out.add(s);
  for (const s of claimStrings(claims.scp, true)) out.add(s);
  return out;
}

export interface ForwardClaimSpec {
  readonly name: string;
  readonly claim: string;
  readonly maxLength: number;
  /** `claim` compiled (optional: compiled on each use when absent). */
  readonly path?: ClaimPath;
}

const NO_FORWARDED: ForwardedClaims = Object.freeze([]);

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Configured claims to hand to HAProxy as claim_<name>. Scalars only; strings longer than
 * maxLength or carrying control characters are dropped (never truncated: a cut value could
 * pass for another identity), as are non-finite numbers.
 */
export function forwardClaims(claims: Claims, specs: readonly ForwardClaimSpec[]): ForwardedClaims {
  if (specs.length === 0) return NO_FORWARDED;
  const out: Array<readonly [string, ClaimValue]> = [];
  for (const spec of specs) {
    const value = claimAt(claims, spec.path ?? spec.claim);
    if (typeof value === 'string') {
      if (value.length <= spec.maxLength && !CONTROL.test(value)) out.push([spec.name, value]);
    } else if (typeof value === 'number') {
      if (Number.isFinite(value)) out.push([spec.name, value]);
    } else if (typeof value === 'boolean') {
      out.push([spec.name, value]);
    }
  }
  return Object.freeze(out);
}

/** Does a claim (scalar, or array of scalars) equal, or contain, one of `expected`? */
export function claimMatches(value: unknown, expected: readonly ClaimValue[]): boolean {
  if (Array.isArray(value)) return value.some((v) => expected.includes(v as ClaimValue));
  return expected.includes(value as ClaimValue);
}

export function hasControlCharacters(text: string): boolean {
  return CONTROL.test(text);
}
