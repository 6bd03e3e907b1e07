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
