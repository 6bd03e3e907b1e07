/**
 * BENCHMARK ONLY: an SPOP agent that answers every NOTIFY with an empty ACK (no action at all),
 * as cheaply as an agent in Node can: the ACK is the NOTIFY's header with its type changed,
 * nothing of the message is decoded (bench/lib/empty-ack.ts). The floor of SPOP for HAProxy:
 * a NOTIFY out, an ACK in, no variable to set. Row 8 of bench/e2e.ts, through an haproxy.cfg
 * that reads no var of the agent (it forwards every request the agent answered).
 *
 *   node --import tsx bench/empty-ack-agent.ts --listen 127.0.0.1:12347
 *
 * Not part of the product: it lives in bench/ and is not compiled into dist/.
 */
import { createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { EmptyAckConnection } from './lib/empty-ack.js';

const { values } = parseArgs({ options: { listen: { type: 'string' } } });
const listen = values.listen ?? '127.0.0.1:12347';

const sockets = new Set<Socket>();
let notifies = 0;
const server = createServer((socket) => {
  socket.setNoDelay(true);
  sockets.add(socket);
  const conn = new EmptyAckConnection();
  socket.on('data', (chunk: Buffer) => {
    let out: Buffer;
    try {
      out = conn.onData(chunk);
    } catch (err) {
      process.stderr.write(`empty-ack agent: ${(err as Error).message}\n`);
      socket.destroy();
      return;
    }
    if (out.length > 0) socket.write(Buffer.from(out));
    if (conn.close) socket.end();
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    notifies += conn.notifies;
    sockets.delete(socket);
  });
});
if (listen.startsWith('unix:')) server.listen(listen.slice(5));
else {
  const i = listen.lastIndexOf(':');
  server.listen(Number(listen.slice(i + 1)), listen.slice(0, i));
}
server.once('listening', () => process.stdout.write(`empty-ack agent listening on ${listen}\n`));
const stop = () => {
  server.close();
  for (const s of sockets) s.destroy();
  process.stderr.write(`empty-ack agent: ${notifies} NOTIFYs answered on closed connections\n`);
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
