/**
 * deploy/systemd/spoe-authz.service under a real systemd (Debian 12 in systemd-nspawn, see
 * nspawn.ts): installed as the unit's own comments say, then `systemctl enable --now` reaches
 * active and SPOP answers; the dynamic user owns only the state directory, where the persisted
 * JWKS lands; the hardening is in force on the running process; `systemctl reload` applies a
 * good config and refuses a broken one while serving the old; a SIGKILLed main process is
 * restarted and verifies with the persisted keys while the identity provider is down;
 * `systemctl stop` drains; `systemd-analyze security` gives the exposure README.md states.
 *
 * `npm run test:systemd` (root, debootstrap, systemd-container). Not part of `npm test`: .ci/run
 * runs it as its own step and counts it in the summary line. Without root or the tools it skips
 * with a printed reason; under CI=true it fails instead.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { FrameType } from '../../src/spop/index.js';
import { jwks, makeKey, sign, type TestKey } from '../auth/helpers/keys.js';
import { REPO_ROOT } from '../helpers/agent-process.js';
import { httpRequest } from '../helpers/http.js';
import { type JwksServer, startJwksServer } from '../helpers/jwks-server.js';
import { freePort } from '../helpers/net.js';
import { authorizeOnce, kvOf, SpopTestClient } from '../helpers/spop-client.js';
import { boot, type Container, missingPrerequisite, rootFs } from './nspawn.js';

const run = promisify(execFile);
const UNIT = join(REPO_ROOT, 'deploy/systemd/spoe-authz.service');
const CACHE = process.env.SPOE_AUTHZ_NSPAWN_CACHE ?? join(REPO_ROOT, '.tmp/nspawn');
const log = (line: string) => console.log(`[systemd] ${line}`);

const missing = await missingPrerequisite();
if (missing !== null && process.env.CI === 'true')
  throw new Error(`test:systemd needs a real systemd under CI=true: ${missing}`);
if (missing !== null) console.warn(`skipping the systemd unit tests: ${missing}`);

/** The install commands in the unit's header comment ("Install (as root):"). */
function installSteps(): string[] {
  const lines = readFileSync(UNIT, 'utf8').split('\n');
  const start = lines.findIndex((l) => /^# Install \(as root\):/.test(l));
  const steps: string[] = [];
  for (const l of lines.slice(start + 1)) {
    const m = /^#\s{3}(\S.*)$/.exec(l);
    if (!m) break;
    steps.push(m[1]!.replace(/\s+#.*$/, '').trim());
  }
  return steps;
}

describe.skipIf(missing !== null)(
  'spoe-authz.service under a real systemd (Debian 12, systemd-nspawn)',
  () => {
    let build: string;
    let container: Container;
    let idp: JwksServer;
    let key: TestKey;
    let token: string;
    let spopPort: number;
    let metricsPort: number;
    const timings: string[] = [];

    const config = (extra: Record<string, unknown> = {}) =>
      stringify({
        audit: 'deny',
        issuers: [
          {
            id: 'idp',
            issuer: idp.issuer,
            audiences: ['prefect'],
            algorithms: ['RS256'],
            keys: { type: 'jwks-url', url: idp.jwksUrl, retryIntervalSeconds: 1 },
            roles: { claims: ['roles'], passthrough: true },
          },
        ],
        ...extra,
      });
    const show = async (prop: string) =>
      (await container.ok(`systemctl show -P ${prop} spoe-authz.service`)).trim();
    const mainPid = async () => Number(await show('MainPID'));
    const ready = async () =>
      httpRequest(`http://127.0.0.1:${metricsPort}/readyz`).catch(() => ({ status: 0, body: '' }));
    async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const timed = async <T>(label: string, f: () => Promise<T>): Promise<T> => {
      const t = Date.now();
      const r = await f();
      timings.push(`${label} ${((Date.now() - t) / 1000).toFixed(1)} s`);
      return r;
    };

    beforeAll(async () => {
      key = await makeKey('RS256', 'k1');
      idp = await startJwksServer(jwks(key));
      token = await sign(key, {
        iss: idp.issuer,
        aud: 'prefect',
        sub: 'sys',
        claims: { roles: ['viewer'] },
        exp: 86_400 * 3650,
      });
      spopPort = await freePort();
      metricsPort = await freePort();

      // The build, as the unit's first install line does it in a checkout: compile, then the
      // production dependencies only.
      mkdirSync(join(REPO_ROOT, '.tmp'), { recursive: true });
      build = mkdtempSync(join(REPO_ROOT, '.tmp/systemd-build-'));
      await timed('build (tsc + npm ci --omit=dev)', async () => {
        await run(
          join(REPO_ROOT, 'node_modules/.bin/tsc'),
          ['-p', 'tsconfig.build.json', '--outDir', join(build, 'dist')],
          {
            cwd: REPO_ROOT,
          },
        );
        for (const f of ['package.json', 'package-lock.json', 'README.md'])
          cpSync(join(REPO_ROOT, f), join(build, f));
        await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: build });
      });
      cpSync(join(REPO_ROOT, 'deploy/systemd'), join(build, 'deploy/systemd'), { recursive: true });
      writeFileSync(join(build, 'config.yaml'), config());

      const { root, built } = await timed('root file system', () => rootFs(CACHE, log));
      if (!built) log(`root file system from the cache: ${root}`);
      container = await timed('boot', () =>
        boot(
          root,
          [
            { hostPath: realpathSync(process.execPath), path: '/usr/bin/node' },
            { hostPath: build, path: '/mnt/build' },
          ],
          log,
        ),
      );

      // Install exactly as the unit's comments say (the first line, the build, ran above).
      const steps = installSteps();
      expect(steps[0]).toMatch(/^npm ci && npm run build && npm ci --omit=dev$/);
      const enable = steps.at(-1)!;
      expect(enable).toBe('systemctl daemon-reload && systemctl enable --now spoe-authz');
      for (const step of steps.slice(1, -1)) await container.ok(`cd /mnt/build && ${step}`);
      // The operator's edit of the environment file: this run's ports.
      await container.ok(
        `sed -i -e 's/^AUTHZ_LISTEN=127.0.0.1:12345$/AUTHZ_LISTEN=127.0.0.1:${spopPort}/' ` +
          `-e 's/^AUTHZ_METRICS_LISTEN=127.0.0.1:9464$/AUTHZ_METRICS_LISTEN=127.0.0.1:${metricsPort}/' /etc/spoe-authz/spoe-authz.env && ` +
          `grep -q '^AUTHZ_LISTEN=127.0.0.1:${spopPort}$' /etc/spoe-authz/spoe-authz.env`,
      );
      await timed('systemctl enable --now', () => container.ok(enable));
    }, 720_000);

    afterAll(async () => {
      if (container) {
        const journal = await container.sh('journalctl -u spoe-authz --no-pager -o cat | tail -n 40');
        if (process.env.SPOE_AUTHZ_SYSTEMD_VERBOSE) log(`journal tail:\n${journal.stdout}`);
        await timed('poweroff', () => container.stop());
      }
      await idp?.close();
      if (build) rmSync(build, { recursive: true, force: true });
      log(`timings: ${timings.join(', ')}`);
    }, 60_000);

    it('systemctl enable --now reaches active, SPOP answers from the host, /readyz is ready', async () => {
      expect((await container.sh('systemctl is-active spoe-authz')).stdout.trim()).toBe('active');
      expect((await container.sh('systemctl is-enabled spoe-authz')).stdout.trim()).toBe('enabled');
      await until('/readyz 200', async () => (await ready()).status === 200);
      expect(await authorizeOnce(spopPort, token)).toMatchObject({ allow: true, status: 200 });
    });

    it('the dynamic user owns only the state directory, and the persisted JWKS lands there (0700/0600)', async () => {
      const pid = await mainPid();
      const uid = Number((await container.ok(`stat -c %u /proc/${pid}`)).trim());
      expect(uid).toBeGreaterThanOrEqual(61184); // systemd's DynamicUser range 61184-65519
      expect(uid).toBeLessThanOrEqual(65519);
      await until(
        'the persisted JWKS',
        async () => (await container.sh('test -s /var/lib/private/spoe-authz/idp.jwks.json')).code === 0,
      );
      const owned = (
        await container.ok(
          `find / /run /tmp /var/tmp /dev/shm -xdev \\( -path /proc -o -path /sys \\) -prune -o -uid ${uid} -print | sort -u`,
        )
      )
        .trim()
        .split('\n');
      expect(owned).toEqual(['/var/lib/private/spoe-authz', '/var/lib/private/spoe-authz/idp.jwks.json']);
      expect(
        (
          await container.ok(
            'stat -c %a /var/lib/private/spoe-authz /var/lib/private/spoe-authz/idp.jwks.json',
          )
        )
          .split('\n')
          .slice(0, 2),
      ).toEqual(['700', '600']);
      expect((await container.ok('readlink /var/lib/spoe-authz')).trim()).toBe('private/spoe-authz');
      const persisted = JSON.parse(
        await container.ok('cat /var/lib/private/spoe-authz/idp.jwks.json'),
      ) as object;
      expect(JSON.stringify(persisted)).toContain('"kid":"k1"');
    });

    it('the hardening is in force on the running process', async () => {
      const pid = await mainPid();
      const status = await container.ok(`cat /proc/${pid}/status`);
      const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'm').exec(status)?.[1]?.trim();
      const mounts = await container.ok(`cat /proc/${pid}/mountinfo`);
      const rootMount = mounts.split('\n').find((l) => l.split(' ')[4] === '/') ?? '';
      const inService = (script: string) =>
        container.sh(
          `nsenter --target=${pid} --mount --setuid=$(stat -c %u /proc/${pid}) --setgid=$(stat -c %g /proc/${pid}) sh -c '${script}'`,
        );
      // LimitNOFILE cannot go over the hard limit the container was started with (the host's).
      const openFiles = (limits: string) =>
        /^Max open files\s+(\d+)\s+(\d+)/m.exec(limits)?.slice(1, 3) ?? [];
      const nofile = openFiles(await container.ok(`cat /proc/${pid}/limits`)).join(' ');
      const ceiling = Number(openFiles(await container.ok('cat /proc/1/limits'))[1]);
      const expectedNofile = Math.min(65536, ceiling);
      if (ceiling < 65536)
        log(
          `the container cannot apply LimitNOFILE=65536: its hard limit is ${ceiling} (the host's); checked as ${ceiling}`,
        );
      const mountOf = (path: string) =>
        mounts
          .split('\n')
          .find((l) => l.split(' ')[4] === path)
          ?.split(' ')[5] ?? '';
      const ro = (opts: string) => /(^|,)ro(,|$)/.test(opts);
      const sameNs = async (ns: string) =>
        new Set((await container.ok(`readlink /proc/1/ns/${ns} /proc/${pid}/ns/${ns}`)).trim().split('\n'))
          .size === 1;
      // [unit setting: what shows it on the process, applied?]
      const checks: [string, boolean][] = [
        ['DynamicUser=yes: not root', field('Uid')?.split(/\s+/)[0] !== '0'],
        ['NoNewPrivileges=yes: NoNewPrivs 1', field('NoNewPrivs') === '1'],
        ['SystemCallFilter=: seccomp filter mode', field('Seccomp') === '2'],
        [
          'CapabilityBoundingSet= (empty): no capability',
          field('CapBnd') === '0000000000000000' && field('CapEff') === '0000000000000000',
        ],
        ['UMask=0077', field('Umask') === '0077'],
        [`LimitNOFILE=65536: ${nofile}`, nofile === `${expectedNofile} ${expectedNofile}`],
        ['ProtectSystem=strict: / read-only', ro(rootMount.split(' ')[5] ?? '')],
        ['ProtectSystem=strict: /opt not writable', (await inService('touch /opt/spoe-authz/x')).code !== 0],
        [
          'ConfigurationDirectory=: /etc/spoe-authz not writable',
          (await inService('touch /etc/spoe-authz/x')).code !== 0,
        ],
        [
          'StateDirectory=: writable',
          (await inService('touch /var/lib/spoe-authz/p && rm /var/lib/spoe-authz/p')).code === 0,
        ],
        ['PrivateTmp=yes: own /tmp', mountOf('/tmp') !== '' && !(await sameNs('mnt'))],
        [
          'PrivateDevices=yes: no block devices',
          !/^b/m.test(await container.ok(`ls -l /proc/${pid}/root/dev`)),
        ],
        [
          'ProtectHome=yes: /root hidden',
          (await inService('ls /root')).code !== 0 || (await inService('ls -A /root')).stdout.trim() === '',
        ],
        ['ProtectKernelTunables=yes: /proc/sys read-only', ro(mountOf('/proc/sys'))],
        ['ProtectControlGroups=yes: /sys/fs/cgroup read-only', ro(mountOf('/sys/fs/cgroup'))],
        ['ProtectKernelLogs=yes: no /dev/kmsg', (await inService('test -e /dev/kmsg')).code !== 0],
        ['ProtectHostname=yes: own UTS namespace', !(await sameNs('uts'))],
        [
          'ProtectProc=invisible: other processes hidden',
          (await inService('test -e /proc/1/status')).code !== 0,
        ],
        ['PrivateUsers=yes: own user namespace', !(await sameNs('user'))],
      ];
      for (const [what, applied] of checks) log(`${applied ? 'applied' : 'NOT APPLIED'}: ${what}`);
      log(
        'not probed one by one: RestrictNamespaces, RestrictAddressFamilies, RestrictRealtime, ' +
          'RestrictSUIDSGID, LockPersonality, ProtectClock, ProtectKernelModules, SystemCallArchitectures ' +
          '(rules inside the seccomp filter above, with the empty capability set)',
      );
      expect(checks.filter(([, applied]) => !applied).map(([what]) => what)).toEqual([]);
    });

    it('systemctl reload applies a good config; a broken one fails the reload and the old one keeps serving', async () => {
      const pid = await mainPid();
      const denyFlows = config({
        policy: { rules: [{ name: 'freeze-flows', effect: 'deny', path: '/api/flows/**' }] },
      });
      writeFileSync(join(build, 'config.yaml'), denyFlows);
      await container.ok('install -m 0644 /mnt/build/config.yaml /etc/spoe-authz/config.yaml');
      const good = await container.sh('systemctl reload spoe-authz');
      expect(good.code, good.stderr).toBe(0);
      await until('the reloaded policy', async () => (await authorizeOnce(spopPort, token)).status === 403);
      expect(await authorizeOnce(spopPort, token)).toMatchObject({
        allow: false,
        status: 403,
        reason: 'forbidden',
      });

      writeFileSync(join(build, 'config.yaml'), config().replace('- RS256', '- none'));
      await container.ok('install -m 0644 /mnt/build/config.yaml /etc/spoe-authz/config.yaml');
      const broken = await container.sh('systemctl reload spoe-authz');
      expect(broken.code).not.toBe(0);
      const why = await container.ok('journalctl -u spoe-authz --no-pager -o cat | tail -n 30');
      expect(why).toMatch(/issuers\.0\.algorithms\.0/);
      expect((await container.sh('systemctl is-active spoe-authz')).stdout.trim()).toBe('active');
      expect(await mainPid()).toBe(pid);
      expect(await authorizeOnce(spopPort, token)).toMatchObject({ allow: false, status: 403 });

      writeFileSync(join(build, 'config.yaml'), config());
      await container.ok(
        'install -m 0644 /mnt/build/config.yaml /etc/spoe-authz/config.yaml && systemctl reload spoe-authz',
      );
      await until('the original policy', async () => (await authorizeOnce(spopPort, token)).status === 200);
    });

    it('a SIGKILLed main process is restarted, and verifies with the persisted keys while the provider is down', async () => {
      const before = await mainPid();
      const restarts = Number(await show('NRestarts'));
      await idp.close(); // the identity provider goes away
      await container.ok(`kill -KILL ${before}`);
      await until('a new main process', async () => {
        const pid = await mainPid();
        return (
          pid !== 0 &&
          pid !== before &&
          (await container.sh('systemctl is-active spoe-authz')).stdout.trim() === 'active'
        );
      });
      expect(Number(await show('NRestarts'))).toBe(restarts + 1);
      await until('/readyz 200 from the persisted JWKS', async () => (await ready()).status === 200);
      expect(JSON.parse((await ready()).body)).toMatchObject({
        issuers: [{ id: 'idp', ready: true, origin: 'persisted' }],
      });
      expect(await authorizeOnce(spopPort, token)).toMatchObject({ allow: true, status: 200 });
      await idp.reopen();
    });

    it('systemctl stop drains: an open SPOP connection gets AGENT-DISCONNECT 0, the unit stops cleanly', async () => {
      const client = await SpopTestClient.connect(spopPort);
      await client.hello({ capabilities: 'pipelining' });
      const stop = await container.sh('systemctl stop spoe-authz');
      expect(stop.code, stop.stderr).toBe(0);
      const frame = await client.next();
      expect(frame.type).toBe(FrameType.AGENT_DISCONNECT);
      expect(kvOf(frame)['status-code']).toBe(0);
      client.socket.destroy();
      expect(await show('ActiveState')).toBe('inactive');
      expect(await show('Result')).toBe('success');
      const journal = await container.ok('journalctl -u spoe-authz --no-pager -o cat | tail -n 20');
      expect(journal).toContain('stopping: draining SPOP connections');
    });

    it('systemd-analyze security gives the exposure README.md states', async () => {
      const out = await container.ok('systemd-analyze security --no-pager spoe-authz.service');
      const exposure = /Overall exposure level for spoe-authz\.service:\s*([\d.]+)/.exec(out)?.[1];
      log(`systemd-analyze security: exposure ${exposure}`);
      const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
      const claimed = /`systemd-analyze security spoe-authz`[^.]*?exposure level (\d+\.\d+)/.exec(
        readme,
      )?.[1];
      expect(claimed, 'README states the exposure level').toBeDefined();
      expect(exposure).toBe(claimed);
    });
  },
);
