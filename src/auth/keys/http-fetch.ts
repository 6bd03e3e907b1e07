import { AuthError } from '../errors.js';

/** The subset of `fetch` we use; tests and the product may inject their own. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** Key sets and discovery documents are small; anything bigger is junk or an attack. */
export const MAX_KEY_DOCUMENT_BYTES = 1024 * 1024;

/** The body as text, or null when it is larger than `max` bytes (read no further). */
export async function readBounded(response: Response, max: number): Promise<string | null> {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) {
    await response.body?.cancel().catch(() => {});
    return null;
  }
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readLimited(response: Response, maxBytes: number, url: string): Promise<string> {
  const text = await readBounded(response, maxBytes);
  if (text === null)
    throw new AuthError('keys_unavailable', `${url}: response larger than ${maxBytes} bytes`);
  return text;
}

/**
 * GET a JSON document: no redirects (a 3xx is a failure), 200 only, bounded size, valid JSON.
 * Every failure, network errors and timeouts included, is an AuthError('keys_unavailable')
 * with the original as `cause`, so callers never mistake an outage for a bad token.
 */
export async function fetchJson(
  fetchImpl: FetchLike,
  url: string,
  init: { signal: AbortSignal; headers?: Headers | Record<string, string> },
): Promise<unknown> {
  let response: Response;
  try {
    response = await fetchImpl(url, {
      method: 'GET',
      redirect: 'manual',
      signal: init.signal,
      headers: init.headers,
    });
  } catch (cause) {
    const timeout = init.signal.aborted || (cause as Error)?.name === 'TimeoutError';
    throw new AuthError('keys_unavailable', `${url}: ${timeout ? 'timed out' : describe(cause)}`, { cause });
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => {});
    throw new AuthError('keys_unavailable', `${url}: HTTP ${response.status}, expected 200`);
  }
  let text: string;
  try {
    text = await readLimited(response, MAX_KEY_DOCUMENT_BYTES, url);
  } catch (cause) {
    if (cause instanceof AuthError) throw cause;
    throw new AuthError(
      'keys_unavailable',
      `${url}: ${init.signal.aborted ? 'timed out' : describe(cause)}`,
      {
        cause,
      },
    );
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new AuthError('keys_unavailable', `${url}: body is not JSON`, { cause });
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err.cause as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

/** A JWK Set per RFC 7517 5: an object whose `keys` is an array of objects with `kty`. */
export function isJwkSet(value: unknown): value is { keys: Array<Record<string, unknown>> } {
  if (typeof value !== 'object' || value === null) return false;
  const keys = (value as { keys?: unknown }).keys;
  return (
    Array.isArray(keys) &&
    keys.every((k) => typeof k === 'object' && k !== null && typeof (k as { kty?: unknown }).kty === 'string')
  );
}
