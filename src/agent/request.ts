/**
 * The SPOE contract, request side: the `authorize` message's named args → an AuthzRequest.
 * Args may come in any order and unknown args are ignored (NotifyMessage looks them up by
 * name). A missing `method` or `path` makes the request unanswerable: the caller denies it
 * with `bad_request`.
 */
import type { AuthzRequest } from '../auth/decision.js';
import type { NotifyMessage } from '../spop/index.js';

/** The message name in `spoe-message authorize` (haproxy/spoe-agent.conf). */
export const AUTHORIZE_MESSAGE = 'authorize';

/** Arg names, as in `args method=method path=path ...` of the SPOE config. */
export const ARG = {
  method: 'method',
  path: 'path',
  query: 'query',
  host: 'host',
  authorization: 'authorization',
  cookie: 'cookie',
  tokenHeader: 'token_header',
  src: 'src',
  id: 'id',
  prefectUi: 'prefect_ui',
} as const;

/** Every arg the agent reads; `check --spoe-conf` compares a SPOE file against it. */
export const KNOWN_ARGS: readonly string[] = Object.values(ARG);

/**
 * Reads the request out of an `authorize` message, or returns null when `method` or `path`
 * is absent (or not a string). `src` may be IPV4 or IPV6 (HAProxy's `src` fetch yields
 * either), or a string when the SPOE config builds it with a converter.
 */
export function readAuthorizeArgs(msg: NotifyMessage): AuthzRequest | null {
  const method = msg.getString(ARG.method);
  const path = msg.getString(ARG.path);
  if (method === null || path === null || method.length === 0 || path.length === 0) return null;
  return {
    method,
    path,
    query: msg.getString(ARG.query),
    host: msg.getString(ARG.host),
    authorization: msg.getString(ARG.authorization),
    cookie: msg.getString(ARG.cookie),
    tokenHeader: msg.getString(ARG.tokenHeader),
    src: msg.getIp(ARG.src) ?? msg.getString(ARG.src),
    prefectUi: isTrueHeader(msg.getString(ARG.prefectUi)),
    id: msg.getString(ARG.id),
  };
}

/** `X-Prefect-UI: true` (Prefect compares case-insensitively). */
function isTrueHeader(value: string | null): boolean {
  return value !== null && value.length === 4 && value.toLowerCase() === 'true';
}
