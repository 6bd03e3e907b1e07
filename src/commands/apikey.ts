/**
 * `apikey create | list | revoke`: credentials for machines, in the keys file the agent reads
 * (config `apiKeys.file`, or --keys-file). A key or password is printed once, on stdout, and
 * never stored: the file gets its hash. Running agents pick changes up within seconds.
 */
import { readFileSync } from 'node:fs';
import { hashPassword } from '../auth/apikeys/auth-string-hash.js';
import { hashApiKey, newApiKey, newKeyId, randomBase62 } from '../auth/apikeys/key-format.js';
import {
  KEY_TYPES,
  type KeyEntry,
  KeyEntrySchema,
  KeysFileProblem,
  type KeyType,
  readKeysFile,
  updateKeysFile,
} from '../auth/apikeys/keys-file.js';
import { CompiledPolicy } from '../auth/index.js';
import { type AgentConfig, loadConfig } from '../config/load.js';
import { UsageError } from '../errors.js';
import type { CliValues } from './options.js';

/** Length of a generated auth-string password (base62, ~190 bits). */
const PASSWORD_LENGTH = 32;

export async function runApiKey(values: CliValues, args: readonly string[]): Promise<number> {
  const [action, ...rest] = args;
  const config = loadConfig({ path: values.config, overrides: { log: { level: 'silent' } } });
  const file = values['keys-file'] ?? config.authz.apiKeys?.file;
  if (file === undefined) {
    throw new UsageError(
      `apikey: no keys file: set apiKeys.file in the config (${config.source}), AUTHZ_API_KEYS_FILE, or pass --keys-file`,
    );
  }
  switch (action) {
    case 'create':
      if (rest.length > 0) throw new UsageError(`apikey create: unexpected argument ${rest[0]}`);
      return create(values, config, file);
    case 'list':
      if (rest.length > 0) throw new UsageError(`apikey list: unexpected argument ${rest[0]}`);
      return list(values, file);
    case 'revoke':
      if (rest.length !== 1) throw new UsageError('apikey revoke takes one key id (see apikey list)');
      return revoke(file, rest[0] as string);
    default:
      throw new UsageError(`apikey: expected create, list or revoke${action ? `, got "${action}"` : ''}`);
  }
}

async function create(values: CliValues, config: AgentConfig, file: string): Promise<number> {
  const type = (values.type ?? 'api-key') as KeyType;
  if (!KEY_TYPES.includes(type))
    throw new UsageError(`--type is api-key or auth-string, got "${values.type}"`);
  if (values.sub === undefined) throw new UsageError('apikey create needs --sub');
  const roles = (values.roles ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
  if (roles.length === 0) throw new UsageError('apikey create needs --roles (e.g. --roles worker)');
  const workPools = values['work-pool'] ?? [];
  if (type === 'api-key' && (values.user !== undefined || values['password-stdin']))
    throw new UsageError('--user and --password-stdin are for --type auth-string');

  // The agent would refuse the file over these; refuse them here, with the flag's name.
  const policy = CompiledPolicy.compile(config.authz.policy ?? {});
  for (const role of roles) {
    if (!policy.roles.has(role)) {
      throw new UsageError(
        `--roles: unknown role "${role}" (the policy of ${config.source} knows ${policy.roles.names.join(', ')})`,
      );
    }
  }
  if (workPools.length > 0 && policy.config.prefect.workPoolClaim === undefined) {
    throw new UsageError(
      `--work-pool needs policy.prefect.workPoolClaim in ${config.source}; without it the restriction would not be enforced`,
    );
  }
  const now = new Date();
  const expiresAt = values.expires === undefined ? null : parseExpiry(values.expires, now);

  let secret: string;
  let id: string;
  let hash: string;
  let user: string | undefined;
  if (type === 'api-key') {
    const made = newApiKey();
    id = made.id;
    secret = made.key;
    hash = hashApiKey(secret);
  } else {
    id = newKeyId();
    user = values.user ?? values.sub;
    const password = values['password-stdin'] ? readPassword() : randomBase62(PASSWORD_LENGTH);
    secret = `${user}:${password}`;
    hash = await hashPassword(password);
  }
  const candidate = {
    id,
    type,
    hash,
    ...(user !== undefined ? { user } : {}),
    sub: values.sub,
    roles,
    workPools,
    createdAt: now.toISOString(),
    expiresAt,
    revokedAt: null,
    ...(values.note !== undefined ? { note: values.note } : {}),
  };
  const checked = KeyEntrySchema.safeParse(candidate);
  if (!checked.success) {
    const first = checked.error.issues[0];
    throw new UsageError(`apikey create: ${first?.path.join('.')}: ${first?.message}`);
  }
  const { created } = await updateKeysFile(file, (doc) => {
    if (user !== undefined && doc.keys.some((k) => k.user === user && k.revokedAt === null)) {
      throw new UsageError(
        `an auth string for user "${user}" exists and is not revoked: revoke it first, or pick another --user`,
      );
    }
    doc.keys.push(checked.data);
  });
  process.stdout.write(`${secret}\n`);
  process.stderr.write(
    `${created ? 'created' : 'updated'} ${file}: ${type} ${id} for ${values.sub} ` +
      `(roles ${roles.join(',')}${workPools.length > 0 ? `; work pools ${workPools.join(',')}` : ''}; ` +
      `expires ${expiresAt ?? 'never'})\n` +
      `This is the only time the ${type === 'api-key' ? 'key' : 'auth string'} is shown. Give it to the client as ` +
      `${type === 'api-key' ? 'PREFECT_API_KEY' : 'PREFECT_API_AUTH_STRING'} (see README.md, "API keys and auth strings").\n`,
  );
  return 0;
}

function readPassword(): string {
  const text = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  if (text.length === 0) throw new UsageError('--password-stdin: nothing on standard input');
  return text;
}

const DURATION = /^(\d+)([smhdw])$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400, w: 604_800 };

