/**
 * The `vars` setting in the running agent: a real runtime on loopback, real SPOP frames and a
 * real ES256 token. A reload that changes `vars` changes the next ACK, even for a remembered
 * decision whose ACK the previous selection had already compiled.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintDevToken } from '../../src/auth/index.js';
import { parseAgentConfig } from '../../src/config/load.js';
import { type Runtime, startRuntime } from '../../src/runtime.js';
import { FrameType } from '../../src/spop/index.js';
import { SpopTestClient } from '../helpers/spop-client.js';

const config = (vars?: string[]) =>
  parseAgentConfig({
    listen: '127.0.0.1:0',
    metrics: { listen: null },
    devIssuer: true,
    forwardClaims: [{ name: 'email', claim: 'email' }],
    ...(vars === undefined ? {} : { vars }),
  });

describe('vars on reload', () => {
  let runtime: Runtime;
  let client: SpopTestClient;
  let token: string;
  let frame = 0;

  /** One authorize NOTIFY; the names of the ACK's SET-VARs. */
  async function varNames(path = '/api/flows/filter'): Promise<string[]> {
    frame++;
    client.sendNotify(1, frame, 'authorize', [
      { name: 'method', value: 'POST' },
      { name: 'path', value: path },
      { name: 'authorization', value: `Bearer ${token}` },
    ]);
    const ack = await client.next();
    if (ack.type !== FrameType.ACK || !('actions' in ack))
      throw new Error(`expected an ACK, got ${ack.type}`);
    expect(ack.actions.find((a) => a.name === 'allow')).toMatchObject({ op: 'set', value: { value: true } });
    return ack.actions.map((a) => a.name);
  }

  beforeAll(async () => {
    runtime = await startRuntime(config(), pino({ level: 'silent' }));
    token = await mintDevToken({ sub: 'alice', roles: ['viewer'], claims: { email: 'a@example.com' } });
    const port = Number(runtime.address.slice(runtime.address.lastIndexOf(':') + 1));
    client = await SpopTestClient.connect(port);
    await client.hello({ capabilities: 'pipelining' });
  });
  afterAll(async () => {
    client?.destroy();
    await runtime?.close(0);
  });

  it('answers every var by default, then only the selection after a reload, then every var again', async () => {
    const all = ['allow', 'status', 'reason', 'sub', 'iss', 'role', 'tag', 'rule', 'cache', 'claim_email'];
    const miss = await varNames();
    expect(miss).toEqual(all);
    const hit = await varNames(); // remembered: its ACK is compiled now
    expect(hit).toEqual(miss);

    await runtime.reload(config(['allow', 'status', 'claims']));
    expect(await varNames()).toEqual(['allow', 'status', 'claim_email']);
    expect(await varNames()).toEqual(['allow', 'status', 'claim_email']);
    // Not selected, so a non-canonical path is judged but not returned.
    expect(await varNames('/api//flows/filter')).toEqual(['allow', 'status', 'claim_email']);

    await runtime.reload(config());
    expect(await varNames()).toEqual(hit);
    expect(await varNames('/api//flows/filter')).toEqual([...hit, 'path']);
  });
});
