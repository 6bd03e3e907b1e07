/** IPV4 / IPV6 typed data (§1.5): raw network-order bytes on the wire, text form in the API. */
import { isIPv4, isIPv6 } from 'node:net';

// Decimal octets precomputed: cheaper than four number-to-string conversions per address.
const OCTET = Array.from({ length: 256 }, (_, i) => String(i));
const OCTET_DOT = OCTET.map((s) => `${s}.`);

export function formatIpv4(b: Uint8Array, off: number): string {
  return OCTET_DOT[b[off]!]! + OCTET_DOT[b[off + 1]!]! + OCTET_DOT[b[off + 2]!]! + OCTET[b[off + 3]!]!;
}

// Direct-mapped cache of formatted IPv4 addresses: HAProxy sends `src` on every NOTIFY and
// clients repeat, so a hit (one multiply, one compare) replaces three concatenations whose
// cons-string result is flattened again by whoever reads it.
const IP4_SLOTS = 256;
const ip4Keys = new Float64Array(IP4_SLOTS).fill(-1);
const ip4Text: string[] = new Array<string>(IP4_SLOTS).fill('');

/** {@link formatIpv4} through a small cache; returns a flat string. */
export function formatIpv4Cached(b: Uint8Array, off: number): string {
  const key = ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
  const slot = Math.imul(key, 0x9e3779b1) >>> 24;
  if (ip4Keys[slot] === key) return ip4Text[slot]!;
  const text = flat(formatIpv4(b, off));
  ip4Keys[slot] = key;
  ip4Text[slot] = text;
  return text;
}

/** Forces a flat (sequential) string: V8 flattens a cons string on its first char access. */
function flat(s: string): string {
  s.charCodeAt(0);
  return s;
}

/** RFC 5952 text: lower-case hex, longest run (>= 2) of zero groups as `::`, `::ffff:a.b.c.d`. */
export function formatIpv6(b: Uint8Array, off: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[off + i]! << 8) | b[off + i + 1]!);
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0) {
    if (groups[5] === 0xffff) return `::ffff:${formatIpv4(b, off + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number) => g.toString(16);
  if (bestStart < 0) return groups.map(hex).join(':');
  const left = groups.slice(0, bestStart).map(hex).join(':');
  const right = groups
    .slice(bestStart + bestLen)
    .map(hex)
    .join(':');
  return `${left}::${right}`;
}

/** Parses dotted-quad IPv4 text; null when not an IPv4 address. */
export function parseIpv4(text: string): Uint8Array | null {
  if (!isIPv4(text)) return null;
  const out = new Uint8Array(4);
  const parts = text.split('.');
  for (let i = 0; i < 4; i++) out[i] = Number(parts[i]);
  return out;
}

/** Parses IPv6 text (with `::` and an optional trailing dotted quad); null otherwise. */
export function parseIpv6(text: string): Uint8Array | null {
  if (!isIPv6(text) || text.includes('%')) return null;
  const toGroups = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const p of part.split(':')) {
      if (p.includes('.')) {
        const v4 = parseIpv4(p);
        if (v4 === null) return [Number.NaN];
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        out.push(Number.parseInt(p, 16));
      }
    }
    return out;
  };
  const dbl = text.indexOf('::');
  let groups: number[];
  if (dbl >= 0) {
    const left = toGroups(text.slice(0, dbl));
    const right = toGroups(text.slice(dbl + 2));
    groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  } else {
    groups = toGroups(text);
  }
  if (groups.length !== 8) return null;
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i]!;
    if (!(g >= 0 && g <= 0xffff)) return null;
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  }
  return out;
}
