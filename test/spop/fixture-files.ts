/** The HAProxy 2.6 captures in test/fixtures/spop/haproxy-2.6 (see its README for how they were taken). */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DIR = new URL('../fixtures/spop/haproxy-2.6/', import.meta.url);

export const FIXTURE_NAMES: readonly string[] = readdirSync(fileURLToPath(DIR))
  .filter((f) => f.endsWith('.hex'))
  .map((f) => f.slice(0, -4))
  .sort();

/** A capture: the frame body (no length prefix) and its expected decode. */
export function loadFixture(name: string): { bytes: Buffer; json: Record<string, unknown> } {
  const hex = readFileSync(new URL(`${name}.hex`, DIR), 'utf8').trim();
  const json = JSON.parse(readFileSync(new URL(`${name}.json`, DIR), 'utf8')) as Record<string, unknown>;
  return { bytes: Buffer.from(hex, 'hex'), json };
}

/** The capture as it travels on the wire: 4-byte big-endian length, then the frame. */
export function wireFixture(name: string): Buffer {
  const { bytes } = loadFixture(name);
  const out = Buffer.alloc(4 + bytes.length);
  out.writeUInt32BE(bytes.length, 0);
  bytes.copy(out, 4);
  return out;
}
