/**
 * A real systemd in a Debian 12 container, for testing deploy/systemd/spoe-authz.service as it
 * runs in production: the root file system comes from `debootstrap` (the mirror is the one this
 * machine's own apt sources name, read at run time) and is cached under `.tmp/nspawn/`
 * (git-ignored); `systemd-nspawn --register=no --keep-unit -b` boots it with a volatile overlay
 * (the cache stays clean), the host network (the test talks to the agent on loopback), the host's
 * Node bound read-only at /usr/bin/node, and a build directory bound read-only at /mnt/build.
 * Commands run inside through `nsenter` into the container's namespaces.
 *
 * @module
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Debian 12; procps for /bin/kill (the unit's ExecReload), libstdc++6 for the host's Node. */
export const SUITE = 'bookworm';
export const PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'procps', 'libstdc++6'];

/** Why the test cannot run here, or null when it can. */
export async function missingPrerequisite(): Promise<string | null> {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'needs root (debootstrap, systemd-nspawn)';
  for (const tool of ['debootstrap', 'systemd-nspawn', 'nsenter']) {
    try {
      await run('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return `${tool} not found (apt-get install debootstrap systemd-container)`;
    }
  }
  if (debianMirror() === null) return `no Debian mirror for ${SUITE} in this machine's apt sources`;
  return null;
}

/**
 * The first plain `deb` source for the suite in /etc/apt/sources.list(.d): deb822 `.sources`
 * files (Types/URIs/Suites) and one-line `.list` files. Read at run time: no host is named in
 * the repository.
 */
export function debianMirror(): string | null {
  const dir = '/etc/apt/sources.list.d';
  const files = ['/etc/apt/sources.list'];
  if (existsSync(dir)) for (const f of readdirSync(dir).sort()) files.push(join(dir, f));
  for (const file of files) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string) =>
          new RegExp(`^${name}:\\s*(.+)$`, 'mi').exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
        if (/^Enabled:\s*no/im.test(stanza)) continue;
        if (field('Types').includes('deb') && field('Suites').includes(SUITE) && field('URIs')[0])
          return field('URIs')[0]!;
      }
    } else if (file.endsWith('.list') || file === '/etc/apt/sources.list') {
      for (const line of text.split('\n')) {
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s/.exec(line.trim());
        if (m && m[2] === SUITE) return m[1]!;
      }
    }
  }
  return null;
}

/**
 * The cached root file system (debootstrapped once; about 40 s and 250 MB). Returns its path
 * and whether this call had to build it.
 */
