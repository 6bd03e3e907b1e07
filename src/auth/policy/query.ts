/**
 * Query-string parsing as the upstream (Starlette, `urllib.parse.parse_qsl`) sees it: pairs split
 * on `&` only, `+` is a space, percent-escapes decoded once, invalid escapes kept literally,
 * names case-sensitive, repeated names keep every value.
 */
export type QueryParams = ReadonlyMap<string, readonly string[]>;

const EMPTY: QueryParams = new Map();

function decodeComponent(text: string): string {
  const plus = text.includes('+') ? text.replaceAll('+', ' ') : text;
  if (!plus.includes('%')) return plus;
  try {
    return decodeURIComponent(plus);
  } catch {
    // Like Python's unquote: decode the valid escapes one by one, keep the rest as typed.
    return plus.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run;
      }
    });
  }
}

export function parseQuery(query: string | null): QueryParams {
  if (query === null || query === '') return EMPTY;
  const out = new Map<string, string[]>();
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = decodeComponent(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? '' : decodeComponent(pair.slice(eq + 1));
    const values = out.get(name);
    if (values === undefined) out.set(name, [value]);
    else values.push(value);
  }
  return out;
}

/**
 * Pydantic's strict false spellings. Anything else present counts as true, so a condition such as
 * `include_secrets` truthy errs towards "secrets requested" (`=1`, `=yes`, `=on`, `=TRUE`, ...).
 */
const FALSY = new Set(['false', '0', 'off', 'f', 'n', 'no']);

export function isTruthyValue(value: string): boolean {
  return !FALSY.has(value.trim().toLowerCase());
}

/** Decodes up to three times: what a server that decodes twice (or more) would read. */
function decodeDeep(text: string): string {
  let s = text;
  for (let i = 0; i < 3 && s.includes('%'); i++) {
    const next = decodeComponent(s);
    if (next === s) break;
    s = next;
  }
  return s;
}

/** A parameter name as a lenient server might compare it: decoded, NFKC, case-folded, no controls, trimmed, no `[]`. */
function foldName(name: string): string {
  const folded = decodeDeep(name)
    .normalize('NFKC')
    .toLowerCase()
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are the point
    .replace(/[\u0000-\u001f\u007f\p{Cf}]/gu, '')
    .trim();
  return folded.endsWith('[]') ? folded.slice(0, -2).trim() : folded;
}

/** The query parameters a policy reads, and their lenient spellings folded once. */
export interface QueryNames {
  readonly exact: ReadonlySet<string>;
  /** foldName(name) -> name. */
  readonly folded: ReadonlyMap<string, string>;
}

export function queryNames(names: Iterable<string>): QueryNames {
  const exact = new Set(names);
  return { exact, folded: new Map([...exact].map((n) => [foldName(n), n])) };
}

/**
 * Why a query string could be read differently by two reasonable servers for one of the
 * parameters the policy looks at (`names`), or null:
 * - a raw `#` (a fragment never belongs in a request; some servers cut the query there);
 * - a name that is not one of `names` but that a lenient server could read as one
 *   (`Include_Secrets`, `include_secrets[]`, `include%255Fsecrets`, ` include_secrets`);
 * - one of `names` after a `;` (servers that split pairs on `;` too, as Python's parse_qsl did
 *   before 3.9.2, see one more pair);
 * - one of `names` given twice with different values (some servers take the first, others
 *   the last).
 */
export function queryAmbiguity(query: string | null, names: QueryNames): string | null {
  if (query === null || query === '' || names.exact.size === 0) return null;
  if (query.includes('#')) return 'fragment ("#") in query';
  const folded = names.folded;
  const seen = new Map<string, string>();
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const pieces = pair.split(';');
    for (let p = 0; p < pieces.length; p++) {
      const piece = pieces[p] as string;
      const eq = piece.indexOf('=');
      const rawName = eq === -1 ? piece : piece.slice(0, eq);
      const name = decodeComponent(rawName);
      const lenient = folded.get(foldName(rawName));
      if (p > 0) {
        if (lenient !== undefined) return `parameter "${lenient}" after ";" (some servers split on ";")`;
        continue;
      }
      if (names.exact.has(name)) {
        const value = decodeComponent(eq === -1 ? '' : pair.slice(eq + 1));
        const before = seen.get(name);
        if (before !== undefined && before !== value)
          return `parameter "${name}" given twice with different values`;
        seen.set(name, value);
      } else if (lenient !== undefined) {
        return `parameter "${name}" may be read as "${lenient}"`;
      }
    }
  }
  return null;
}
