/**
 * A real DNS server on loopback UDP for tests: answers A queries for the names it is given
 * (records changeable at run time, TTL 1 s), an empty NOERROR for other types of a known name,
 * NXDOMAIN for unknown names. Enough for HAProxy's `resolvers` (and `server-template`).
 *
 * ```ts
 * const dns = await startDnsServer();          // dns.address: 127.0.0.1:<port>
 * dns.set('agents.test', ['127.0.0.2', '127.0.0.3']);
 * ```
 *
 * @module
 */
import { createSocket } from 'node:dgram';

export interface DnsServer {
  /** `127.0.0.1:<port>`, as HAProxy's `nameserver` takes it. */
  readonly address: string;
  /** Replaces the A records of `name` (an empty list keeps the name, with no address). */
  set(name: string, ipv4: string[]): void;
  /** Queries answered so far, per name. */
  queries(name: string): number;
  close(): Promise<void>;
}

const TYPE_A = 1;

/** Reads the question's name (labels, no compression in a query) and where it ends. */
function readName(msg: Buffer, at: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = at;
  while (i < msg.length && msg[i] !== 0) {
    const len = msg[i]!;
    labels.push(msg.subarray(i + 1, i + 1 + len).toString('latin1'));
    i += 1 + len;
  }
  return { name: labels.join('.').toLowerCase(), end: i + 1 };
}

export async function startDnsServer(): Promise<DnsServer> {
  const records = new Map<string, string[]>();
  const counts = new Map<string, number>();
  const socket = createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return; // one question, as resolvers send
    const { name, end } = readName(msg, 12);
    if (end + 4 > msg.length) return;
    const qtype = msg.readUInt16BE(end);
    counts.set(name, (counts.get(name) ?? 0) + 1);
    const addrs = records.get(name);
    const answers = addrs !== undefined && qtype === TYPE_A ? addrs : [];
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0); // id
    // QR, opcode 0, AA, RD copied; RCODE 3 (NXDOMAIN) for an unknown name.
    header.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100) | (addrs === undefined ? 3 : 0), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    const question = msg.subarray(12, end + 4);
    const rrs = answers.map((ip) => {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // the question's name
      rr.writeUInt16BE(TYPE_A, 2);
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(1, 6); // TTL 1 s
      rr.writeUInt16BE(4, 10);
      ip.split('.').forEach((o, k) => {
        rr[12 + k] = Number(o);
      });
      return rr;
    });
    socket.send(Buffer.concat([header, question, ...rrs]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return {
    address: `127.0.0.1:${socket.address().port}`,
    set(name, ipv4) {
      records.set(name.toLowerCase(), [...ipv4]);
    },
    queries: (name) => counts.get(name.toLowerCase()) ?? 0,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}
