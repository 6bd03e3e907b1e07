/**
 * The keys file: API keys and Prefect auth strings, as `spoe-authz apikey` writes it and the
 * agent reads it. JSON, one document:
 *
 *   { "version": 1, "keys": [ { "id", "type", "hash", "sub", "roles", ... }, ... ] }
 *
 * It never holds a key or a password, only their hashes (key-format.ts, auth-string-hash.ts).
 * Writes are atomic (a temporary file renamed over the old one) and serialised by a lock file,
 * so the agent, which watches the file, only ever reads a whole version of it.
 */
import {
  chmodSync,
  closeSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { chown } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { hasControlCharacters } from '../claims.js';
import { ROLE_NAME } from '../issuer-config.js';
import { SCRYPT_HASH } from './auth-string-hash.js';
import { SHA256_HASH } from './key-format.js';

export const KEYS_FILE_VERSION = 1;
export const KEY_TYPES = ['api-key', 'auth-string'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

const printable = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((s) => !hasControlCharacters(s), 'no control characters');

const timestamp = z.iso.datetime({ offset: true });

export const KeyEntrySchema = z
  .strictObject({
    /** 12 base62 characters; the `<id>` inside an API key. */
    id: z.string().regex(/^[0-9A-Za-z]{12}$/, '12 characters [0-9A-Za-z]'),
    type: z.enum(KEY_TYPES),
    /** `sha256:...` for an API key, `scrypt:...` for an auth string's password. */
    hash: z.string(),
    /** auth-string only: the part before the first `:` of the auth string. */
    user: printable(128)
      .refine((s) => !s.includes(':'), 'no ":" (it separates user and password)')
      .optional(),
    /** Becomes `sub` (txn.<prefix>.sub, the audit line, per-subject rate limits). */
    sub: printable(512),
    roles: z.array(ROLE_NAME).default([]),
    /** Work pools the credential may poll (policy.prefect.workPoolClaim must be set). */
    workPools: z.array(printable(256)).default([]),
    createdAt: timestamp,
    expiresAt: timestamp.nullable().default(null),
    revokedAt: timestamp.nullable().default(null),
    note: z.string().max(1_000).optional(),
  })
  .superRefine((entry, ctx) => {
    if (entry.type === 'api-key') {
      if (!SHA256_HASH.test(entry.hash))
        ctx.addIssue({ code: 'custom', path: ['hash'], message: 'an api-key hash is sha256:<43 base64url>' });
      if (entry.user !== undefined)
        ctx.addIssue({ code: 'custom', path: ['user'], message: 'only auth-string entries have a user' });
    } else {
      if (!SCRYPT_HASH.test(entry.hash)) {
        ctx.addIssue({
          code: 'custom',
          path: ['hash'],
          message: 'an auth-string hash is scrypt:<log2 N>:<r>:<p>:<salt>:<key>',
        });
      }
      if (entry.user === undefined) ctx.addIssue({ code: 'custom', path: ['user'], message: 'required' });
    }
  });

export const KeysFileSchema = z
  .strictObject({
    version: z.literal(KEYS_FILE_VERSION),
    keys: z.array(KeyEntrySchema),
  })
  .superRefine((file, ctx) => {
    const ids = new Set<string>();
    const activeUsers = new Set<string>();
    file.keys.forEach((entry, i) => {
      if (ids.has(entry.id))
        ctx.addIssue({ code: 'custom', path: ['keys', i, 'id'], message: 'duplicate id' });
      ids.add(entry.id);
      if (entry.type === 'auth-string' && entry.revokedAt === null && entry.user !== undefined) {
        if (activeUsers.has(entry.user)) {
          ctx.addIssue({
            code: 'custom',
            path: ['keys', i, 'user'],
            message: 'another auth string that is not revoked has this user',
          });
        }
        activeUsers.add(entry.user);
      }
    });
  });

export type KeyEntry = z.output<typeof KeyEntrySchema>;
export type KeysFile = z.output<typeof KeysFileSchema>;

export interface KeysFileIssue {
  /** Inside the file: `keys.3.roles.0`; empty for the whole file. */
  readonly path: string;
  readonly message: string;
}

/** A keys file that cannot be used; `issues` name the wrong fields inside it. */
export class KeysFileProblem {
  readonly file: string;
  readonly issues: readonly KeysFileIssue[];
  constructor(file: string, issues: readonly KeysFileIssue[]) {
    this.file = file;
    this.issues = issues;
  }
  get message(): string {
    return `${this.file}: ${this.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`;
  }
}

/** Parses and validates file text (JSON). */
export function parseKeysFile(file: string, text: string): KeysFile | KeysFileProblem {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return new KeysFileProblem(file, [{ path: '', message: `not valid JSON: ${(err as Error).message}` }]);
  }
  const parsed = KeysFileSchema.safeParse(data);
  if (parsed.success) return parsed.data;
  return new KeysFileProblem(
    file,
    parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
  );
}

/** Reads and validates the file, synchronously (start-up, the CLI). */
export function readKeysFile(file: string): KeysFile | KeysFileProblem {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return new KeysFileProblem(file, [{ path: '', message: `cannot read: ${(err as Error).message}` }]);
  }
  return parseKeysFile(file, text);
}

export function emptyKeysFile(): KeysFile {
  return { version: KEYS_FILE_VERSION, keys: [] };
}

export function serializeKeysFile(doc: KeysFile): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

const LOCK_WAIT_MS = 5_000;

/**
 * Runs `change` on the current file (an empty one if there is none) and writes the result
 * atomically, holding `<file>.lock` meanwhile. A new file is created 0644: it holds hashes
 * only, and the agent's service user (a DynamicUser under systemd) must be able to read it;
 * an existing file keeps its mode and owner.
 */
export async function updateKeysFile<T>(
  file: string,
  change: (doc: KeysFile) => T,
): Promise<{ readonly result: T; readonly created: boolean }> {
  const lock = `${file}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  let fd: number;
  for (;;) {
    try {
      fd = openSync(lock, 'wx', 0o600);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || Date.now() > deadline) {
        throw new Error(
          (err as NodeJS.ErrnoException).code === 'EEXIST'
            ? `${lock} exists: another apikey command is running, or one was killed (then remove the lock file)`
            : `cannot lock ${file}: ${(err as Error).message}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    let existing: { mode: number; uid: number; gid: number } | null = null;
    try {
      const st = statSync(file);
      existing = { mode: st.mode & 0o777, uid: st.uid, gid: st.gid };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    let doc: KeysFile;
    if (existing === null) doc = emptyKeysFile();
    else {
      const read = readKeysFile(file);
      if (read instanceof KeysFileProblem)
        throw new Error(`refusing to rewrite an invalid file: ${read.message}`);
      doc = read;
    }
    const result = change(doc);
    const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
    writeFileSync(tmp, serializeKeysFile(doc), { flag: 'wx' });
    try {
      chmodSync(tmp, existing?.mode ?? 0o644);
      if (existing !== null && process.getuid?.() === 0) await chown(tmp, existing.uid, existing.gid);
      renameSync(tmp, file);
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {}
      throw err;
    }
    return { result, created: existing === null };
  } finally {
    closeSync(fd);
    unlinkSync(lock);
  }
}
