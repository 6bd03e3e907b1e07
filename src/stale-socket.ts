/**
 * A unix socket file outlives a process that did not close its server: SIGKILL, the OOM killer,
 * a crash. `listen()` on that path then fails with EADDRINUSE, and an agent restarted by systemd
 * or a container runtime would fail the same way on every attempt: HAProxy would answer 503 to
 * everything until someone removed the file. Before listening on a unix path, the agent removes
 * such a file, and only such a file: a socket nobody accepts connections on (ECONNREFUSED).
 */
import { lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { AgentError } from './errors.js';

/** Code `socket_path_in_use`: another process serves the path, or it is not a socket. */
export class SocketPathInUse extends AgentError {
  readonly path: string;
  constructor(path: string, why: string) {
    super('socket_path_in_use', `cannot listen on unix:${path}: ${why}`);
    this.path = path;
  }
}

/** What connecting to the socket at `path` says: someone accepts, nobody does, or something else. */
function probe(path: string): Promise<'accepting' | 'refused' | 'gone' | 'other'> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve('accepting');
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      resolve(err.code === 'ECONNREFUSED' ? 'refused' : err.code === 'ENOENT' ? 'gone' : 'other');
    });
  });
}

/**
 * Removes the socket file at `path` when no process accepts connections on it. Resolves with
 * whether it removed one. Throws {@link SocketPathInUse} when another process listens there or
 * the path is not a socket (a file is never removed). Anything else (EACCES on the path or on
 * connecting) is left for listen() to report.
 */
export async function removeStaleSocket(path: string): Promise<boolean> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch {
    return false; // missing (the usual case), or not ours to look at: listen() reports it
  }
  if (!isSocket) throw new SocketPathInUse(path, 'the path exists and is not a socket');
  const state = await probe(path);
  if (state === 'accepting') throw new SocketPathInUse(path, 'another process is listening on it');
  if (state !== 'refused') return false;
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
