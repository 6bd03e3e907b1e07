/**
 * The `vars` setting through real HAProxy: two agents (in this process, on loopback) behind one
 * HAProxy with the shipped spoe-agent.conf, one answering every var, one `vars: [allow, status,
 * reason]`. HAProxy echoes what it holds: the unselected vars are absent there (`-m found`
 * false), and allow and deny still work.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mintDevToken } from '../../src/auth/index.js';
import { parseAgentConfig } from '../../src/config/load.js';
import { type Runtime, startRuntime } from '../../src/runtime.js';
import { REPO_ROOT } from '../helpers/agent-process.js';
import { HAPROXY_GLOBALS, type HaproxyInstance, requireHaproxy, startHaproxy } from '../helpers/haproxy.js';
import { httpRequest } from '../helpers/http.js';

const { describeHaproxy } = requireHaproxy();

const SHIPPED_SPOE = readFileSync(join(REPO_ROOT, 'haproxy/spoe-agent.conf'), 'utf8');
/** The shipped file twice: scope [auth] to the full agent, scope [lean] to the reduced one. */
const SPOE_CONF = `${SHIPPED_SPOE}\n${SHIPPED_SPOE.replace('[auth]', '[lean]').replace(
  'use-backend spoe-agents',
  'use-backend lean-agents',
)}`;

const ECHOED = ['allow', 'status', 'reason', 'sub', 'iss', 'role', 'rule', 'cache', 'claim_email'];
/** `name=value` per var, `name=-` when HAProxy does not have it. */
const ECHO = ECHOED.map((n) => `${n}=%[var(txn.auth.${n},-)]`).join(' ');

const frontend = (name: string, engine: string) => `
frontend ${name}
  bind 127.0.0.1:{{port:${name}}}
  filter spoe engine ${engine} config {{spoe}}
  http-request deny deny_status 503 unless { var(txn.auth.allow) -m found }
  http-request deny deny_status 403 content-type text/plain lf-string "${ECHO}" unless { var(txn.auth.allow) -m bool }
  http-request return status 200 content-type text/plain lf-string "${ECHO}"
`;

const HAPROXY_CFG = `${HAPROXY_GLOBALS}${frontend('full', 'auth')}${frontend('lean', 'lean')}
backend spoe-agents
  mode tcp
  timeout connect 1s
  timeout server 30s
  server a1 127.0.0.1:{{port:full_agent}}
backend lean-agents
  mode tcp
  timeout connect 1s
  timeout server 30s
  server a1 127.0.0.1:{{port:lean_agent}}
`;

function agentConfig(vars?: string[]) {
  return parseAgentConfig({
    listen: '127.0.0.1:0',
    metrics: { listen: null },
    devIssuer: true,
    forwardClaims: [{ name: 'email', claim: 'email' }],
    ...(vars === undefined ? {} : { vars }),
  });
}

const portOf = (r: Runtime) => Number(r.address.slice(r.address.lastIndexOf(':') + 1));

function fields(body: string): Record<string, string> {
  return Object.fromEntries(
    body
      .trim()
      .split(' ')
      .map((kv) => kv.split('=', 2) as [string, string]),
  );
}

let full: Runtime;
let lean: Runtime;
beforeAll(async () => {
  const silent = pino({ level: 'silent' });
  full = await startRuntime(agentConfig(), silent);
  lean = await startRuntime(agentConfig(['allow', 'status', 'reason']), silent);
});
afterAll(async () => {
  await Promise.all([full?.close(0), lean?.close(0)]);
});

describeHaproxy('the vars setting through HAProxy', () => {
  let hap: HaproxyInstance;
  beforeAll(async () => {
    hap = await startHaproxy({
      cfg: HAPROXY_CFG,
      spoeConf: SPOE_CONF,
      ports: { full_agent: portOf(full), lean_agent: portOf(lean) },
    });
  });
  afterAll(() => hap?.stop());

  const get = (fe: string, token?: string) =>
    httpRequest(hap.url('/api/flows/abc', fe), {
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });

  it('every var by default; only allow, status and reason with the reduced selection', async () => {
    const token = await mintDevToken({ sub: 'vera', roles: ['viewer'], claims: { email: 'v@example.com' } });
    for (let i = 0; i < 2; i++) {
      // The second time a cache hit: its ACK is the compiled one.
      const f = await get('full', token);
      expect(f.status).toBe(200);
      expect(fields(f.body)).toMatchObject({
        allow: '1',
        status: '200',
        reason: 'ok',
        sub: 'vera',
        iss: 'urn:spoe-authz:dev',
        role: 'viewer',
        cache: i === 0 ? 'miss' : 'hit',
        claim_email: 'v@example.com',
      });
      expect(fields(f.body).rule).not.toBe('-');

      const l = await get('lean', token);
      expect(l.status).toBe(200);
      expect(fields(l.body)).toEqual({
        allow: '1',
        status: '200',
        reason: 'ok',
        sub: '-',
        iss: '-',
        role: '-',
        rule: '-',
        cache: '-',
        claim_email: '-',
      });
    }
  });

  it('denies as before: no token is allow=false, status 401, with nothing else but the reason', async () => {
    const l = await get('lean');
    expect(l.status).toBe(403);
    expect(fields(l.body)).toEqual({
      allow: '0',
      status: '401',
      reason: 'missing_token',
      sub: '-',
      iss: '-',
      role: '-',
      rule: '-',
      cache: '-',
      claim_email: '-',
    });
    const f = await get('full');
    expect(f.status).toBe(403);
    expect(fields(f.body)).toMatchObject({ allow: '0', status: '401', reason: 'missing_token' });
  });
});
