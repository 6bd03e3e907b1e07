// `haproxy -c` of the shipped haproxy/haproxy.cfg + haproxy/spoe-agent.conf, byte for byte, on
// every HAProxy line, in zero-warning mode (-dW: any warning fails the check): with only the
// defaults, and with every optional block switched on by its environment variable.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { currentHaproxy, requireHaproxy } from '../helpers/haproxy.js';

const { describeHaproxy } = requireHaproxy();
const KIT = join(import.meta.dirname, '../../haproxy');

function check(env: Record<string, string>): Promise<{ code: number; output: string }> {
  const bin = currentHaproxy()?.bin ?? 'haproxy';
  // Only what the shipped file reads: no variable of this process leaks into the check.
  const childEnv = { PATH: process.env.PATH ?? '', SPOE_CONFIG: join(KIT, 'spoe-agent.conf'), ...env };
  return new Promise((resolve) => {
    execFile(
      bin,
      ['-c', '-dW', '-f', join(KIT, 'haproxy.cfg')],
      { env: childEnv, timeout: 10_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}

describeHaproxy('the shipped HAProxy kit passes haproxy -c without a warning', () => {
  it.each([
    ['the defaults', {}],
    [
      'every optional block (second agent, admin socket, stats, unix agent socket)',
      {
        SPOE_AGENT1: 'unix@/run/spoe-authz/agent.sock',
        SPOE_AGENT2: '127.0.0.1:12346',
        ADMIN_SOCKET: '/tmp/haproxy-admin.sock',
        STATS_BIND: '127.0.0.1:8404',
        PEER_NAME: 'node1',
        PEER_ADDR: '127.0.0.1:10001',
        RATE_LIMIT_USER: '50',
        RATE_LIMIT_WORKER_POLL: '500',
      },
    ],
    [
      'agents found by DNS',
      { SPOE_AGENTS_DNS: 'spoe-authz.example:12345', SPOE_AGENTS_NAMESERVER: '127.0.0.1:53' },
    ],
  ])('with %s', async (_what, env) => {
    const r = await check(env);
    expect(r.output).not.toMatch(/\[(WARNING|ALERT)\]/);
    expect(r.code).toBe(0);
  });
});
