import { isLoopbackHost } from '../auth/index.js';

/** `host:port`, `[v6]:port`, `:port`, `port` or `unix:/path`: where a server listens. */
export type ListenAddress =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

/** Parses a listen address; returns an error message instead of throwing. */
export function parseListenAddress(value: string, defaultHost = '127.0.0.1'): ListenAddress | string {
  if (value.startsWith('unix:')) {
    const path = value.slice(5);
    return path.startsWith('/') ? { kind: 'unix', path } : 'unix socket path must be absolute';
  }
  let host = defaultHost;
  let port: string = value;
  const bracket = /^\[([0-9A-Fa-f:.]+)\]:(\d+)$/.exec(value);
  if (bracket) {
    host = bracket[1]!;
    port = bracket[2]!;
  } else if (value.includes(':')) {
    const i = value.lastIndexOf(':');
    if (value.indexOf(':') !== i) return 'IPv6 addresses go in brackets: [::1]:12345';
    host = value.slice(0, i) || '0.0.0.0';
    port = value.slice(i + 1);
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65_535) return `not a port: "${port}"`;
  return { kind: 'tcp', host, port: Number(port) };
}

export function formatListenAddress(a: ListenAddress): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Only this host can connect: a loopback address or a unix socket. */
export function isLocalListen(a: ListenAddress): boolean {
  return a.kind === 'unix' || isLoopbackHost(a.host);
}
