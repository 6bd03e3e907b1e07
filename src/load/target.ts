/** Where the load goes: a TCP host:port or a unix socket, and whether it is this machine. */
import { isIP } from 'node:net';

export type Target =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

/** Parses `host:port`, `[v6]:port` or `unix:/path`; returns a message on error. */
export function parseTarget(value: string): Target | string {
  if (value.startsWith('unix:')) {
    const path = value.slice(5);
    return path.length > 0 ? { kind: 'unix', path } : 'unix: needs a path';
  }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  if (m === null) return `expected host:port, [ipv6]:port or unix:/path, got "${value}"`;
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (host.length === 0) return `missing host in "${value}"`;
  if (port < 1 || port > 65_535) return `port out of range in "${value}"`;
  return { kind: 'tcp', host, port };
}

export function formatTarget(t: Target): string {
  if (t.kind === 'unix') return `unix:${t.path}`;
  return isIP(t.host) === 6 ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

/**
 * True for addresses that cannot leave this machine: 127.0.0.0/8, ::1, ::ffff:127.x,
 * `localhost`, and unix sockets. Names other than `localhost` are not resolved: a name could
 * point anywhere, so it counts as remote.
 */
export function isLoopback(t: Target): boolean {
  if (t.kind === 'unix') return true;
  const h = t.host.toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}
