/**
 * A stand-in Prefect API on loopback for end-to-end tests and the demo: answers every request with
 * 200 and a JSON echo of what it received (method, path, the identity headers HAProxy set), and
 * records every request with all its headers, so a test can check what reached "Prefect".
 * A websocket upgrade (any path) is answered `101 Switching Protocols` and the socket then echoes
 * whatever bytes it receives (enough to prove the tunnel; no websocket framing). An upgrade that
 * offers subprotocol `prefect` gets Prefect's own handshake instead
 * (src/prefect/server/utilities/subscriptions.py): the first frame must be `{"type": "auth", ...}`,
 * answered `{"type": "auth_success"}`; every later text frame is echoed back as a frame.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { encodeFrame, FrameReader, OPCODE } from './ws-frame.js';

export interface RecordedRequest {
  readonly method: string;
  /** Path and query as received. */
  readonly url: string;
  /** Path without the query. */
  readonly path: string;
  /** Lower-case names, as node:http parses them. */
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** Arrived as an `Upgrade` request (answered 101). */
  readonly upgrade: boolean;
}

/** What the stub answers (the body of every 200): enough to see identity forwarding at a glance. */
export interface StubEcho {
  stub: 'prefect';
  method: string;
  path: string;
  'x-forwarded-user': string | null;
  'x-prefect-role': string | null;
  'x-forwarded-email': string | null;
  'x-request-id': string | null;
}

export interface PrefectStub {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** `127.0.0.1:<port>`, for HAProxy's `server` line. */
  readonly address: string;
  /** Every request received, in arrival order (upgrades included). */
  readonly requests: readonly RecordedRequest[];
  /** Requests carrying header `name` with exactly `value` (e.g. a per-test `x-test-id`). */
  withHeader(name: string, value: string): RecordedRequest[];
  close(): Promise<void>;
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC11B85';

function one(headers: IncomingHttpHeaders, name: string): string | null {
  const v = headers[name];
  return typeof v === 'string' ? v : Array.isArray(v) ? v.join(', ') : null;
}

function echo(req: IncomingMessage, path: string): StubEcho {
  return {
    stub: 'prefect',
    method: req.method ?? '',
    path,
    'x-forwarded-user': one(req.headers, 'x-forwarded-user'),
    'x-prefect-role': one(req.headers, 'x-prefect-role'),
    'x-forwarded-email': one(req.headers, 'x-forwarded-email'),
    'x-request-id': one(req.headers, 'x-request-id'),
  };
}

/** Starts the stub on `127.0.0.1:<port>` (default: a port the kernel picks). */
export async function startPrefectStub(options: { port?: number } = {}): Promise<PrefectStub> {
  const requests: RecordedRequest[] = [];
  const failedOnce = new Set<string>();
  const sockets = new Set<Socket>();

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '/';
      const path = url.split('?')[0] ?? url;
      requests.push({
        method: req.method ?? '',
        url,
        path,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        upgrade: false,
      });
      // `x-stub-fail-once: <key>`: the first request with a given key gets a 503 (for retry tests).
      const failKey = one(req.headers, 'x-stub-fail-once');
      if (failKey !== null && !failedOnce.has(failKey)) {
        failedOnce.add(failKey);
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end('{"detail":"stub: failing once"}\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify(echo(req, path))}\n`);
    });
  });

  // RFC 6455 4.2.2: 101 with Sec-WebSocket-Accept derived from the client's key.
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const url = req.url ?? '/';
    requests.push({
      method: req.method ?? '',
      url,
      path: url.split('?')[0] ?? url,
      headers: req.headers,
      body: '',
      upgrade: true,
    });
    const key = one(req.headers, 'sec-websocket-key') ?? '';
    const accept = createHash('sha1')
      .update(key + WS_GUID)
      .digest('base64');
    const prefect = (one(req.headers, 'sec-websocket-protocol') ?? '').split(/\s*,\s*/).includes('prefect');
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${accept}\r\n${prefect ? 'Sec-WebSocket-Protocol: prefect\r\n' : ''}\r\n`,
    );
    socket.on('error', () => {});
    if (!prefect) {
      if (head.length > 0) socket.write(head);
      socket.pipe(socket);
      return;
    }
    const reader = new FrameReader();
    let authenticated = false;
    const onBytes = (chunk: Buffer) => {
      for (const frame of reader.push(chunk)) {
        if (frame.opcode === OPCODE.close) {
          socket.end(encodeFrame(Buffer.from([0x03, 0xe8]), { mask: false, opcode: OPCODE.close }));
          return;
        }
        if (frame.opcode !== OPCODE.text) continue;
        if (!authenticated) {
          let type: unknown;
          try {
            type = (JSON.parse(frame.payload.toString('utf8')) as { type?: unknown }).type;
          } catch {}
          if (type !== 'auth') {
            // Prefect closes with 1008 (policy violation) when the first message is not auth.
            socket.end(encodeFrame(Buffer.from([0x03, 0xf0]), { mask: false, opcode: OPCODE.close }));
            return;
          }
          authenticated = true;
          socket.write(encodeFrame('{"type":"auth_success"}', { mask: false }));
          continue;
        }
        socket.write(encodeFrame(frame.payload, { mask: false }));
      }
    };
    if (head.length > 0) onBytes(head);
    socket.on('data', onBytes);
  });

  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;

  let closing: Promise<void> | undefined;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    requests,
    withHeader: (name, value) => requests.filter((r) => one(r.headers, name.toLowerCase()) === value),
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
