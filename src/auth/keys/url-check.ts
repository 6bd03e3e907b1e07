import { isIP } from 'node:net';

/** localhost, *.localhost, 127.0.0.0/8, ::1 (RFC 6761 6.3, RFC 5735). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  const lower = host.toLowerCase();
  if (lower === 'localhost' || lower.endsWith('.localhost')) return true;
  if (isIP(lower) === 4) return lower.startsWith('127.');
  if (isIP(lower) === 6) return lower === '::1' || lower === '0:0:0:0:0:0:0:1';
  return false;
}

/** Why a key URL may not be fetched, or null when it may: https, or http to loopback / opted in. */
export function keyUrlProblem(text: string, allowInsecureHttp: boolean): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `not a URL: ${text}`;
  }
  if (url.protocol === 'https:') return null;
  if (url.protocol !== 'http:') return `unsupported scheme ${url.protocol} in ${text}`;
  if (allowInsecureHttp || isLoopbackHost(url.hostname)) return null;
  return `${text} must use https (http is allowed only for loopback or with allowInsecureHttp)`;
}
