/**
 * The SPOE contract, request side: the `authorize` message's named args → an AuthzRequest.
 * Args may come in any order and unknown args are ignored (NotifyMessage looks them up by
 * name). A missing `method` or `path` makes the request unanswerable: the caller denies it
 * with `bad_request`.
 */
import { type ClientCertificate, sha256Arg } from '../auth/client-cert.js';
import type { AuthzRequest } from '../auth/decision.js';
import type { NotifyMessage } from '../spop/index.js';

/** The message name in `spoe-message authorize` (haproxy/spoe-agent.conf). */
export const AUTHORIZE_MESSAGE = 'authorize';

/**
 * The same request with its body (`spoe-message authorize-body`), which HAProxy sends instead of
 * `authorize` for the routes whose meaning is in the body, once it has buffered the body.
 */
export const AUTHORIZE_BODY_MESSAGE = 'authorize-body';

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
  body: 'body',
  bodySize: 'body_size',
  /** `ssl_c_used`: the connection carries a client certificate (BOOL). */
  certUsed: 'ssl_c_used',
  /** `ssl_c_verify`: OpenSSL's verify result for it, 0 = OK (INT). */
  certVerify: 'ssl_c_verify',
  /** `ssl_c_s_dn`: its subject DN (STRING). */
  certSubject: 'ssl_c_s_dn',
  /** `ssl_c_der,sha2(256)`: SHA-256 of its DER (BINARY, or 64 hex digits as STRING). */
  certSha256: 'ssl_c_sha256',
} as const;

/** Every arg the agent reads; `check --spoe-conf` compares a SPOE file against it. */
export const KNOWN_ARGS: readonly string[] = Object.values(ARG);

/**
 * Reads the request out of an `authorize` message, or returns null when `method` or `path`
 * is absent (or not a string). `src` may be IPV4 or IPV6 (HAProxy's `src` fetch yields
 * either), or a string when the SPOE config builds it with a converter.
 *
 * Only `method` and `path` are read here; every other arg is read when first asked for (a
 * remembered decision for a cached token needs the token, method, path, query and
 * X-Prefect-UI; the cookie, the unique id or the client address are read only by a policy
 * or an audit line that looks at them). The message stays readable after an await.
 */
export function readAuthorizeArgs(msg: NotifyMessage): AuthzRequest | null {
  const method = msg.getString(ARG.method);
  const path = msg.getString(ARG.path);
  if (method === null || path === null || method.length === 0 || path.length === 0) return null;
  return new MessageRequest(msg, method, path);
}

/** Marks a field not read yet (null is a read field whose arg was absent). */
const UNREAD = undefined;

/** An AuthzRequest over a NOTIFY message, each optional arg decoded once, on first use. */
class MessageRequest implements AuthzRequest {
  readonly method: string;
  readonly path: string;
  private readonly msg: NotifyMessage;
  private queryValue: string | null | undefined = UNREAD;
  private hostValue: string | null | undefined = UNREAD;
  private authorizationValue: string | null | undefined = UNREAD;
  private cookieValue: string | null | undefined = UNREAD;
  private tokenHeaderValue: string | null | undefined = UNREAD;
  private srcValue: string | null | undefined = UNREAD;
  private prefectUiValue: boolean | undefined = UNREAD;
  private idValue: string | null | undefined = UNREAD;
  private bodyValue: Uint8Array | null | undefined = UNREAD;
  private bodySizeValue: number | null | undefined = UNREAD;
  private clientCertValue: ClientCertificate | null | undefined = UNREAD;

  constructor(msg: NotifyMessage, method: string, path: string) {
    this.msg = msg;
    this.method = method;
    this.path = path;
  }

  get query(): string | null {
    if (this.queryValue === UNREAD) this.queryValue = this.msg.getString(ARG.query);
    return this.queryValue;
  }

  get host(): string | null {
    if (this.hostValue === UNREAD) this.hostValue = this.msg.getString(ARG.host);
    return this.hostValue;
  }

  get authorization(): string | null {
    if (this.authorizationValue === UNREAD) this.authorizationValue = this.msg.getString(ARG.authorization);
    return this.authorizationValue;
  }

  get cookie(): string | null {
    if (this.cookieValue === UNREAD) this.cookieValue = this.msg.getString(ARG.cookie);
    return this.cookieValue;
  }

  get tokenHeader(): string | null {
    if (this.tokenHeaderValue === UNREAD) this.tokenHeaderValue = this.msg.getString(ARG.tokenHeader);
    return this.tokenHeaderValue;
  }

  get src(): string | null {
    if (this.srcValue === UNREAD) this.srcValue = this.msg.getIp(ARG.src) ?? this.msg.getString(ARG.src);
    return this.srcValue;
  }

  get prefectUi(): boolean {
    if (this.prefectUiValue === UNREAD) this.prefectUiValue = isTrueHeader(this.msg.getString(ARG.prefectUi));
    return this.prefectUiValue;
  }

  /** null unless `ssl_c_used` is true: no certificate, or a SPOE config that does not send one. */
  get clientCert(): ClientCertificate | null {
    if (this.clientCertValue === UNREAD) this.clientCertValue = readClientCert(this.msg);
    return this.clientCertValue;
  }

  get id(): string | null {
    if (this.idValue === UNREAD) this.idValue = this.msg.getString(ARG.id);
    return this.idValue;
  }

  /** BINARY (`req.body`) or STRING; an empty body arrives as either, or as NULL. */
  get body(): Uint8Array | null {
    if (this.bodyValue === UNREAD) {
      // Only authorize-body carries one: one name compare instead of a search of the args.
      const v = this.msg.is(AUTHORIZE_BODY_MESSAGE) ? this.msg.get(ARG.body)?.value : undefined;
      this.bodyValue = v instanceof Uint8Array ? v : typeof v === 'string' ? Buffer.from(v, 'latin1') : null;
    }
    return this.bodyValue;
  }

  get bodySize(): number | null {
    if (this.bodySizeValue === UNREAD) {
      const v = this.msg.getInt(ARG.bodySize);
      this.bodySizeValue = typeof v === 'bigint' ? Number(v) : v;
    }
    return this.bodySizeValue;
  }
}

/** `X-Prefect-UI: true` (Prefect compares case-insensitively). */
function isTrueHeader(value: string | null): boolean {
  return value !== null && value.length === 4 && value.toLowerCase() === 'true';
}

function readClientCert(msg: NotifyMessage): ClientCertificate | null {
  if (msg.getBool(ARG.certUsed) !== true) return null;
  const verify = msg.getInt(ARG.certVerify);
  const digest = msg.get(ARG.certSha256)?.value;
  return {
    // No ssl_c_verify is not a verified certificate.
    verified: verify !== null && Number(verify) === 0,
    subject: msg.getString(ARG.certSubject),
    sha256: sha256Arg(digest instanceof Uint8Array || typeof digest === 'string' ? digest : null),
  };
}
