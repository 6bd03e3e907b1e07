/**
 * Codec micro-benchmark: NOTIFY → ACK on the `notify-create-flow-run` fixture (real HAProxy 2.6
 * capture, 805 bytes: 1 message, 8 args incl. a 616-byte Authorization header). One op =
 *   framer (length prefix) + NOTIFY header/payload decode + read every arg (strings materialised,
 *   src as text) + encode an ACK with six SET-VARs (bool, int, 4 strings) into one buffer.
 * No sockets. Run: `npx tsx bench/codec.ts` (or `node --cpu-prof --import tsx bench/codec.ts`).
 */
import { readFileSync } from 'node:fs';
import { cpus, platform, release } from 'node:os';
import type { Action } from '../src/spop/actions.js';
import { VarScope } from '../src/spop/constants.js';
import { FrameHeader, readFrameHeader } from '../src/spop/decode.js';
import { encodeAck } from '../src/spop/encode.js';
import { FrameWriter } from '../src/spop/frame-writer.js';
import { Framer } from '../src/spop/framer.js';
import { decodeNotifyPayload, type NotifyMessage } from '../src/spop/notify.js';
import { Reader } from '../src/spop/reader.js';

const fixture = new URL('../../shared/fixtures/spop/haproxy-2.6/notify-create-flow-run.hex', import.meta.url);
const body = Buffer.from(readFileSync(fixture, 'utf8').trim(), 'hex');
const wire = Buffer.alloc(4 + body.length);
wire.writeUInt32BE(body.length, 0);
body.copy(wire, 4);

let sink = 0;

function readArgs(m: NotifyMessage): void {
  const method = m.getString('method');
  const path = m.getString('path');
  const query = m.getString('query');
  const host = m.getString('host');
  const authz = m.getString('authorization');
  const cookie = m.getString('cookie');
  const src = m.getIp('src');
  const id = m.getString('id');
  sink +=
    (method?.length ?? 0) +
    (path?.length ?? 0) +
    (query?.length ?? 0) +
    (host?.length ?? 0) +
    (authz?.length ?? 0) +
    (cookie?.length ?? 0) +
    (src?.length ?? 0) +
    (id?.length ?? 0);
}

function actionsFor(i: number): Action[] {
  return [
    { op: 'set', scope: VarScope.TXN, name: 'allow', value: true },
    { op: 'set', scope: VarScope.TXN, name: 'status', value: 200 + (i & 7) },
    { op: 'set', scope: VarScope.TXN, name: 'reason', value: 'ok' },
    { op: 'set', scope: VarScope.TXN, name: 'sub', value: 'user-1' },
    { op: 'set', scope: VarScope.TXN, name: 'role', value: 'prefect-operators' },
    { op: 'set', scope: VarScope.TXN, name: 'tag', value: 'deployments.create_flow_run' },
  ];
}

const framer = new Framer();
const reader = new Reader(Buffer.alloc(0));
const header = new FrameHeader();
const writer = new FrameWriter();

/** The connection's path: per-connection Framer/Reader/FrameWriter, ACK taken as one Buffer. */
function opConnectionPath(i: number): void {
  framer.push(wire);
  if (!framer.next()) throw new Error('no frame');
  const r = reader.reset(framer.frame, framer.start, framer.end);
  readFrameHeader(r, header);
  const notify = decodeNotifyPayload(r, framer.frame, header.streamId, header.frameId);
  for (const m of notify.messages) readArgs(m);
  writer.ack(notify.streamId, notify.frameId, actionsFor(i));
  sink += writer.take()!.length;
}

/** Same, but the ACK through the public one-shot `encodeAck`. */
function opEncodeAck(i: number): void {
  framer.push(wire);
  if (!framer.next()) throw new Error('no frame');
  const r = reader.reset(framer.frame, framer.start, framer.end);
  readFrameHeader(r, header);
  const notify = decodeNotifyPayload(r, framer.frame, header.streamId, header.frameId);
  for (const m of notify.messages) readArgs(m);
  sink += encodeAck(notify.streamId, notify.frameId, actionsFor(i)).length;
}

/** Decode + read args only (no ACK), to split the cost. */
function opDecodeOnly(_i: number): void {
  framer.push(wire);
  if (!framer.next()) throw new Error('no frame');
  const r = reader.reset(framer.frame, framer.start, framer.end);
  readFrameHeader(r, header);
  const notify = decodeNotifyPayload(r, framer.frame, header.streamId, header.frameId);
  for (const m of notify.messages) readArgs(m);
}

/** ACK encode only. */
function opAckOnly(i: number): void {
  writer.ack(i, 1, actionsFor(i));
  sink += writer.take()!.length;
}

function measure(fn: (i: number) => void, ops: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) fn(i);
  return Number(process.hrtime.bigint() - t0) / ops;
}

const variants: [string, (i: number) => void][] = [
  ['NOTIFY→ACK (connection path: FrameWriter)', opConnectionPath],
  ['NOTIFY→ACK (one-shot encodeAck)', opEncodeAck],
  ['  part: framer+decode+read 8 args', opDecodeOnly],
  ['  part: encode ACK (6 SET-VAR)', opAckOnly],
];

const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
if (only !== undefined) variants.splice(0, variants.length, ...variants.filter(([n]) => n.includes(only)));

const OPS = 200_000;
const ROUNDS = 9;
const cpu = cpus()[0];
console.log(`machine: ${cpu?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${platform()} ${release()}`);
console.log(
  `node ${process.version}; fixture ${body.length}-byte NOTIFY; ${ROUNDS} rounds × ${OPS} ops, median\n`,
);

for (const [, fn] of variants) measure(fn, OPS); // warm-up: every variant reaches optimised code
const results: { name: string; ns: number }[] = [];
for (const [name, fn] of variants) {
  measure(fn, OPS);
  const samples: number[] = [];
  for (let r = 0; r < ROUNDS; r++) samples.push(measure(fn, OPS));
  samples.sort((a, b) => a - b);
  results.push({ name, ns: samples[Math.floor(ROUNDS / 2)]! });
}
const width = Math.max(...results.map((r) => r.name.length));
for (const { name, ns } of results) {
  const ops = Math.round(1e9 / ns).toLocaleString('en-US');
  console.log(`${name.padEnd(width)}  ${ns.toFixed(0).padStart(6)} ns/op  ${ops.padStart(12)} ops/s`);
}
const goal = results[0]!.ns <= 500 ? 'met' : 'MISSED';
console.log(`\ngoal ≤ 500 ns per NOTIFY→ACK on one core: ${goal} (${results[0]!.ns.toFixed(0)} ns)`);
if (sink === 42) console.log(''); // keep results observable
