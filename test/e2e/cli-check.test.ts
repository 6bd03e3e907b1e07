// `spoe-authz check` and `serve` as an operator runs them: a broken config stops with exit code 2
// and the path of the wrong field; the shipped SPOE file passes `check --spoe-conf`.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/agent-process.js';
import { freePort } from '../helpers/net.js';
import { SHIPPED_SPOE_CONF } from './stack.js';

const ISSUER = `  - id: corp
    issuer: https://login.example.com/
    audiences: [prefect]
    keys: { type: oidc }
    roles: { claims: [groups], map: { prefect-admins: admin } }
`;
const GOOD = `listen: 127.0.0.1:12345\naudit: deny\nissuers:\n${ISSUER}    algorithms: [RS256]\n`;
const BAD_ALGORITHM = `issuers:\n${ISSUER}    algorithms: [none]\n`;

describe('spoe-authz check', () => {
  let dir: string;
  const file = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spoe-authz-check-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('rejects a broken config with exit 2 and the field path', async () => {
    const r = await runCli(['check', '--config', await file('bad.yaml', BAD_ALGORITHM)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^config error \(file:.*bad\.yaml\): issuers\.0\.algorithms\.0: Invalid option: [^\n]*\n$/,
    );
    expect(r.stdout).not.toMatch(/config ok/);

    // The development issuer beside it does not shift the index.
    const dev = await runCli([
      'check',
      '--config',
      await file('bad-dev.yaml', `devIssuer: true\n${BAD_ALGORITHM}`),
    ]);
    expect(dev.code).toBe(2);
    expect(dev.stderr).toMatch(/^config error \(file:.*\): issuers\.0\.algorithms\.0: /);
  });

  it('names the field when only the engine can see the problem (a role map to an unknown role)', async () => {
    const yaml = GOOD.replace('prefect-admins: admin', 'prefect-admins: superuser');
    const r = await runCli(['check', '--config', await file('bad-role.yaml', yaml)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^config error \(file:.*\): issuers\.0\.roles\.map\.prefect-admins: unknown role "superuser"/,
    );
  });

  it('passes a good config with the shipped spoe-agent.conf, and fails a SPOE file without path=', async () => {
    const good = await file('good.yaml', GOOD);
    const ok = await runCli([
      'check',
      '--config',
      good,
      '--spoe-conf',
      join(REPO_ROOT, 'haproxy/spoe-agent.conf'),
    ]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^config ok \(file:.*good\.yaml\): issuers corp$/m);
    expect(ok.stdout).toMatch(/^spoe config ok \(.*haproxy\/spoe-agent\.conf\)$/m);

    const noPath = SHIPPED_SPOE_CONF.replace(' path=path ', ' ');
    expect(noPath).not.toBe(SHIPPED_SPOE_CONF);
    const bad = await runCli(['check', '--config', good, '--spoe-conf', await file('spoe.conf', noPath)]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/message authorize lacks arg path=/);
  });

  it('vars: a list without allow is exit 2 naming vars; --haproxy-cfg warns about what is not sent', async () => {
    const good = await file('vars.yaml', GOOD);
    const bad = await runCli(['check', '--config', good], { env: { AUTHZ_VARS: 'status,reason' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /^config error \(file:.*vars\.yaml\): vars: must include allow and status \(missing allow\)[^\n]*\n$/,
    );

    const lean = await runCli(
      [
        'check',
        '--config',
        good,
        '--spoe-conf',
        join(REPO_ROOT, 'haproxy/spoe-agent.conf'),
        '--haproxy-cfg',
        join(REPO_ROOT, 'haproxy/haproxy.cfg'),
      ],
      { env: { AUTHZ_VARS: 'allow,status,reason,path,sub,role,tag,rule,cache' } },
    );
    expect(lean.code).toBe(0);
    expect(lean.stdout).toMatch(
      /^warning: .*haproxy\.cfg: line \d+ reads txn\.auth\.claim_email, which the agent does not send \(add claims to vars\)$/m,
    );
    expect(lean.stdout.match(/^warning: .*haproxy\.cfg/gm)).toHaveLength(1);
  });

  it('serve stops with exit 2 and the field path before it listens', async () => {
    const r = await runCli([
      'serve',
      '--config',
      await file('bad-serve.yaml', BAD_ALGORITHM),
      '--listen',
      '127.0.0.1:0',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^config error \(file:.*\): issuers\.0\.algorithms\.0: [^\n]*\n$/);
    expect(r.stdout).not.toMatch(/agent listening/);
  });

  // An issuer whose JWKS URL refuses connections: the engine keeps retry timers, which must not
  // keep a process that could not listen alive (runCli would time out with code null).
  it.each(['--listen', '--metrics-listen'])(
    'serve exits 1 with one line naming the address when %s is taken, and ends by itself',
    async (flag) => {
      const busy = createServer();
      await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
      const taken = `127.0.0.1:${(busy.address() as AddressInfo).port}`;
      const free = `127.0.0.1:${await freePort()}`;
      const refused = await freePort();
      const config = await file(
        `busy${flag}.yaml`,
        `issuers:\n  - { id: idp, issuer: "https://idp.example/", audiences: [prefect], algorithms: [RS256], keys: { type: jwks-url, url: "http://127.0.0.1:${refused}/jwks" } }\n`,
      );
      try {
        const r = await runCli([
          'serve',
          '--config',
          config,
          '--listen',
          flag === '--listen' ? taken : free,
          '--metrics-listen',
          flag === '--listen' ? 'off' : taken,
        ]);
        expect(r.code).toBe(1);
        expect(r.stderr).toBe(`cannot listen on ${taken}: EADDRINUSE (another process listens there)\n`);
        expect(r.stdout).not.toMatch(/"msg":"agent listening"/);
        // Said once, on stderr: no error record with a stack trace in the log as well.
        expect(r.stdout).not.toMatch(/"stack"|"level":50/);
      } finally {
        await new Promise((resolve) => busy.close(resolve));
      }
    },
  );

  it('an invalid YAML file is one line: where, and what is wrong, no parser excerpt', async () => {
    const path = await file('broken.yaml', 'listen: 127.0.0.1:12345\nissuers:\n  - id: a\n   issuer: x\n');
    const r = await runCli(['serve', '--config', path]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^config error \(file:.*broken\.yaml\): \(root\): not valid YAML: [^\n]+ \(line \d+, column \d+\)\n$/,
    );
  });

  it.each([
    [
      'a JWKS file with no key',
      '{"keys":[]}',
      /issuers\.0\.keys\.path: .*no key usable for ES256 among 0 entries/,
    ],
    [
      'a JWKS file with a corrupt key',
      '{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"AAAA","y":"AAAA"}]}',
      /issuers\.0\.keys\.path: .*entry 0 \(kid "k"\): ES256: cannot be imported/,
    ],
  ])('serve with %s exits 2 with the field path, before it listens', async (name, set, message) => {
    const jwks = await file(`${name.replace(/\W+/g, '-')}.json`, set);
    const config = await file(
      `${name.replace(/\W+/g, '-')}.yaml`,
      `issuers:\n  - { id: files, issuer: "https://files.example", audiences: [prefect], algorithms: [ES256], keys: { type: jwks-file, path: "${jwks}" } }\n`,
    );
    const r = await runCli([
      'serve',
      '--config',
      config,
      '--listen',
      '127.0.0.1:0',
      '--metrics-listen',
      'off',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.split('\n')).toHaveLength(2);
    expect(r.stdout).not.toMatch(/agent listening/);
    const check = await runCli(['check', '--config', config]);
    expect(check.code).toBe(2);
    expect(check.stderr).toBe(r.stderr);
  });

  it('a unix socket another process serves: exit 1, its one line on stderr, no error record besides', async () => {
    const path = join(dir, 'taken.sock');
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(path, resolve));
    try {
      const config = await file('sock.yaml', 'devIssuer: true\n');
      const r = await runCli([
        'serve',
        '--config',
        config,
        '--listen',
        `unix:${path}`,
        '--metrics-listen',
        'off',
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`cannot listen on unix:${path}: another process is listening on it\n`);
      expect(r.stdout).not.toMatch(/"level":50/);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  it('serve --workers 2 with a refused key set exits 2 with the field path, from the primary', async () => {
    const jwks = await file('workers-empty.json', '{"keys":[]}');
    const config = await file(
      'workers.yaml',
      `issuers:\n  - { id: files, issuer: "https://files.example", audiences: [prefect], algorithms: [ES256], keys: { type: jwks-file, path: "${jwks}" } }\n`,
    );
    const r = await runCli([
      'serve',
      '--workers',
      '2',
      '--config',
      config,
      '--listen',
      '127.0.0.1:0',
      '--metrics-listen',
      'off',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^config error \(file:.*workers\.yaml\): issuers\.0\.keys\.path: [^\n]*no key usable for ES256[^\n]*\n$/,
    );
  });
});
