/**
 * Requests that some server between HAProxy and Prefect could route differently from the way
 * the policy judged them, found against the policy's own rules. A rule names routes by literal
 * segments (`/api/admin/settings`); a segment that is not one of them, but that a server could
 * read as one, makes the request ambiguous (`bad_request`):
 * - a case variant (`/API/ADMIN/SETTINGS`, `/api/Admin/settings`): case-insensitive servers
 *   (IIS, some frameworks) route it to the literal, Starlette does not;
 * - trailing dots or spaces (`settings.`, `settings%20`) and `::$DATA`: Windows drops them;
 * - a Unicode compatibility or case form (`ａｄｍｉｎ`, `ſettings`, `admİn`, `K` as Kelvin, an
 *   accent, a zero-width space): a server that applies NFKC, Unicode case folding or strips
 *   marks and invisible characters reads the ASCII literal;
 * - a Unicode form of a delimiter (fullwidth `／`, `．．`): NFKC makes it `/` or `..`.
 * Segments that are exactly a literal, and segments no folding brings to one (names, ids,
 * other scripts such as Cyrillic `а`, which no server reads as Latin), are judged as they are.
 */
import type { CompiledPattern } from './pattern.js';

/** Folds to itself: lower-case ASCII names, no trailing dot. Most ids and every preset literal. */
const PLAIN = /^[a-z0-9_~-]+(?:\.[a-z0-9_~-]+)*$/;
/** Characters that must not appear by Unicode compatibility mapping (NFKC). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are the point
const DELIMITER = /[/\\;?#%\u0000-\u001f\u007f]/;

/** A segment's folded form, or null when NFKC turns it into or adds a delimiter. */
export function foldSegment(segment: string): string | null {
  let s = segment;
  if (s.includes('%')) {
    try {
      s = decodeURIComponent(s);
    } catch {
      return null;
    }
  }
  const nfkc = s.normalize('NFKC');
  if (nfkc !== s && (DELIMITER.test(nfkc) || nfkc === '.' || nfkc === '..')) return null;
  // Upper then lower: ſ -> S -> s, ı -> I -> i, K (Kelvin) -> k; then marks off (İ -> i̇ -> i)
  // and invisible format characters (zero-width space, soft hyphen), which some servers drop.
  let folded = nfkc
    .toUpperCase()
    .toLowerCase()
    .normalize('NFD')
    .replace(/[\p{M}\p{Cf}]/gu, '');
  if (folded.endsWith('::$data')) folded = folded.slice(0, -7);
  return folded.replace(/[. ]+$/, '');
}

export class LiteralConfusion {
  private readonly literals: ReadonlySet<string>;
  /** Folded literal -> the literal, for every literal segment of every pattern. */
  private readonly folds: ReadonlyMap<string, string>;

  constructor(patterns: Iterable<CompiledPattern>) {
    const literals = new Set<string>();
    for (const p of patterns) {
      for (const seg of p.segments) if (seg.kind === 'lit') for (const v of seg.values) literals.add(v);
    }
    const folds = new Map<string, string>();
    for (const lit of literals) {
      const f = foldSegment(lit);
      if (f !== null && !folds.has(f)) folds.set(f, lit);
    }
    this.literals = literals;
    this.folds = folds;
  }

  /** Why `segments` (of a normalised path) could be routed as another path, or null. */
  check(segments: readonly string[]): string | null {
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i] as string;
      if (this.literals.has(seg)) continue;
      const folded = PLAIN.test(seg) ? seg : foldSegment(seg);
      if (folded === null) return `segment "${seg}" holds a Unicode form of a delimiter`;
      const literal = this.folds.get(folded);
      if (literal !== undefined) return `segment "${seg}" may be read as "${literal}"`;
    }
    return null;
  }
}
