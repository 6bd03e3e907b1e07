/**
 * A real JWKS / OIDC discovery HTTP server on loopback for tests: serves
 * `/.well-known/openid-configuration` and `/jwks`, and can rotate keys, go slow, answer 500,
 * garbage or a redirect, hang, or go away (close) and come back on the same port.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface JwkSet {
  keys: Array<Record<string, unknown>>;
}

/** How /jwks (and discovery) answer. */
export type JwksServerMode = 'ok' | 'error' | 'garbage' | 'redirect' | 'hang' | 'not-a-jwks';

export interface JwksServer {
  /** http://127.0.0.1:<port>, also the OIDC issuer. */
  readonly origin: string;
  readonly issuer: string;
  readonly jwksUrl: string;
  readonly discoveryUrl: string;
  /** Requests received per document since start (or the last resetHits()). */
  readonly hits: { jwks: number; discovery: number };
  setKeys(jwks: JwkSet): void;
  setMode(mode: JwksServerMode): void;
  /** Delay every response by this many ms ("slow"). */
  setDelay(ms: number): void;
  /** Overrides the discovery document (null restores the default). */
  setDiscovery(doc: Record<string, unknown> | null): void;
  /**
   * Serves `body` at `path` (exact match) as well: a provider's own documents (a certs document,
   * a PEM per kid, a discovery document under a tenant path). A string is sent as it is, with
   * `contentType`; anything else as JSON. `mode` and `delay` apply as to /jwks. null removes it.
   */
  setDocument(path: string, body: unknown, contentType?: string): void;
  resetHits(): void;
  /** Stops listening and drops every connection: the provider is gone. */
  close(): Promise<void>;
  /** Listens again on the same port. */
  reopen(): Promise<void>;
}

class RawDocument {
  readonly text: string;
  readonly contentType: string;
  constructor(text: string, contentType: string) {
    this.text = text;
    this.contentType = contentType;
  }
}

export async function startJwksServer(initial: JwkSet = { keys: [] }): Promise<JwksServer> {
  let keys = initial;
  let mode: JwksServerMode = 'ok';
  let delay = 0;
  let discoveryOverride: Record<string, unknown> | null = null;
  const hits = { jwks: 0, discovery: 0 };
  const documents = new Map<string, { body: unknown; contentType: string }>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let port = 0;
  let origin = '';

  const answer = (res: ServerResponse, body: unknown) => {
    if (mode === 'hang') return;
    if (mode === 'error') {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
    } else if (mode === 'garbage') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": [ this is not json');
    } else if (mode === 'redirect') {
      res.writeHead(302, { location: `${origin}/elsewhere` }).end();
    } else if (mode === 'not-a-jwks') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"hello":"world"}');
    } else if (body instanceof RawDocument) {
      res.writeHead(200, { 'content-type': body.contentType }).end(body.text);
    } else {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    }
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    let body: unknown;
    if (req.url === '/jwks') {
      hits.jwks++;
      body = keys;
    } else if (req.url === '/.well-known/openid-configuration') {
      hits.discovery++;
      body = discoveryOverride ?? { issuer: origin, jwks_uri: `${origin}/jwks` };
    } else {
      const doc = documents.get(req.url ?? '');
      if (doc === undefined) {
        res.writeHead(404).end();
        return;
      }
      body = typeof doc.body === 'string' ? new RawDocument(doc.body, doc.contentType) : doc.body;
    }
    if (delay > 0) {
      const t = setTimeout(() => {
        timers.delete(t);
        answer(res, body);
      }, delay);
      timers.add(t);
    } else {
      answer(res, body);
    }
  };

  let server: Server;
  const listen = async (onPort: number) => {
    server = createServer(handler);
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(onPort, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    origin = `http://127.0.0.1:${port}`;
  };
  await listen(0);

  return {
    get origin() {
      return origin;
    },
    get issuer() {
      return origin;
    },
    get jwksUrl() {
      return `${origin}/jwks`;
    },
    get discoveryUrl() {
      return `${origin}/.well-known/openid-configuration`;
    },
    hits,
    setKeys(jwks) {
      keys = jwks;
    },
    setMode(m) {
      mode = m;
    },
    setDelay(ms) {
      delay = ms;
    },
    setDiscovery(doc) {
      discoveryOverride = doc;
    },
    setDocument(path, body, contentType = 'application/json') {
      if (body === null) documents.delete(path);
      else documents.set(path, { body, contentType });
    },
    resetHits() {
      hits.jwks = 0;
      hits.discovery = 0;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    async reopen() {
      await listen(port);
    },
  };
}
