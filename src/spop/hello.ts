/** HAPROXY-HELLO negotiation (§1.7, §1.8, §1.11). Pure: KV entries in, result or SpopError out. */
import { DataType, MIN_MAX_FRAME_SIZE, Status } from './constants.js';
import type { KvEntry } from './decode.js';
import { invalid, SpopError, SpopErrorCode } from './errors.js';

export interface HelloResult {
  /** min(HAProxy's offer, ours): the limit for frames in both directions. */
  readonly maxFrameSize: number;
  /** Both sides do pipelining: the AGENT-HELLO echoes it. */
  readonly pipelining: boolean;
  /** `capabilities` value for the AGENT-HELLO ("pipelining" or ""): never async/fragmentation. */
  readonly capabilities: string;
  /** `option spop-check` connection: reply, then close. */
  readonly healthcheck: boolean;
  readonly engineId: string | null;
}

/** "Major.Minor" list, spaces ignored; announcing 2.x covers 2.0 (§1.7). */
function supportsV2(list: string): boolean {
  for (const item of list.split(',')) {
    const m = /^(\d+)\.(\d+)$/.exec(item.replaceAll(' ', ''));
    if (m !== null && Number(m[1]) === 2) return true;
  }
  return false;
}

function hasCapability(list: string, cap: string): boolean {
  for (const item of list.split(',')) if (item.trim() === cap) return true;
  return false;
}

/**
 * Validates a HAPROXY-HELLO and computes the reply. Status 5 without supported-versions,
 * 6 without max-frame-size, 8 when no 2.x version is offered, 9 for an offer below 256,
 * 4 for an empty key or a value of the wrong type.
 */
export function negotiateHello(kv: readonly KvEntry[], ourMaxFrameSize: number): HelloResult {
  let versions: KvEntry | undefined;
  let mfs: KvEntry | undefined;
  let caps: KvEntry | undefined;
  let healthcheck = false;
  let engineId: string | null = null;
  for (const e of kv) {
    if (e.name === '') throw invalid('empty key in HELLO');
    if (e.name === 'supported-versions') versions ??= e;
    else if (e.name === 'max-frame-size') mfs ??= e;
    else if (e.name === 'capabilities') caps ??= e;
    else if (e.name === 'healthcheck') healthcheck ||= e.type === DataType.BOOL && e.value === true;
    else if (e.name === 'engine-id' && typeof e.value === 'string') engineId ??= e.value;
  }

  if (versions === undefined) throw new SpopError(SpopErrorCode.NO_VERSION, Status.NO_VERSION);
  if (typeof versions.value !== 'string') throw invalid('supported-versions is not a string');
  if (!supportsV2(versions.value)) {
    throw new SpopError(
      SpopErrorCode.BAD_VERSION,
      Status.BAD_VERSION,
      `unsupported version: ${JSON.stringify(versions.value)}`,
    );
  }

  if (mfs === undefined) throw new SpopError(SpopErrorCode.NO_FRAME_SIZE, Status.NO_FRAME_SIZE);
  const offer = mfs.value;
  if (typeof offer !== 'number' && typeof offer !== 'bigint')
    throw invalid('max-frame-size is not an integer');
  if (offer < MIN_MAX_FRAME_SIZE) {
    throw new SpopError(
      SpopErrorCode.BAD_FRAME_SIZE,
      Status.BAD_FRAME_SIZE,
      `max-frame-size ${offer} below ${MIN_MAX_FRAME_SIZE}`,
    );
  }
  const maxFrameSize = offer < ourMaxFrameSize ? Number(offer) : ourMaxFrameSize;

  let pipelining = false;
  if (caps !== undefined) {
    if (typeof caps.value !== 'string') throw invalid('capabilities is not a string');
    pipelining = hasCapability(caps.value, 'pipelining');
  }
  return { maxFrameSize, pipelining, capabilities: pipelining ? 'pipelining' : '', healthcheck, engineId };
}
