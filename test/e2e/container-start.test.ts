/**
 * The container image as it ships: the Dockerfile's runtime ENV and CMD, read from the file so
 * they cannot drift, run as the same command line (no Docker engine here: `node dist/cli.js` is
 * `node --import tsx src/cli.ts`, which the build compiles one to one). With nothing configured
 * it listens on all interfaces, so it must refuse the development issuer and say what to set.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/agent-process.js';
import { freePort } from '../helpers/net.js';

/** ENV and CMD of the Dockerfile's last stage (the image that runs). */
function dockerfileRuntime(): { env: Record<string, string>; cmd: string[] } {
  const text = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stages = text.split(/^FROM /m);
  const last = stages[stages.length - 1] ?? '';
  const env: Record<string, string> = {};
  let cmd: string[] = [];
  for (const line of last.split('\n')) {
    const m = /^(ENV|CMD)\s+(.*)$/.exec(line.trim());
    if (m?.[1] === 'ENV') {
      for (const pair of m[2]!.trim().split(/\s+/)) {
        const i = pair.indexOf('=');
        if (i > 0) env[pair.slice(0, i)] = pair.slice(i + 1);
      }
    } else if (m?.[1] === 'CMD') {
      cmd = JSON.parse(m[2]!) as string[];
    }
  }
  return { env, cmd };
}

/** The image's CMD arguments after `node [V8 heap flags] dist/cli.js`. */
function cliArgs(cmd: string[]): string[] {
  const script = cmd.indexOf('dist/cli.js');
  expect(cmd[0]).toBe('node');
  expect(cmd.slice(1, script)).toEqual(['--heap-growing-percent=25', '--max-semi-space-size=8']);
  return cmd.slice(script + 1);
}

describe('the container image with nothing configured', () => {
  it('the Dockerfile runs serve on all interfaces (what the tests below assume)', () => {
    const { env, cmd } = dockerfileRuntime();
    expect(env.AUTHZ_LISTEN).toMatch(/^0\.0\.0\.0:\d+$/);
    expect(cliArgs(cmd)).toEqual(['serve']);
  });

  it('exits 2 with one line that says what to set', async () => {
    const { env, cmd } = dockerfileRuntime();
    const r = await runCli(cliArgs(cmd), { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^config error \(no config file, no AUTHZ_ISSUER\): issuers: none configured, and the agent listens on 0\.0\.0\.0:\d+ \(not loopback\), .*set AUTHZ_ISSUER and AUTHZ_AUDIENCE, or AUTHZ_CONFIG [^\n]*\n$/,
    );
    expect(r.stdout).not.toMatch(/agent listening/);
  });

  it('with AUTHZ_DEV_ISSUER=true it serves, and its log says why that is dangerous', async () => {
    const { env, cmd } = dockerfileRuntime();
    const port = await freePort();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'src/cli.ts'), ...cliArgs(cmd)],
      {
        cwd: REPO_ROOT,
        env: {
          PATH: process.env.PATH,
          ...env,
          AUTHZ_LISTEN: `0.0.0.0:${port}`,
          AUTHZ_METRICS_LISTEN: 'off',
          AUTHZ_DEV_ISSUER: 'true',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "agent listening" within 20 s:\n${out}`)), 20_000);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('"msg":"agent listening"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', () => reject(new Error(`agent exited:\n${out}`)));
    });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const danger = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .find((r) => r.msg.startsWith('DANGER'));
    expect(danger?.level).toBe(40);
    expect(danger?.msg).toMatch(
      /not loopback.*private key is in the public repository.*mint a token with any role/,
    );
  });
});

describe('the quick start (nothing configured, the default loopback address)', () => {
  it('mints a development token, because the agent would trust it there', async () => {
    const r = await runCli(['token', '--sub', 'alice', '--roles', 'viewer']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ey[\w-]+\.[\w-]+\.[\w-]+\n$/);
  });
});
