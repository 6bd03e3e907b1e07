/**
 * Prefect auth strings (`PREFECT_API_AUTH_STRING`, `user:password`) are stored as a slow hash of
 * the password: `scrypt:<log2 N>:<r>:<p>:<salt base64url>:<key base64url>` (RFC 7914), so a
 * leaked keys file does not hand out passwords people may have chosen themselves. The cost is
 * part of each entry: entries hashed with other parameters keep working.
 */
import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptCost {
  readonly logN: number;
  readonly r: number;
  readonly p: number;
}

/** N = 2^14, r = 8, p = 1: 16 MiB and ~65 ms per check on a 2-core EPYC (Node 20). */
export const DEFAULT_SCRYPT: ScryptCost = { logN: 14, r: 8, p: 1 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;

export const SCRYPT_HASH =
  /^scrypt:(1[0-9]|20):([1-9]|1[0-6]):([1-4]):([A-Za-z0-9_-]{22,}):([A-Za-z0-9_-]{43})$/;

export interface ScryptHash extends ScryptCost {
  readonly salt: Buffer;
  readonly key: Buffer;
}

/** The parts of a stored hash, or null when it is not one. */
export function parseScryptHash(text: string): ScryptHash | null {
  const m = SCRYPT_HASH.exec(text);
  if (m === null) return null;
  return {
    logN: Number(m[1]),
    r: Number(m[2]),
    p: Number(m[3]),
    salt: Buffer.from(m[4] as string, 'base64url'),
    key: Buffer.from(m[5] as string, 'base64url'),
  };
}

function options(h: ScryptCost): ScryptOptions {
  // maxmem: scrypt needs about 128 * N * r bytes; Node's default cap (32 MiB) is too tight.
  return { N: 2 ** h.logN, r: h.r, p: h.p, maxmem: 256 * 2 ** h.logN * h.r };
}

function derive(password: string, salt: Buffer, h: ScryptCost): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_BYTES, options(h), (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string, cost: ScryptCost = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, cost);
  return `scrypt:${cost.logN}:${cost.r}:${cost.p}:${salt.toString('base64url')}:${key.toString('base64url')}`;
}

/** Runs on libuv's thread pool; the comparison is constant-time. */
export async function verifyPassword(password: string, stored: ScryptHash): Promise<boolean> {
  const key = await derive(password, stored.salt, stored);
  return key.length === stored.key.length && timingSafeEqual(key, stored.key);
}

/**
 * Bounds the hashing in flight: at most `concurrent` on the thread pool (which signature
 * checks and file reads share) and `queued` waiting; past that, run() answers null at once, so
 * a flood of wrong passwords costs a bounded amount of work and memory, never the event loop.
 */
export class KdfLimiter {
  private readonly concurrent: number;
  private readonly queued: number;
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  /** Refused because both the pool share and the queue were full. */
  refused = 0;
  /** Hashes computed. */
  computed = 0;

  constructor(concurrent: number, queued: number) {
    this.concurrent = concurrent;
    this.queued = queued;
  }

  get inFlight(): number {
    return this.running + this.waiting.length;
  }

  /** `work`'s result, or null when over the bound (work not started). */
  run<T>(work: () => Promise<T>): Promise<T> | null {
    if (this.running < this.concurrent) {
      this.running++;
      return this.exec(work);
    }
    if (this.waiting.length >= this.queued) {
      this.refused++;
      return null;
    }
    // A finishing run hands its slot straight to the first waiter (running is not decremented).
    return new Promise<void>((resolve) => this.waiting.push(resolve)).then(() => this.exec(work));
  }

  private async exec<T>(work: () => Promise<T>): Promise<T> {
    this.computed++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.running--;
    }
  }
}
