/**
 * The operations HTTP endpoint: `/healthz` (the process is alive and serving SPOP),
 * `/readyz` (every issuer has keys to verify with) and `/metrics` (Prometheus text).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenAddress } from './config/listen-address.js';

export interface EndpointHooks {
  /** Serving SPOP. */
  alive(): boolean;
  /** Ready for traffic, with per-issuer detail for the body. */
  readiness(): { ready: boolean; detail: unknown };
  /** Prometheus exposition text and its content type; absent → 404. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
}

export async function startEndpoints(address: ListenAddress, hooks: EndpointHooks): Promise<Server> {
  const server = createServer((req, res) => {
    handle(req, res, hooks).catch((err: unknown) => {
      if (!res.headersSent) reply(res, 500, { error: String(err) });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (address.kind === 'unix') server.listen(address.path, done);
    else server.listen(address.port, address.host, done);
  });
  return server;
}

async function handle(req: IncomingMessage, res: ServerResponse, hooks: EndpointHooks): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, { error: 'method not allowed' });
  if (path === '/healthz') {
    const alive = hooks.alive();
    return reply(res, alive ? 200 : 503, { status: alive ? 'ok' : 'stopping' });
  }
  if (path === '/readyz') {
    const { ready, detail } = hooks.readiness();
    return reply(res, ready ? 200 : 503, { ready, issuers: detail });
  }
  if (path === '/metrics' && hooks.metrics) {
    const { contentType, body } = await hooks.metrics();
    res.writeHead(200, { 'content-type': contentType });
    res.end(body);
    return;
  }
  reply(res, 404, { error: 'not found' });
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

export function endpointAddress(server: Server): AddressInfo | string | null {
  return server.address();
}