export async function rootFs(
  cacheDir: string,
  log: (line: string) => void,
): Promise<{ root: string; built: boolean }> {
  const key = createHash('sha256')
    .update(`${SUITE} ${PACKAGES.join(',')}`)
    .digest('hex')
    .slice(0, 12);
  const root = join(cacheDir, `${SUITE}-${key}`);
  const marker = join(root, '.spoe-authz-rootfs-complete');
  if (existsSync(marker)) return { root, built: false };
  const mirror = debianMirror();
  if (mirror === null) throw new Error(`no Debian mirror for ${SUITE} in the apt sources`);
  const partial = `${root}.partial`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(cacheDir, { recursive: true });
  log(`debootstrap ${SUITE} from ${mirror} into ${root} (cached for later runs)`);
  const started = Date.now();
  await run('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, SUITE, partial, mirror], {
    maxBuffer: 64 * 1024 * 1024,
    timeout: 600_000,
  });
  await writeFile(join(partial, '.spoe-authz-rootfs-complete'), `${new Date().toISOString()}\n`);
  await rm(root, { recursive: true, force: true });
  await rename(partial, root);
  log(`debootstrap took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { root, built: true };
}

export interface Container {
  /** The container's PID 1 (systemd) as the host sees it. */
  readonly pid: number;
  /** Console output so far (boot messages). */
  console(): string;
  /** Runs `sh -c script` inside; resolves with its exit code and output (never rejects on exit code). */
  sh(script: string, timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Like sh, but rejects unless the exit code is 0. */
  ok(script: string, timeoutMs?: number): Promise<string>;
  /** Powers the container off (and kills nspawn if it does not go). */
  stop(): Promise<void>;
}

export async function boot(
  root: string,
  binds: { hostPath: string; path: string }[],
  log: (line: string) => void,
): Promise<Container> {
  const name = `spoe-authz-test-${process.pid}`;
  const args = [
    '--register=no',
    '--keep-unit',
    '--quiet',
    `--machine=${name}`,
    '--console=read-only',
    '--volatile=overlay',
    '-D',
    root,
    ...binds.map((b) => `--bind-ro=${b.hostPath}:${b.path}`),
    '-b',
  ];
  const nspawn: ChildProcess = spawn('systemd-nspawn', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  nspawn.stdout!.setEncoding('utf8').on('data', (d: string) => {
    output += d;
  });
  nspawn.stderr!.setEncoding('utf8').on('data', (d: string) => {
    output += d;
  });
  let exited = false;
  nspawn.once('exit', () => {
    exited = true;
  });

  // PID 1 inside is nspawn's child running systemd.
  let pid = 0;
  for (let i = 0; i < 200 && pid === 0; i++) {
    if (exited) throw new Error(`systemd-nspawn exited during boot:\n${output}`);
    try {
      const { stdout } = await run('pgrep', ['-P', String(nspawn.pid)]);
      for (const p of stdout.split('\n').filter(Boolean)) {
        if (readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'systemd') pid = Number(p);
      }
    } catch {}
    if (pid === 0) await new Promise((r) => setTimeout(r, 100));
  }
  if (pid === 0) {
    nspawn.kill('SIGKILL');
    throw new Error(`no systemd inside the container after 20 s:\n${output}`);
  }

  const sh: Container['sh'] = (script, timeoutMs = 60_000) =>
    new Promise((resolve, reject) => {
      execFile(
        'nsenter',
        [
          `--target=${pid}`,
          '--mount',
          '--uts',
          '--ipc',
          '--net',
          '--pid',
          '--cgroup',
          '--root',
          '--wd=/',
          '/usr/bin/env',
          '-i',
          'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          'SYSTEMD_PAGER=',
          'SYSTEMD_COLORS=0',
          'LANG=C.UTF-8',
          'sh',
          '-c',
          script,
        ],
        { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (err && typeof (err as { code?: unknown }).code !== 'number') reject(err);
          else resolve({ code: err ? (err as unknown as { code: number }).code : 0, stdout, stderr });
        },
      );
    });
  const ok: Container['ok'] = async (script, timeoutMs) => {
    const r = await sh(script, timeoutMs);
    if (r.code !== 0) throw new Error(`in the container, exit ${r.code}: ${script}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };

  // Booted: multi-user.target reached (the state is `running`, or `degraded` when a unit the
  // container cannot run failed; the test reports which).
  const started = Date.now();
  let state = '';
  for (let i = 0; i < 120; i++) {
    state = (await sh('systemctl is-system-running')).stdout.trim();
    if (state === 'running' || state === 'degraded') break;
    await new Promise((r) => setTimeout(r, 250));
  }
  if (state !== 'running' && state !== 'degraded') {
    nspawn.kill('SIGKILL');
    throw new Error(`the container did not finish booting (state ${state}):\n${output}`);
  }
  log(`container booted in ${((Date.now() - started) / 1000).toFixed(1)} s (system state: ${state})`);
  if (state === 'degraded')
    log(`failed units in the container: ${(await sh('systemctl --failed --no-legend')).stdout.trim()}`);

  return {
    pid,
    console: () => output,
    sh,
    ok,
    async stop() {
      if (exited) return;
      const gone = new Promise<void>((r) => nspawn.once('exit', () => r()));
      await sh('systemctl poweroff --no-block').catch(() => {});
      const timer = setTimeout(() => nspawn.kill('SIGKILL'), 15_000);
      await gone;
      clearTimeout(timer);
    },
  };
}
