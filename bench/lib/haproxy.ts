/** Runs HAProxy in the foreground on a generated config, for one benchmark row. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitForPort } from './net.js';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export interface RunningHaproxy {
  readonly pid: number;
  readonly cfgPath: string;
  output(): string;
  stop(): Promise<void>;
}

/** `haproxy -c`: rejects with HAProxy's own message when the config is wrong. */
export function checkConfig(bin: string, cfgPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(bin, ['-c', '-f', cfgPath], (err, stdout, stderr) => {
      if (err) reject(new Error(`haproxy -c ${cfgPath} failed:\n${stdout}${stderr}`));
      else resolve();
    });
  });
}

export async function startHaproxy(
  bin: string,
  dir: string,
  name: string,
  cfg: string,
  port: number,
): Promise<RunningHaproxy> {
  const cfgPath = join(dir, `${name}.cfg`);
  await writeFile(cfgPath, cfg);
  await checkConfig(bin, cfgPath);
  // -db: foreground, no daemon; the pid is HAProxy's own (its threads are in its /proc/<pid>/stat).
  const child: ChildProcess = spawn(bin, ['-db', '-f', cfgPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      resolve();
    });
  });
  live.add(child);
  await waitForPort(port, () => (exited ? new Error(`haproxy exited:\n${out}`) : undefined));
  return {
    pid: child.pid!,
    cfgPath,
    output: () => out,
    async stop() {
      if (exited) return;
      child.kill('SIGUSR1'); // soft stop
      const t = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exit;
      clearTimeout(t);
    },
  };
}
