/**
 * `npm run demo`: the whole product on loopback, with nothing to configure.
 *
 *   client (curl) → HAProxy (the system's haproxy, running the SHIPPED haproxy/haproxy.cfg and
 *   haproxy/spoe-agent.conf) → SPOE → the agent (development issuer) → a stand-in Prefect API
 *
 * Prints tokens for viewer, operator, worker and admin and curl commands that show allow, deny
 * (401/403) and tagging, then runs until Ctrl-C (SIGINT) or SIGTERM, which stops all three.
 *
 * Environment: DEMO_PORT (HAProxy's port, default 8080; a free port if it is taken),
 * HAPROXY_BIN (default: haproxy on PATH, /usr/sbin/haproxy, /usr/local/sbin/haproxy).
 * DEVELOPMENT ONLY: the development issuer's private key is public.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  accessSync,
  constants,
  copyFileSync,
  createWriteStream,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { mintDevToken } from '../../src/auth/index.js';
import { type PrefectStub, startPrefectStub } from '../../test/helpers/prefect-stub.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HOST = '127.0.0.1';

function findHaproxy(): string {
  const fromEnv = process.env.HAPROXY_BIN;
  const candidates = fromEnv
    ? [fromEnv]
    : [
        ...(process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'haproxy')),
        '/usr/sbin/haproxy',
        '/usr/local/sbin/haproxy',
      ];
  for (const bin of candidates) {
    try {
      accessSync(bin, constants.X_OK);
      return bin;
    } catch {
      // next
    }
  }
  throw new Error('no haproxy binary found (install HAProxy 2.6+, or set HAPROXY_BIN)');
}

/** `preferred` if it can be bound on loopback now, else a port the kernel picks. */
function port(preferred = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      if (preferred !== 0 && err.code === 'EADDRINUSE') resolve(port(0));
      else reject(err);
    });
    srv.listen(preferred, HOST, () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

function accepting(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(p, HOST);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Prefixes each output line of a child with its name; `keep` filters what is shown. */
function pipeLines(child: ChildProcess, name: string, keep: (line: string) => string | null): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue;
    createInterface({ input: stream }).on('line', (line) => {
      const shown = keep(line);
      if (shown !== null) process.stdout.write(`[${name}] ${shown}\n`);
    });
  }
}

