// HAProxy's own connections get a slot although silent connections fill every one of them
// (spop.limitPolicy evict-idle, the default): the SPOP server in this process behind the real
// HAProxy binary, with `maxConnections` small and a HELLO deadline too long to help.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type SpopEvent, SpopServer, VarScope } from '../../src/spop/index.js';
import { HAPROXY_GLOBALS, type HaproxyInstance, requireHaproxy, startHaproxy } from '../helpers/haproxy.js';
import { httpRequest } from '../helpers/http.js';

const { describeHaproxy } = requireHaproxy();

const SPOE_CONF = `[x]
spoe-agent x-agent
  messages check
  option var-prefix x
  option set-on-error err
  timeout hello 2s
  timeout idle 30s
  timeout processing 2s
  use-backend agents
  log global
spoe-message check
  args path=path
  event on-frontend-http-request
`;

const HAPROXY_CFG = `${HAPROXY_GLOBALS}
frontend fe
  bind 127.0.0.1:{{port:fe}}
  filter spoe engine x config {{spoe}}
  http-request deny deny_status 403 content-type text/plain lf-string "denied err=%[var(txn.x.err)]\\n" if !{ var(txn.x.allow) -m bool }
  http-request return status 200 content-type text/plain string "ok\\n"
backend agents
  mode tcp
  timeout connect 1s
  timeout server 30s
  server a1 127.0.0.1:{{port:agent}}
`;

// More slots than HAProxy's own connections: 2.x pipelines the 10 concurrent requests on one or
// two, 3.1+ may open one per request in flight (10), which with fewer slots would have to evict
// HAProxy's idle ones.
const MAX = 16;

describeHaproxy('connection slots behind real HAProxy', () => {
  let server: SpopServer;
  let hap: HaproxyInstance;
  let port: number;
  const events: SpopEvent[] = [];
  const silent: Socket[] = [];

  /** A connection that never says anything; resolves once the agent has accepted it. */
  const openSilent = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1' });
      silent.push(s);
      s.on('data', () => {});
      s.once('error', reject);
      s.once('connect', () => resolve());
    });

  beforeAll(async () => {
    server = new SpopServer({
      handler: () => [{ op: 'set', scope: VarScope.TXN, name: 'allow', value: true }],
      maxConnections: MAX,
      helloTimeoutMs: 60_000,
      onEvent: (e) => events.push(e),
    });
    port = (await server.listen(0, '127.0.0.1')).port;
    hap = await startHaproxy({ cfg: HAPROXY_CFG, spoeConf: SPOE_CONF, ports: { agent: port } });
  });
  afterAll(async () => {
    for (const s of silent) s.destroy();
    await hap?.stop();
    await server?.close({ deadlineMs: 1000 });
  });

  it('serves HAProxy while silent connections hold every slot, before and after it connected', async () => {
    for (let i = 0; i < MAX; i++) await openSilent();
    await expect.poll(() => server.stats.connections).toBe(MAX);

    // HAProxy's connections arrive at the limit: each evicts the oldest silent one.
    const first = await Promise.all(Array.from({ length: 10 }, () => httpRequest(hap.url('/a'))));
    expect(first.map((r) => r.status)).toEqual(first.map(() => 200));

    // A second flood while HAProxy holds connections past their handshake: silent ones evict
    // each other, never HAProxy's.
    for (let i = 0; i < 3 * MAX; i++) await openSilent();
    const second = await Promise.all(Array.from({ length: 10 }, () => httpRequest(hap.url('/b'))));
    expect(second.map((r) => r.status)).toEqual(second.map(() => 200));

    const evicted = events.filter((e) => e.type === 'connection-evicted');
    expect(evicted.length).toBeGreaterThan(0);
    expect(evicted.every((e) => e.type === 'connection-evicted' && e.handshaking)).toBe(true);
    expect(events.some((e) => e.type === 'connection-rejected')).toBe(false);
    expect(hap.running()).toBe(true);
  });
});
