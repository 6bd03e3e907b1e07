// removeStaleSocket against real unix sockets: a file left by a SIGKILLed process is removed,
// a live listener, a regular file and a missing path are left alone.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeStaleSocket, SocketPathInUse } from '../src/stale-socket.js';

/** A socket file whose process is gone: a child listens on `path`, then is SIGKILLed. */
async function leaveStaleSocket(path: string): Promise<void> {
  const child = spawn(
    process.execPath,
    ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`listener exited ${code}`)));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('removeStaleSocket', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stale-socket-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('removes a socket file whose process was killed, so listen() succeeds again', async () => {
    const path = join(dir, 'agent.sock');
    await leaveStaleSocket(path);
    expect(existsSync(path)).toBe(true);
    const blocked = createServer();
    await expect(
      new Promise((resolve, reject) => blocked.once('error', reject).listen(path, () => resolve(null))),
    ).rejects.toMatchObject({ code: 'EADDRINUSE' });

    expect(await removeStaleSocket(path)).toBe(true);
    expect(existsSync(path)).toBe(false);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path, resolve));
    await new Promise((resolve) => server.close(resolve));
  });

  it('refuses, and keeps the file, when another process listens on it', async () => {
    const path = join(dir, 'live.sock');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const err = await removeStaleSocket(path).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SocketPathInUse);
      expect(err).toMatchObject({ code: 'socket_path_in_use', path });
      expect((err as Error).message).toBe(
        `cannot listen on unix:${path}: another process is listening on it`,
      );
      expect(existsSync(path)).toBe(true);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('never removes a path that is not a socket', async () => {
    const path = join(dir, 'agent.sock');
    await writeFile(path, 'not a socket');
    await expect(removeStaleSocket(path)).rejects.toThrow(/exists and is not a socket/);
    expect(existsSync(path)).toBe(true);
  });

  it('has nothing to do when the path does not exist', async () => {
    expect(await removeStaleSocket(join(dir, 'none.sock'))).toBe(false);
  });
});
