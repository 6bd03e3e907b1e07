/** `apikey create | list | revoke` through the CLI, on a keys file in a temporary directory. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuthzEngine } from '../../src/auth/index.js';
import { main } from '../../src/cli.js';
import { parseExpiry } from '../../src/commands/apikey.js';
import { REPO_ROOT } from '../helpers/agent-process.js';
import { capture } from '../helpers/capture.js';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  const { value: code, text: err } = await capture('stderr', async () => {
    const r = await capture('stdout', () => main(args));
    out = r.text;
    return r.value;
  });
  return { code, out, err };
}

describe('spoe-authz apikey', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'apikey-cli-'));
    file = join(dir, 'api-keys.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('create prints the key once and stores only its hash; the agent accepts the key', async () => {
    const made = await cli([
      'apikey',
      'create',
      '--keys-file',
      file,
      '--sub',
      'worker-a',
      '--roles',
      'worker',
    ]);
    expect(made.code).toBe(0);
    const key = made.out.trim();
    expect(key).toMatch(/^spoe_[0-9A-Za-z]{12}_[0-9A-Za-z]{43}$/);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(key.slice(18));
    expect(statSync(file).mode & 0o777).toBe(0o644);
    const engine = AuthzEngine.create({ apiKeys: { file } });
    const d = await engine.decide({
      method: 'POST',
      path: '/api/work_pools/p/workers/heartbeat',
      query: null,
      host: null,
      authorization: `Bearer ${key}`,
      cookie: null,
      src: null,
    });
    engine.close();
    expect(d).toMatchObject({ allow: true, sub: 'worker-a', iss: 'api-key', role: 'worker' });
  });

  it('list shows entries and their state without secrets; revoke marks one revoked', async () => {
    await cli([
      'apikey',
      'create',
      '--keys-file',
      file,
      '--sub',
      'a',
      '--roles',
      'worker',
      '--expires',
      '30d',
    ]);
    const basic = await cli([
      'apikey',
      'create',
      '--keys-file',
      file,
      '--sub',
      'b',
      '--roles',
      'worker',
      '--type',
      'auth-string',
      '--user',
      'wb',
    ]);
    expect(basic.out.trim()).toMatch(/^wb:[0-9A-Za-z]{32}$/);
    const listed = JSON.parse((await cli(['apikey', 'list', '--keys-file', file, '--json'])).out) as Array<{
      id: string;
      state: string;
      type: string;
    }>;
    expect(listed.map((k) => [k.type, k.state])).toEqual([
      ['api-key', 'active'],
      ['auth-string', 'active'],
    ]);
    expect(JSON.stringify(listed)).not.toContain('hash');
    const id = listed[0]?.id as string;
    expect((await cli(['apikey', 'revoke', id, '--keys-file', file])).code).toBe(0);
    const table = (await cli(['apikey', 'list', '--keys-file', file])).out;
    expect(table).toMatch(new RegExp(`${id}\\s+api-key\\s+a\\s.*revoked`));
    expect((await cli(['apikey', 'revoke', 'nope', '--keys-file', file])).code).toBe(2);
  });

  it.each([
    [['--roles', 'wroker'], /unknown role "wroker"/],
    [['--roles', 'worker', '--work-pool', 'prod'], /workPoolClaim/],
    [['--roles', 'worker', '--expires', 'tomorrow'], /--expires takes a duration/],
    [['--roles', 'worker', '--user', 'x'], /for --type auth-string/],
    [[], /needs --roles/],
  ])('create refuses %j with exit 2 and writes nothing', async (args, message) => {
    const r = await cli(['apikey', 'create', '--keys-file', file, '--sub', 'a', ...args]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(() => statSync(file)).toThrow();
  });

  it('without a keys file anywhere, says where to set one', async () => {
    writeFileSync(join(dir, 'agent.yaml'), 'devIssuer: true\n');
    const r = await cli(['apikey', 'list', '-c', join(dir, 'agent.yaml')]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /set apiKeys\.file in the config \(file:.*agent\.yaml\), AUTHZ_API_KEYS_FILE, or pass --keys-file/,
    );
  });

  it('serve: a keys file the agent cannot use stops it at start with exit 2 and the field path', async () => {
    await cli(['apikey', 'create', '--keys-file', file, '--sub', 'a', '--roles', 'worker']);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { keys: Array<{ roles: string[] }> };
    (doc.keys[0] as { roles: string[] }).roles = ['wroker'];
    writeFileSync(file, JSON.stringify(doc));
    writeFileSync(join(dir, 'agent.yaml'), `devIssuer: true\napiKeys: { file: ${JSON.stringify(file)} }\n`);
    const r = await cli([
      'serve',
      '-c',
      join(dir, 'agent.yaml'),
      '--listen',
      '127.0.0.1:0',
      '--metrics-listen',
      'off',
    ]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`apiKeys.file: ${file}: keys.0.roles.0: unknown role "wroker"`);
    // With --workers the primary checks it before forking (a process: main() would fork vitest).
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'src/cli.ts'), 'serve', '-c', join(dir, 'agent.yaml')].concat([
        '--listen',
        '127.0.0.1:0',
        '--metrics-listen',
        'off',
        '--workers',
        '2',
      ]),
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(child.status).toBe(2);
    expect(child.stderr).toContain(`apiKeys.file: ${file}: keys.0.roles.0: unknown role "wroker"`);
  });

  it('check reads the keys file as serve would, and says what it holds', async () => {
    await cli(['apikey', 'create', '--keys-file', file, '--sub', 'a', '--roles', 'worker']);
    writeFileSync(join(dir, 'agent.yaml'), `devIssuer: true\napiKeys: { file: ${JSON.stringify(file)} }\n`);
    const r = await cli(['check', '-c', join(dir, 'agent.yaml')]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`keys file ok (${file}): 1 API keys, 0 auth strings, 0 revoked`);
  });

  it('expiry: durations and dates, in the future only', () => {
    const now = new Date('2026-12-03T12:00:00Z');
    expect(parseExpiry('90d', now)).toBe('2027-03-03T12:00:00.000Z');
    expect(parseExpiry('12h', now)).toBe('2026-12-04T00:00:00.000Z');
    expect(parseExpiry('2027-06-30', now)).toBe('2027-06-30T00:00:00.000Z');
    expect(parseExpiry('2027-06-30T08:00:00+02:00', now)).toBe('2027-06-30T06:00:00.000Z');
    expect(() => parseExpiry('2026-01-01', now)).toThrow(/not in the future/);
    expect(() => parseExpiry('0d', now)).toThrow(/not in the future/);
  });
});
