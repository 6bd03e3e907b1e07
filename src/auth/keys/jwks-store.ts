import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { isJwkSet } from './http-fetch.js';

/** Last good key set of a remote issuer, so a restart during a provider outage still verifies. */
export interface PersistedJwks {
  readonly version: 1;
  readonly iss: string;
  readonly jwksUri: string;
  /** jose `jwksCache.uat`: ms epoch of the fetch. */
  readonly uat: number;
  readonly jwks: JSONWebKeySet;
}

export function persistedJwksPath(dir: string, issuerId: string): string {
  return join(dir, `${issuerId}.jwks.json`);
}

/** null when absent; throws a plain Error with a reason when present but unusable. */
export async function readPersistedJwks(file: string, iss: string): Promise<PersistedJwks | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const data = JSON.parse(text) as Partial<PersistedJwks>;
  if (data.version !== 1 || data.iss !== iss || typeof data.jwksUri !== 'string') {
    throw new Error(`${file}: not a key set persisted for ${iss}`);
  }
  if (typeof data.uat !== 'number' || !Number.isFinite(data.uat) || !isJwkSet(data.jwks)) {
    throw new Error(`${file}: malformed`);
  }
  return data as PersistedJwks;
}

/** Atomic replace (write + rename in the same directory). */
export async function writePersistedJwks(file: string, data: PersistedJwks): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(data)}\n`, { mode: 0o644 });
  await rename(tmp, file);
}
