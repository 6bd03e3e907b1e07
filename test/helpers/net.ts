/**
 * Small socket helpers shared by the integration tests: free ports and "is this port accepting".
 *
 * @module
 */
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Ports handed out by this worker, so that two calls never return the same port. */
const handedOut = new Set<number>();

/**
 * Returns a TCP port that was free on `host` a moment ago: binds port 0, reads the port the kernel
 * chose, closes. Another process may still take it before the caller binds it, so callers that can
 * retry on EADDRINUSE should (the HAProxy harness does).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen(0, host, () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr !== null ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (port !== 0 && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`freePort: no free port found on ${host}`);
}

/** Resolves true if a TCP connection to `host:port` is accepted, false if refused or timed out. */
export function canConnect(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host });
    const done = (ok: boolean): void => {
      sock.removeAllListeners();
      sock.on('error', () => {});
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/**
 * Polls until `host:port` accepts a TCP connection. Rejects after `timeoutMs`, or as soon as
 * `abort()` returns an Error (used to stop waiting when the process that should listen died).
 */
export async function waitForPort(
  port: number,
  opts: { host?: string; timeoutMs?: number; abort?: () => Error | undefined } = {},
): Promise<void> {
  const { host = '127.0.0.1', timeoutMs = 10_000, abort } = opts;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const err = abort?.();
    if (err) throw err;
    if (await canConnect(port, host)) return;
    if (Date.now() > deadline) throw new Error(`port ${host}:${port} not accepting after ${timeoutMs} ms`);
    await sleep(25);
  }
}
