/**
 * What the fuzzer sends: HAProxy 2.6 captures (test/fixtures/spop/haproxy-2.6), frames built
 * like HAProxy's (2.6 and 3.1+ HELLOs, NOTIFYs of the shipped SPOE message with our tokens),
 * their mutations, and random frames.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataType, encodeFrame, FrameType, type NamedValue } from '../../src/spop/index.js';
import type { Rng } from './random.js';

export const CAPTURES_DIR = fileURLToPath(new URL('../../test/fixtures/spop/haproxy-2.6/', import.meta.url));

/** Frame bodies (no length prefix) of every `.hex` capture in `dir`, by file name. */
export function loadCaptures(dir = CAPTURES_DIR): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith('.hex')) continue;
    out.set(f.slice(0, -4), Buffer.from(readFileSync(join(dir, f), 'utf8').trim(), 'hex'));
  }
  if (out.size === 0) throw new Error(`no .hex captures in ${dir}`);
  return out;
}

/** `<u32 BE length><body>`. */
export function wire(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

const body = (frame: Buffer): Buffer => frame.subarray(4);

/** A HAPROXY-HELLO like 2.6's or 3.1's; max-frame-size mostly 16380, else random (or `maxFrameSize`). */
export function helloBody(rng: Rng, maxFrameSize?: number): Buffer {
  const style = rng.int(3);
  const kv: NamedValue[] = [
    { name: 'supported-versions', value: '2.0' },
    {
      name: 'max-frame-size',
      value: {
        type: DataType.UINT32,
        value: maxFrameSize ?? (rng.chance(0.8) ? 16380 : 256 + rng.int(16124)),
      },
    },
    { name: 'capabilities', value: style === 0 ? 'pipelining,async' : style === 1 ? 'pipelining' : '' },
    { name: 'engine-id', value: '7f9e7c3a-1b2c-4d5e-8f90-a1b2c3d4e5f6' },
  ];
  return body(encodeFrame({ type: FrameType.HAPROXY_HELLO, kv }));
}

export function healthcheckBody(): Buffer {
  return body(
    encodeFrame({
      type: FrameType.HAPROXY_HELLO,
      kv: [
        { name: 'supported-versions', value: '2.0' },
        { name: 'max-frame-size', value: { type: DataType.UINT32, value: 16380 } },
        { name: 'capabilities', value: '' },
        { name: 'healthcheck', value: true },
      ],
    }),
  );
}

export function disconnectBody(): Buffer {
  return body(
    encodeFrame({
      type: FrameType.HAPROXY_DISCONNECT,
      kv: [
        { name: 'status-code', value: { type: DataType.UINT32, value: 0 } },
        { name: 'message', value: 'normal' },
      ],
    }),
  );
}

const ROUTES: readonly [string, string, string | null][] = [
  ['POST', '/api/work_pools/default-pool/get_scheduled_flow_runs', null],
  ['GET', '/api/flow_runs/5f8a8c61-1b9e-4a2b-9c3e-0d2f4a6b8c10', null],
  ['POST', '/api/logs', null],
  ['GET', '/api/deployments/9b1d', 'include_secrets=true'],
  ['GET', '/api/health', null],
  ['GET', '/', null],
  ['DELETE', '/api/admin/../flows/x', 'a=1&a=2'],
];

/** A NOTIFY of the shipped `authorize` message; `token` null sends no Authorization header. */
export function notifyBody(rng: Rng, sid: number | bigint, fid: number, token: string | null): Buffer {
  const [method, path, query] = rng.pick(ROUTES);
  const args: NamedValue[] = [
    { name: 'method', value: method },
    { name: 'path', value: path },
    { name: 'query', value: query },
    { name: 'host', value: 'prefect.internal:4200' },
    { name: 'authorization', value: token === null ? null : `Bearer ${token}` },
    { name: 'cookie', value: null },
    { name: 'src', value: { type: DataType.IPV4, value: '10.20.0.2' } },
    { name: 'id', value: `0A140002:9C40_7F000001:1F90_${rng.u32().toString(16)}` },
    { name: 'prefect_ui', value: null },
  ];
  return body(
    encodeFrame({
      type: FrameType.NOTIFY,
      streamId: sid,
      frameId: fid,
      messages: [{ name: 'authorize', args }],
    }),
  );
}

/** A varint of §1.4 for a small random value, or a pathological one (long, overlong). */
function randomVarint(rng: Rng): Buffer {
  switch (rng.int(6)) {
    case 0:
      return Buffer.from([rng.int(240)]);
    case 1:
      return Buffer.from([0xf0 | rng.int(16), rng.int(128)]);
    case 2:
      return Buffer.from([0xff, 0xf0, 0xfe, 0xfe, 0x7e]);
    case 3:
      return Buffer.alloc(11, 0xff); // longer than 10 bytes
    case 4:
      return Buffer.from([0xf0 | rng.int(16)]); // cut
    default:
      return rng.bytes(1 + rng.int(4));
  }
}

const TYPES = [0, 1, 2, 3, 3, 3, 101, 102, 103, 4, 255];
const FLAGS = [0, 1, 1, 1, 2, 3, 0xffffffff, 0x80000001];

/** A frame body with a plausible header and random payload. */
export function randomBody(rng: Rng): Buffer {
  const flags = Buffer.allocUnsafe(4);
  flags.writeUInt32BE(rng.pick(FLAGS) >>> 0, 0);
  return Buffer.concat([
    Buffer.from([rng.pick(TYPES)]),
    flags,
    randomVarint(rng),
    randomVarint(rng),
    rng.bytes(rng.int(rng.chance(0.1) ? 2000 : 64)),
  ]);
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xef, 0xf0, 0xff, 0x08, 0x09, 0x11, 0x0a];

/** A copy of `src` with 1-6 edits: bytes set, bits flipped, bytes cut or inserted, spans repeated, a tail cut. */
export function mutate(rng: Rng, src: Buffer, other: Buffer): Buffer {
  let b = Buffer.from(src);
  const edits = 1 + rng.int(6);
  for (let e = 0; e < edits; e++) {
    const at = b.length === 0 ? 0 : rng.int(b.length);
    switch (rng.int(8)) {
      case 0:
        if (b.length > 0) b[at] = rng.u32() & 0xff;
        break;
      case 1:
        if (b.length > 0) b[at] = rng.pick(INTERESTING);
        break;
      case 2:
        if (b.length > 0) b[at]! ^= 1 << rng.int(8);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.int(8))]);
        break;
      case 4:
        b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(8)), b.subarray(at)]);
        break;
      case 5: {
        const len = 1 + rng.int(32);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
        break;
      }
      case 6:
        b = b.subarray(0, at);
        break;
      default: {
        // splice a span of another frame in
        const from = rng.int(Math.max(1, other.length));
        b = Buffer.concat([b.subarray(0, at), other.subarray(from, from + 1 + rng.int(64)), b.subarray(at)]);
      }
    }
  }
  return b;
}
