/**
 * Path patterns for rules, compiled once. A pattern is matched against the segments of a
 * normalised path (see path.ts); a trailing slash is not significant on either side.
 *
 *   literal        unreserved characters only (RFC 3986 2.3), never `.` or `..`
 *   (a|b|c)        one of several literals
 *   :name          any one non-empty segment, captured as `name`
 *   :name(a|b)     one of several literals, captured as `name`
 *   *              any one segment
 *   **             any number of segments, including none (last segment only)
 */
import { AgentError } from '../../errors.js';
export type PatternSegment =
  | { readonly kind: 'lit'; readonly values: ReadonlySet<string>; readonly name: string | null }
  | { readonly kind: 'any'; readonly name: string | null }
  | { readonly kind: 'rest' };

export interface CompiledPattern {
  readonly source: string;
  readonly segments: readonly PatternSegment[];
  /** True when the last segment is `**`. */
  readonly rest: boolean;
  readonly names: readonly string[];
}

const LITERAL = /^[A-Za-z0-9._~-]+$/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A path pattern that cannot be compiled; the config loader reports it under the rule's path. */
export class PatternError extends AgentError {
  constructor(message: string) {
    super('pattern_invalid', message);
  }
}

function literalSet(text: string, source: string): Set<string> {
  const values = new Set<string>();
  for (const value of text.split('|')) {
    if (!LITERAL.test(value) || value === '.' || value === '..') {
      throw new PatternError(`invalid literal "${value}" in pattern "${source}"`);
    }
    values.add(value);
  }
  return values;
}

function compileSegment(seg: string, source: string): PatternSegment {
  if (seg === '**') return { kind: 'rest' };
  if (seg === '*') return { kind: 'any', name: null };
  if (seg.startsWith('(')) {
    if (!seg.endsWith(')')) throw new PatternError(`unbalanced "(" in pattern "${source}"`);
    return { kind: 'lit', values: literalSet(seg.slice(1, -1), source), name: null };
  }
  if (seg.startsWith(':')) {
    const open = seg.indexOf('(');
    const name = open === -1 ? seg.slice(1) : seg.slice(1, open);
    if (!NAME.test(name)) throw new PatternError(`invalid parameter name "${name}" in pattern "${source}"`);
    if (open === -1) return { kind: 'any', name };
    if (!seg.endsWith(')')) throw new PatternError(`unbalanced "(" in pattern "${source}"`);
    return { kind: 'lit', values: literalSet(seg.slice(open + 1, -1), source), name };
  }
  if (!LITERAL.test(seg) || seg === '.' || seg === '..') {
    throw new PatternError(`invalid segment "${seg}" in pattern "${source}"`);
  }
  return { kind: 'lit', values: new Set([seg]), name: null };
}

/** Throws PatternError with a message naming the offending part. */
export function compilePattern(source: string): CompiledPattern {
  if (!source.startsWith('/')) throw new PatternError(`pattern "${source}" must start with "/"`);
  const body = source.length > 1 && source.endsWith('/') ? source.slice(1, -1) : source.slice(1);
  const parts = body === '' ? [] : body.split('/');
  const segments: PatternSegment[] = [];
  const names: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    if (part === '') throw new PatternError(`empty segment in pattern "${source}"`);
    const seg = compileSegment(part, source);
    if (seg.kind === 'rest' && i !== parts.length - 1) {
      throw new PatternError(`"**" must be the last segment in pattern "${source}"`);
    }
    if (seg.kind !== 'rest' && seg.name !== null) {
      if (names.includes(seg.name))
        throw new PatternError(`duplicate parameter "${seg.name}" in "${source}"`);
      names.push(seg.name);
    }
    segments.push(seg);
  }
  const rest = segments.length > 0 && segments[segments.length - 1]?.kind === 'rest';
  return { source, segments, rest, names };
}

/** `segments` are the non-empty segments of a normalised path. */
export function matchPattern(p: CompiledPattern, segments: readonly string[]): boolean {
  const segs = p.segments;
  const fixed = p.rest ? segs.length - 1 : segs.length;
  if (p.rest ? segments.length < fixed : segments.length !== fixed) return false;
  for (let i = 0; i < fixed; i++) {
    const seg = segs[i] as PatternSegment;
    if (seg.kind === 'lit' && !seg.values.has(segments[i] as string)) return false;
  }
  return true;
}

/** Named parameters of a matching path; call only after matchPattern returned true. */
export function capturePattern(p: CompiledPattern, segments: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < p.segments.length; i++) {
    const seg = p.segments[i] as PatternSegment;
    if (seg.kind !== 'rest' && seg.name !== null) out.set(seg.name, segments[i] as string);
  }
  return out;
}

/** Splits a normalised path into its non-empty segments ("/a/b/" -> ["a", "b"]). */
export function pathSegments(path: string): string[] {
  // A normalised path has no empty segment except the leading one and an optional trailing one.
  const parts = path.split('/');
  parts.shift();
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}