/** `90d`, `12h`, `30m`, `2w`, `3600s`, or an ISO 8601 date or date-time; must be in the future. */
export function parseExpiry(text: string, now: Date): string {
  const m = DURATION.exec(text);
  let at: number;
  if (m !== null) at = now.getTime() + Number(m[1]) * (UNIT_SECONDS[m[2] as string] as number) * 1000;
  else if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) at = Date.parse(text);
  else throw new UsageError(`--expires takes a duration (90d, 12h, 30m) or an ISO date, got "${text}"`);
  if (!Number.isFinite(at)) throw new UsageError(`--expires: not a valid date: "${text}"`);
  if (at <= now.getTime())
    throw new UsageError(`--expires: ${new Date(at).toISOString()} is not in the future`);
  return new Date(at).toISOString();
}

function state(k: KeyEntry, now: number): 'active' | 'expired' | 'revoked' {
  if (k.revokedAt !== null) return 'revoked';
  if (k.expiresAt !== null && Date.parse(k.expiresAt) <= now) return 'expired';
  return 'active';
}

function list(values: CliValues, file: string): number {
  const doc = readKeysFile(file);
  if (doc instanceof KeysFileProblem) {
    process.stderr.write(`${doc.message}\n`);
    return 1;
  }
  const now = Date.now();
  const rows = doc.keys.map((k) => ({
    id: k.id,
    type: k.type,
    sub: k.sub,
    user: k.user ?? null,
    roles: k.roles,
    workPools: k.workPools,
    createdAt: k.createdAt,
    expiresAt: k.expiresAt,
    revokedAt: k.revokedAt,
    state: state(k, now),
    note: k.note ?? null,
  }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  const table = [
    ['ID', 'TYPE', 'SUB', 'USER', 'ROLES', 'WORK POOLS', 'CREATED', 'EXPIRES', 'STATE'],
    ...rows.map((r) => [
      r.id,
      r.type,
      r.sub,
      r.user ?? '-',
      r.roles.join(',') || '-',
      r.workPools.join(',') || '-',
      r.createdAt,
      r.expiresAt ?? 'never',
      r.state,
    ]),
  ];
  const widths = table[0]?.map((_, i) => Math.max(...table.map((row) => (row[i] as string).length))) ?? [];
  for (const row of table) {
    process.stdout.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i] as number))
        .join('  ')
        .trimEnd()}\n`,
    );
  }
  return 0;
}

async function revoke(file: string, id: string): Promise<number> {
  const { result } = await updateKeysFile(file, (doc) => {
    const entry = doc.keys.find((k) => k.id === id);
    if (entry === undefined)
      throw new UsageError(`apikey revoke: no entry ${id} in ${file} (see apikey list)`);
    if (entry.revokedAt !== null) return { entry, already: true };
    entry.revokedAt = new Date().toISOString();
    return { entry, already: false };
  });
  process.stderr.write(
    result.already
      ? `${id} (${result.entry.sub}) was already revoked at ${result.entry.revokedAt}\n`
      : `revoked ${result.entry.type} ${id} (${result.entry.sub}); agents watching ${file} refuse it within seconds\n`,
  );
  return 0;
}
