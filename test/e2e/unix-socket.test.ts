// The agent on a unix socket behind the shipped HAProxy config (SPOE_AGENT1=unix@<path>): the
// deployment README.md recommends when HAProxy and the agent share a host. The SPOP health
// check marks the server UP, decisions come back over the socket, a second agent cannot take
// the socket over, an agent killed with SIGKILL restarts on it (its stale socket file is
// removed), and a stopped agent fails closed (503), as over TCP.
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../helpers/agent-process.js';
import { requireHaproxy } from '../helpers/haproxy.js';
import { devToken, type Stack, send, startStack } from './stack.js';

const { describeHaproxy } = requireHaproxy();

describeHaproxy('the agent on a unix socket behind the shipped HAProxy config', () => {
  let stack: Stack;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spoe-authz-unix-'));
    stack = await startStack({
      agent: {
        config: { devIssuer: true, spop: { socketMode: '0660' } },
        spopUnixPath: join(dir, 'agent.sock'),
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const sockPath = () => join(dir, 'agent.sock');

  /** Resolves once process `pid` is gone. */
  async function waitExit(pid: number): Promise<void> {
    for (;;) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await sleep(20);
    }
  }

  async function agentStatus(): Promise<string | undefined> {
    const rows = await stack.hap.showStat();
    return rows.find((r) => r.pxname === 'spoe-agents' && r.svname === 'agent1')?.status;
  }

  it('HAProxy checks the agent over the socket and gets its decisions', async () => {
    expect(stack.agent.spopAddress).toBe(`unix@${sockPath()}`);
    expect(statSync(sockPath()).mode & 0o777).toBe(0o660); // spop.socketMode
    // `rise 2` checks (250 ms apart while DOWN): UP soon after the agent listens.
    for (let i = 0; i < 50 && (await agentStatus()) !== 'UP'; i++) await sleep(100);
    expect(await agentStatus()).toBe('UP');

    const viewer = await devToken('uma-unix', ['viewer']);
    const ok = await send(stack.hap, 'GET', '/api/flows/abc', { token: viewer });
    expect(ok.status).toBe(200);
    expect(stack.stub.withHeader('x-test-id', ok.testId)[0]?.headers['x-forwarded-user']).toBe('uma-unix');

    const none = await send(stack.hap, 'GET', '/api/flows/abc');
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body)).toEqual({ detail: 'unauthorized', reason: 'missing_token' });
  });

  it('a second agent on the same socket exits 1 and leaves the first one serving', async () => {
    const second = await runCli([
      'serve',
      '--config',
      stack.agent.configPath,
      '--listen',
      `unix:${sockPath()}`,
      '--metrics-listen',
      'off',
    ]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(
      `cannot listen on unix:${sockPath()}: another process is listening on it`,
    );
    const viewer = await devToken('uma-unix', ['viewer']);
    expect((await send(stack.hap, 'GET', '/api/flows/abc', { token: viewer })).status).toBe(200);
  });

  it('killed with SIGKILL, the agent restarts on its socket (the stale file is removed)', async () => {
    const { agent } = stack;
    const exited = waitExit(agent.pid());
    agent.signal('SIGKILL');
    await exited;
    expect(existsSync(sockPath())).toBe(true); // nobody closed the server: the file stays
    const since = agent.mark();
    await agent.start();
    await agent.waitForLog(/^removed a stale unix socket/, { since });
    for (let i = 0; i < 50 && (await agentStatus()) !== 'UP'; i++) await sleep(100);
    const viewer = await devToken('uma-unix', ['viewer']);
    expect((await send(stack.hap, 'GET', '/api/flows/abc', { token: viewer })).status).toBe(200);
  });

  it('with the agent stopped, requests fail closed with 503', async () => {
    await stack.agent.stop();
    const viewer = await devToken('uma-unix', ['viewer']);
    const r = await send(stack.hap, 'GET', '/api/flows/abc', { token: viewer });
    expect(r.status).toBe(503);
    expect(stack.stub.withHeader('x-test-id', r.testId)).toEqual([]);
  });
});
