/**
 * A minimal HTTP/1.1 client for integration tests (node:http, no dependency): status, headers and
 * the whole body as a string.
 *
 * @module
 */
import { Agent, type IncomingHttpHeaders, type OutgoingHttpHeaders, request } from 'node:http';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpRequestOptions {
  /** Default `GET`. */
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Uint8Array;
  /**
   * Connection handling: an Agent from {@link createHttpAgent} to reuse (keep-alive) connections,
   * or `false` (default) for one connection per request, closed after the response.
   */
  agent?: Agent | false;
  /** Rejects when no complete response arrived in time. Default 10 s. */
  timeoutMs?: number;
  /**
   * The request-target sent as is, instead of the URL's (which WHATWG URL parsing normalises:
   * dot segments removed), e.g. `/api/x/../flows` to see what HAProxy and the agent make of it.
   */
  rawPath?: string;
}

/**
 * Creates a connection pool for {@link httpRequest}. `keepAlive` (default true) reuses connections,
 * `maxSockets` (default 64) bounds parallel connections per host. Call `agent.destroy()` when done.
 */
export function createHttpAgent(opts: { keepAlive?: boolean; maxSockets?: number } = {}): Agent {
  return new Agent({ keepAlive: opts.keepAlive ?? true, maxSockets: opts.maxSockets ?? 64 });
}

/** Sends one request and resolves with the full response; rejects on socket errors or timeout. */
export function httpRequest(url: string | URL, opts: HttpRequestOptions = {}): Promise<HttpResponse> {
  const { method = 'GET', headers = {}, body, agent = false, timeoutMs = 10_000, rawPath } = opts;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, headers, agent, ...(rawPath === undefined ? {} : { path: rawPath }) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('error', reject);
        res.once('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.setTimeout(timeoutMs, () =>
      req.destroy(new Error(`${method} ${url}: no response in ${timeoutMs} ms`)),
    );
    req.once('error', reject);
    req.end(body);
  });
}
