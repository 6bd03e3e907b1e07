import type { AuthzRequest } from '../../../src/auth/index.js';

export interface RequestOptions {
  token?: string | null;
  authorization?: string | null;
  query?: string | null;
  host?: string | null;
  src?: string | null;
  cookie?: string | null;
  tokenHeader?: string | null;
  prefectUi?: boolean;
}

export function request(method: string, path: string, opts: RequestOptions = {}): AuthzRequest {
  return {
    method,
    path,
    query: opts.query ?? null,
    host: opts.host === undefined ? 'prefect.example.com' : opts.host,
    authorization: opts.authorization ?? (opts.token ? `Bearer ${opts.token}` : null),
    cookie: opts.cookie ?? null,
    tokenHeader: opts.tokenHeader ?? null,
    src: opts.src === undefined ? '192.0.2.10' : opts.src,
    prefectUi: opts.prefectUi ?? false,
    id: null,
  };
}
