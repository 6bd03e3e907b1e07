import { BlockList, isIP } from 'node:net';

export interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/** "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128). */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return null;
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const bits = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits)) return null;
    prefix = Number(bits);
    if (prefix > max) return null;
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

export function blockListOf(cidrs: readonly Cidr[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) list.addSubnet(c.address, c.prefix, c.family);
  return list;
}

/** Checks a client address; IPv4-mapped IPv6 (`::ffff:10.1.2.3`) is treated as IPv4. */
export function addressIn(list: BlockList, src: string): boolean {
  let addr = src;
  if (addr.length > 7 && (addr.charCodeAt(0) === 58 || addr.charCodeAt(0) === 91)) {
    if (addr.startsWith('[') && addr.endsWith(']')) addr = addr.slice(1, -1);
    if (addr.toLowerCase().startsWith('::ffff:') && isIP(addr.slice(7)) === 4) addr = addr.slice(7);
  }
  const version = isIP(addr);
  if (version === 0) return false;
  return list.check(addr, version === 4 ? 'ipv4' : 'ipv6');
}