async function main(): Promise<void> {
  const haproxyBin = findHaproxy();
  const dir = mkdtempSync(join(tmpdir(), 'spoe-authz-demo-'));
  const children: ChildProcess[] = [];
  let stub: PrefectStub | null = null;
  let stopping = false;

  const stopAll = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping HAProxy, the agent and the Prefect stub...\n');
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
            setTimeout(() => c.kill('SIGKILL'), 5_000).unref();
          }),
      ),
    );
    await stub?.close();
    rmSync(dir, { recursive: true, force: true });
    process.stdout.write('stopped.\n');
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  try {
    const [front, spop, metrics, peer] = [
      await port(Number(process.env.DEMO_PORT ?? 8080)),
      await port(),
      await port(),
      await port(),
    ];

    // 1. The stand-in Prefect API.
    stub = await startPrefectStub();

    // 2. The agent, as a user runs it: the CLI with a config file.
    const agentConfig = join(dir, 'agent.yaml');
    writeFileSync(
      agentConfig,
      [
        '# DEVELOPMENT ONLY: the dev issuer trusts tokens anyone can mint (npm run demo).',
        'devIssuer: true',
        `listen: ${HOST}:${spop}`,
        `metrics: { listen: "${HOST}:${metrics}" }`,
        'audit: all',
        '',
      ].join('\n'),
    );
    const agentLog = join(dir, 'agent.log');
    const agentLogStream = createWriteStream(agentLog);
    const agent = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--config', agentConfig],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(agent);
    agent.stdout.pipe(agentLogStream);
    const listening = new Promise<void>((resolve, reject) => {
      agent.once('exit', (code) => reject(new Error(`the agent exited (code ${code}); see ${agentLog}`)));
      pipeLines(agent, 'agent', (line) => {
        if (line.includes('"msg":"agent listening"')) resolve();
        // Show warnings and errors; the audit lines (one per decision) stay in the log file.
        const level = /"level":(\d+)/.exec(line)?.[1];
        if (level === undefined) return line;
        if (Number(level) < 40) return null;
        return (/"msg":"([^"]*)"/.exec(line)?.[1] ?? line).slice(0, 140);
      });
    });
    await listening;

    // 3. HAProxy with the shipped files, unchanged; addresses via the variables they document.
    copyFileSync(join(ROOT, 'haproxy/haproxy.cfg'), join(dir, 'haproxy.cfg'));
    copyFileSync(join(ROOT, 'haproxy/spoe-agent.conf'), join(dir, 'spoe-agent.conf'));
    const env = {
      ...process.env,
      PREFECT_BIND: `${HOST}:${front}`,
      PREFECT_BACKEND: stub.address,
      SPOE_CONFIG: join(dir, 'spoe-agent.conf'),
      SPOE_AGENT1: `${HOST}:${spop}`,
      PEER_ADDR: `${HOST}:${peer}`,
      ADMIN_SOCKET: join(dir, 'haproxy.sock'),
    };
    const cfg = join(dir, 'haproxy.cfg');
    try {
      execFileSync(haproxyBin, ['-c', '-q', '-f', cfg], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { stdout?: Buffer; stderr?: Buffer };
      throw new Error(`haproxy -c rejected the shipped config:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    const haproxy = spawn(haproxyBin, ['-db', '-f', cfg], {
      env,
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(haproxy);
    pipeLines(haproxy, 'haproxy', (line) => line);
    for (let i = 0; !(await accepting(front)); i++) {
      if (haproxy.exitCode !== null || i > 100) throw new Error('HAProxy did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const [c, name] of [
      [agent, 'the agent'],
      [haproxy, 'HAProxy'],
    ] as const) {
      c.once('exit', (code, signal) => {
        if (stopping) return;
        process.stderr.write(`demo: ${name} exited (code ${code}, signal ${signal})\n`);
        void stopAll(1);
      });
    }

    // 4. Tokens and commands.
    const roles = ['viewer', 'operator', 'worker', 'admin'] as const;
    const tokens = await Promise.all(
      roles.map((r) => mintDevToken({ sub: `${r}@demo`, roles: [r], ttlSeconds: 8 * 3600 })),
    );
    const url = `http://${HOST}:${front}`;
    const run = randomUUID();
    const block = randomUUID();
    const lines = [
      '',
      '== spoe-authz demo (DEVELOPMENT ONLY) =====================================================',
      `HAProxy ${url}  (shipped haproxy/haproxy.cfg + spoe-agent.conf, ${haproxyBin})`,
      `agent   SPOP ${HOST}:${spop}, ${`http://${HOST}:${metrics}`}/metrics /healthz /readyz, log ${agentLog}`,
      `Prefect stand-in ${stub.origin} (answers 200 and echoes the identity headers it received)`,
      'HAProxy prints one log line per request below: sub, role, reason, tag, rule.',
      '',
      '# Tokens from the built-in development issuer (valid 8 h):',
      ...roles.map((r, i) => `export ${r.toUpperCase()}=${tokens[i]}`),
      '',
      '# allow: a viewer lists flows; the stub echoes X-Forwarded-User and X-Prefect-Role set by HAProxy',
      `curl -s -X POST -H "Authorization: Bearer $VIEWER" ${url}/api/flows/filter -d '{}'`,
      '# deny 403 (WWW-Authenticate: ... insufficient_scope): a viewer cannot create a flow run',
      `curl -si -X POST -H "Authorization: Bearer $VIEWER" ${url}/api/deployments/${run}/create_flow_run`,
      '# allow: an operator can',
      `curl -s -X POST -H "Authorization: Bearer $OPERATOR" ${url}/api/deployments/${run}/create_flow_run`,
      '# allow: a worker polls its work pool',
      `curl -s -X POST -H "Authorization: Bearer $WORKER" ${url}/api/work_pools/default/get_scheduled_flow_runs -d '{}'`,
      '# allow only for admin: server settings (an operator gets 403)',
      `curl -s -H "Authorization: Bearer $ADMIN" ${url}/api/admin/settings`,
      `curl -s -H "Authorization: Bearer $OPERATOR" ${url}/api/admin/settings`,
      '# deny 401 (WWW-Authenticate: Bearer realm="prefect"): no token',
      `curl -si -X POST ${url}/api/flows/filter -d '{}'`,
      "# deny 401 invalid_token: a forged token (the admin's claims under the viewer's signature)",
      `curl -si -H "Authorization: Bearer $(echo $ADMIN | cut -d. -f1,2).$(echo $VIEWER | cut -d. -f3)" ${url}/api/admin/settings`,
      '# spoofed identity is dropped: the stub sees viewer@demo / viewer, not admin',
      `curl -s -H "Authorization: Bearer $VIEWER" -H "X-Forwarded-User: admin" -H "X-Prefect-Role: admin" ${url}/api/flows/x`,
      '# tags (see tag= in the HAProxy log line): health is anonymous (tag=health); a block read',
      '# with secrets is denied to a viewer (tag=secrets, 403)',
      `curl -s ${url}/api/health`,
      `curl -s -H "Authorization: Bearer $VIEWER" "${url}/api/block_documents/${block}?include_secrets=true"`,
      '# the decision trace for one request, without HAProxy:',
      `npx tsx src/cli.ts explain --config ${agentConfig} --method POST --path /api/deployments/${run}/create_flow_run --token "$VIEWER"`,
      '',
      'Stop: Ctrl-C (stops HAProxy, the agent and the stub).',
      '=============================================================================================',
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } catch (err) {
    process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
    await stopAll(1);
  }
}

await main();
