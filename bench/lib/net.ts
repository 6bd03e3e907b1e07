/** Loopback helpers: free ports, waiting for a listener, one HTTP request. */
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

import { accepts } from '../../src/load/agent-process.js';
import { formatTarget, type Target } from '../../src/load/target.js';

export { freePort } from '../../src/load/agent-process.js';

/**
 * Resolves once 127.0.0.1:port (or the target, e.g. a unix socket) accepts; rejects after 15 s
 * or when `abort()` returns an error.
 */
export async function waitForPort(port: number | Target, abort: () => Error | undefined): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const err = abort();
    if (err) throw err;
    if (await accepts(port)) return;
    if (Date.now() > deadline) {
      const where = typeof port === 'number' ? `127.0.0.1:${port}` : formatTarget(port);
      throw new Error(`nothing listens on ${where} after 15 s`);
    }
    await sleep(50);
  }
}

/** GET http://127.0.0.1:port/path with headers; resolves with status and body. */
export function httpGet(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`GET ${path}: no answer in 5 s`)));
    req.on('error', reject);
    req.end();
  });
}
