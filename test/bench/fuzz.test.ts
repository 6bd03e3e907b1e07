/**
 * `npm run fuzz` (bench/fuzz.ts) for a few seconds: against the real agent it spawns, no
 * violation; against agents that break a promise on purpose, the violation is reported with
 * its bytes and the exit code is 1.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type NotifyHandler, SpopServer, VarScope } from '../../src/spop/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function fuzz(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', 'tsx', 'bench/fuzz.ts', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    c.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    c.stderr.on('data', (b: Buffer) => {
      out += b.toString();
    });
    c.once('error', reject);
    c.once('exit', (code) => resolve({ code, out }));
  });
}

/**
 * Runs the fuzzer against an in-process agent answering with `handler`. The tests run
 * concurrently, so each closes its own agent (an afterEach would close the others' too).
 */
async function fuzzBroken(
  handler: NotifyHandler,
  args: string[],
): Promise<{ code: number | null; out: string }> {
  const s = new SpopServer({ handler, handlerTimeoutMs: 60_000, helloTimeoutMs: 300, frameTimeoutMs: 300 });
  try {
    const a = await s.listen(0, '127.0.0.1');
    return await fuzz([...args, '--target', `127.0.0.1:${a.port}`]);
  } finally {
    await s.close({ deadlineMs: 200 });
  }
}

describe('npm run fuzz', () => {
  it.concurrent('finds no violation in the real agent over a few seconds, and says how many frames it sent', async () => {
    const { code, out } = await fuzz(['--duration', '3', '--connections', '8', '--seed', '7']);
    expect(out).toMatch(/spawned: pid \d+/);
    expect(out).not.toContain('VIOLATION');
    expect(out).toMatch(/violations: 0$/m);
    const sent = Number(/frames sent: ([\d,]+)/.exec(out)?.[1]?.replaceAll(',', ''));
    expect(sent).toBeGreaterThan(0);
    expect(code).toBe(0);
  }, 60_000);

  it.concurrent('reports an agent that allows without a valid token, with the bytes, and exits 1', async () => {
    const { code, out } = await fuzzBroken(
      () => [{ op: 'set', scope: VarScope.TXN, name: 'allow', value: true }],
      ['--duration', '3', '--connections', '8', '--seed', '11'],
    );
    expect(out).toMatch(
      /VIOLATION allow-without-token .*allows a NOTIFY without a valid token\n {2}sent: [0-9a-f]{20}/,
    );
    expect(code).toBe(1);
  }, 60_000);

  it.concurrent('reports an agent that never answers as a hang', async () => {
    const { code, out } = await fuzzBroken(
      () => new Promise(() => {}),
      ['--duration', '1', '--connections', '4', '--deadline-ms', '300'],
    );
    expect(out).toMatch(/VIOLATION hang .*nothing settled within 300 ms/);
    expect(code).toBe(1);
  }, 60_000);
});
