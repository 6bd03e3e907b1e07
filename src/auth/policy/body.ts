/**
 * Request bodies for the few routes whose meaning is in the body (Prefect:
 * `POST /block_documents/filter` asks for secrets with `"include_secrets": true` in its JSON).
 *
 * HAProxy sends the body only for those routes (spoe-agent.conf, message `authorize-body`): the
 * bytes it buffered (`req.body`, cut at the bound) and the length the client declared
 * (`req.body_size`). A rule that looks at the body matches only a complete JSON object no larger
 * than the bound; anything else is a body the agent cannot judge, and the request is refused with
 * a reason that says which (never allowed on a guess).
 */

/** Why a body could not be judged; names are decision reasons (reasons.ts). */
export type BodyFailure = 'body_missing' | 'body_too_large' | 'body_invalid';

/** A parsed body: the top-level members of a JSON object. */
export type JsonObject = Readonly<Record<string, unknown>>;

/** Default bound on a judged body, in bytes (Prefect's filter bodies are well under 2 KiB). */
export const DEFAULT_BODY_MAX_BYTES = 8192;

/**
 * The body as a JSON object, or why not. `body` null = HAProxy sent none (the route is not
 * configured to carry it); `declared` = the length the client announced, when known. A body cut
 * by HAProxy is shorter than its declared length: too large, like one above `maxBytes`.
 */
export function parseJsonBody(
  body: Uint8Array | null,
  declared: number | null,
  maxBytes: number,
): JsonObject | BodyFailure {
  if (body === null) return 'body_missing';
  if (body.length > maxBytes || (declared !== null && declared !== body.length)) return 'body_too_large';
  let value: unknown;
  try {
    // Strict UTF-8 like Python's json.loads on bytes: a body Prefect would refuse is not guessed at.
    value = JSON.parse(UTF8.decode(body));
  } catch {
    return 'body_invalid';
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'body_invalid';
  return value as JsonObject;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Pydantic's lax bool, false side: `false`, `0` (or `0.0`), and the strings it reads as false
 * (case-insensitive). Everything else that is present counts as true, so a condition such as
 * "include_secrets is not truthy" holds only when Prefect would surely read false; an odd value
 * Prefect would reject with 422 is treated as asking for secrets.
 */
const FALSE_STRINGS = new Set(['false', '0', 'off', 'f', 'n', 'no']);

export function isFalseJson(value: unknown): boolean {
  if (value === false || value === 0) return true;
  return typeof value === 'string' && FALSE_STRINGS.has(value.toLowerCase());
}

/** One member condition of a rule's `body`. */
export interface BodyCondition {
  readonly name: string;
  readonly present: boolean | null;
  readonly truthy: boolean | null;
}

export function bodyMatches(cond: BodyCondition, body: JsonObject): boolean {
  const has = Object.hasOwn(body, cond.name);
  if (cond.present !== null && has !== cond.present) return false;
  if (cond.truthy !== null) {
    const truthy = has && !isFalseJson(body[cond.name]);
    if (truthy !== cond.truthy) return false;
  }
  return true;
}
