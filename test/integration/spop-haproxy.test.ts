// The SPOP server in this process behind the real HAProxy binary. HAProxy's own
// `http-request return ... lf-string "%[var(txn.x.*)]"` is the backend, so every response body
// shows what HAProxy read from the agent's ACK; `http-request deny` on txn.x.allow fails closed.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Action,
  DataType,
  type NotifyHandler,
  type NotifyMessage,
  type SpopEvent,
  SpopServer,
  VarScope,
} from '../../src/spop/index.js';
import { HAPROXY_GLOBALS, type HaproxyInstance, requireHaproxy, startHaproxy } from '../helpers/haproxy.js';
import { type HttpResponse, httpRequest } from '../helpers/http.js';
import { canConnect, freePort } from '../helpers/net.js';

const { describeHaproxy } = requireHaproxy();

// Two SPOE engines on one agent backend: `x` with a generous `timeout processing` (500 concurrent
// requests queue inside HAProxy), `t` with a short one for the slow-handler test. Both use the
// var prefix `x`; `set-on-error err` exposes HAProxy's error code (2.6: 1 = timeout).
const SPOE_CONF = ['x', 't']
  .map(
    (engine) => `[${engine}]
spoe-agent ${engine}-agent
  messages check-${engine}
  option var-prefix x
  option set-on-error err
  timeout hello 2s
  timeout idle 30s
  timeout processing ${engine === 'x' ? '5s' : '300ms'}
  use-backend agents
  log global
spoe-message check-${engine}
  args method=method path=path query=query host=req.hdr(host) id=unique-id src=src n=url_param(n)
  event on-frontend-http-request
`,
  )
  .join('');

// One `name=value` per line: what HAProxy holds in each var, plus converters that only work on
// the right sample type (add() on ints, ipmask() on addresses, length on strings, hex on binary).
const BODY = [
  'allow=%[var(txn.x.allow)]',
  'n=%[var(txn.x.n)]',
  'ni1=%[var(txn.x.ni),add(1)]',
  'neg=%[var(txn.x.neg)]',
  'neg1=%[var(txn.x.neg),add(1)]',
  'big=%[var(txn.x.big)]',
  'big1=%[var(txn.x.big),add(1)]',
  's=%[var(txn.x.s)]',
  'slen=%[var(txn.x.s),length]',
  'ip4=%[var(txn.x.ip4)]',
  'ip4m=%[var(txn.x.ip4),ipmask(24)]',
  'ip6=%[var(txn.x.ip6)]',
  'ip6m=%[var(txn.x.ip6),ipmask(24,32)]',
  'bin=%[var(txn.x.bin),hex]',
  'uid=%[unique-id]',
]
  .map((l) => `${l}\\n`)
  .join('');

const frontend = (name: string, engine: string): string => `
frontend ${name}
  bind 127.0.0.1:{{port:${name}}}
  unique-id-format %{+X}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid
  filter spoe engine ${engine} config {{spoe}}
  http-request deny deny_status 403 content-type text/plain lf-string "denied err=%[var(txn.x.err)]\\n" if !{ var(txn.x.allow) -m bool }
  http-request return status 200 content-type text/plain lf-string "${BODY}"
`;

const HAPROXY_CFG = `${HAPROXY_GLOBALS}${frontend('fe', 'x')}${frontend('fe_t', 't')}
backend agents
  mode tcp
  timeout connect 1s
  timeout server 30s
  server a1 127.0.0.1:{{port:agent}}
`;

/** `k=v` lines of a response body as a record. */
function fields(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of body.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

const set = (name: string, value: Extract<Action, { op: 'set' }>['value']): Action => ({
  op: 'set',
  scope: VarScope.TXN,
  name,
  value,
});

/** What the handler saw of one NOTIFY (copied out of the lazy views). */
interface Seen {
  message: string;
  args: Record<string, { type: number; value: unknown }>;
  connectionId: number;
}

function snapshot(m: NotifyMessage, connectionId: number): Seen {
  const args: Seen['args'] = {};
  for (const a of m) args[a.name] = { type: a.type, value: a.value };
  return { message: m.name, args, connectionId };
}

/**
 * The agent's behaviour, chosen by request path:
 * - `/types`: one var of every type; `?deny=1` sets allow=false.
 * - `/echo?n=N`: after a small delay that depends on N, sets n (string) and ni (int) to N.
 * - `/slow?n=N`: waits `slowMs`, then answers like /echo.
 * - `/gate?n=N`: waits until the test opens the gate, then answers like /echo.
 * - anything else: allow=true. Every NOTIFY is recorded in `seen`.
 */
class Behaviour {
  seen: Seen[] = [];
  slowMs = 1000;
  slowDone: Promise<void> = Promise.resolve();
  private openGate: () => void = () => {};
  gate: Promise<void> = Promise.resolve();
  gated = 0;
  // Pipelining evidence: NOTIFYs outstanding per connection and ACKs that overtook earlier ones.
  private readonly pending = new Map<number, Set<number>>();
  private seq = 0;
  maxInFlight = 0;
  overtakes = 0;

  closeGate(): void {
    this.gated = 0;
    this.gate = new Promise((resolve) => {
      this.openGate = resolve;
    });
  }

  releaseGate(): void {
    this.openGate();
  }

  readonly handler: NotifyHandler = async (notify, ctx) => {
    const m = notify.messages[0];
    if (!m) return [];
    this.seen.push(snapshot(m, ctx.connectionId));
    const path = m.getString('path') ?? '';
    const n = m.getString('n') ?? '';
    const echo = [set('allow', true), set('n', n), set('ni', Number(n))];
    switch (path) {
      case '/types': {
        const deny = (m.getString('query') ?? '').includes('deny=1');
        return [
          set('allow', !deny),
          set('neg', -5),
          set('big', 2 ** 40 + 7),
          set('s', 'hello spop'),
          set('ip4', { type: DataType.IPV4, value: '192.0.2.7' }),
          set('ip6', {
            type: DataType.IPV6,
            value: new Uint8Array([0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1]),
          }),
          set('bin', new Uint8Array([0xde, 0xad, 0x00, 0xbe, 0xef])),
        ];
      }
      case '/echo':
        return this.tracked(ctx.connectionId, Number(n), echo);
      case '/slow': {
        let done: () => void = () => {};
        this.slowDone = new Promise((resolve) => {
          done = resolve;
        });
        await sleep(this.slowMs);
        setImmediate(done); // after the connection wrote the (late) ACK
        return echo;
      }
      case '/nothing':
        return []; // sent as the no-op UNSET-VAR
      case '/gate':
        this.gated++;
        await this.gate;
        return echo;
      default:
        return [set('allow', true)];
    }
  };

  private async tracked(conn: number, n: number, actions: Action[]): Promise<Action[]> {
    const id = this.seq++;
    const open = this.pending.get(conn) ?? new Set<number>();
    this.pending.set(conn, open);
    open.add(id);
    this.maxInFlight = Math.max(this.maxInFlight, open.size);
    // 0-18 ms, so that later NOTIFYs on a connection are often answered before earlier ones.
    await sleep((n * 7) % 19);
    open.delete(id);
    for (const other of open) if (other < id) this.overtakes++;
    return actions;
  }
}

async function startAgent(
  b: Behaviour,
  events: SpopEvent[] = [],
  port = 0,
): Promise<{ server: SpopServer; port: number }> {
  const server = new SpopServer({
    handler: b.handler,
    handlerTimeoutMs: 5000,
    onEvent: (e) => events.push(e),
  });
  const addr = await server.listen(port, '127.0.0.1');
  return { server, port: addr.port };
}

describeHaproxy('SPOP server behind real HAProxy', () => {
  describe('one agent, one HAProxy', () => {
    const b = new Behaviour();
    const events: SpopEvent[] = [];
    let server: SpopServer;
    let hap: HaproxyInstance;

    beforeAll(async () => {
      const agent = await startAgent(b, events);
      server = agent.server;
      hap = await startHaproxy({ cfg: HAPROXY_CFG, spoeConf: SPOE_CONF, ports: { agent: agent.port } });
    });
    afterAll(async () => {
      await hap?.stop();
      await server?.close({ deadlineMs: 1000 });
    });

    it('HAProxy reads bool, int (negative, > 2^32), string, ipv4, ipv6 and binary vars', async () => {
      const r = await httpRequest(hap.url('/types'));
      expect(r.status).toBe(200);
      const f = fields(r.body);
      expect(f).toMatchObject({
        allow: '1',
        neg: '-5',
        neg1: '-4',
        big: '1099511627783',
        big1: '1099511627784',
        s: 'hello spop',
        slen: '10',
        ip4: '192.0.2.7',
        ip4m: '192.0.2.0',
        ip6: '2001:db8::1',
        ip6m: '2001:db8::',
        bin: 'DEAD00BEEF',
        n: '',
      });
    });

    it('the deny ACL on the bool var works both ways', async () => {
      expect((await httpRequest(hap.url('/types?deny=0'))).status).toBe(200);
      const denied = await httpRequest(hap.url('/types?deny=1'));
      expect(denied.status).toBe(403);
      // No SPOE error: the 403 comes from allow=false, not from a failed exchange.
      expect(denied.body).toBe('denied err=\n');
    });

    it('an answer with nothing to say (the no-op UNSET-VAR) completes the exchange without an error', async () => {
      const r = await httpRequest(hap.url('/nothing'));
      // No allow var, so the ACL denies; no SPOE error code: HAProxy took the ACK as it is.
      expect([r.status, r.body]).toEqual([403, 'denied err=\n']);
    });

    it('the handler sees the args HAProxy sends for a real request', async () => {
      b.seen = [];
      const r = await httpRequest(hap.url('/args/p?a=1&b=two%20x'), {
        method: 'PUT',
        headers: { host: 'example.test:8443' },
        body: 'ignored',
      });
      expect(r.status).toBe(200);
      expect(b.seen).toHaveLength(1);
      const seen = b.seen[0]!;
      expect(seen.message).toBe('check-x');
      expect(seen.args).toEqual({
        method: { type: DataType.STRING, value: 'PUT' },
        path: { type: DataType.STRING, value: '/args/p' },
        query: { type: DataType.STRING, value: 'a=1&b=two%20x' },
        host: { type: DataType.STRING, value: 'example.test:8443' },
        id: { type: DataType.STRING, value: fields(r.body).uid },
        src: { type: DataType.IPV4, value: '127.0.0.1' },
        n: { type: DataType.NULL, value: null },
      });
      expect(fields(r.body).uid).toMatch(/^7F000001:/);
    });

    it('500 concurrent requests over pipelined connections each get their own answer', async () => {
      const helloCount = () => events.filter((e) => e.type === 'hello' && !e.healthcheck).length;
      const hellosBefore = helloCount();
      const ns = Array.from({ length: 500 }, (_, i) => 1000 + i);
      const responses = await Promise.all(
        ns.map((n) => httpRequest(hap.url(`/echo?n=${n}`), { timeoutMs: 20_000 })),
      );
      const wrong = responses
        .map((r, i) => ({ n: ns[i], status: r.status, f: fields(r.body) }))
        .filter(({ n, status, f }) => status !== 200 || f.n !== String(n) || f.ni1 !== String(n! + 1));
      expect(wrong).toEqual([]);
      // It really was pipelined and answered out of order on shared connections.
      expect(b.maxInFlight).toBeGreaterThan(1);
      expect(b.overtakes).toBeGreaterThan(0);
      const hello = events.find((e) => e.type === 'hello' && !e.healthcheck);
      expect(hello).toMatchObject({ pipelining: true });
      expect(helloCount() - hellosBefore).toBeLessThan(500);
    });

    it('a handler slower than `timeout processing` leaves the request without vars; the agent stays healthy', async () => {
      const since = hap.logs().length;
      const statsBefore = { ...server.stats, disconnectsByStatus: { ...server.stats.disconnectsByStatus } };
      const slow = await httpRequest(hap.url('/slow?n=7', 'fe_t'));
      expect(slow.status).toBe(403);
      expect(slow.body).toBe('denied err=1\n'); // SPOE error 1: processing timeout
      await hap.waitForLog(/SPOE: \[t-agent\] .* st=1 /, 5000, since);

      await b.slowDone; // the late ACK has been written
      const fast = await httpRequest(hap.url('/echo?n=8', 'fe_t'));
      expect(fast.status).toBe(200);
      expect(fields(fast.body).n).toBe('8');
      // The agent neither failed the handler nor dropped a connection over it.
      expect(server.stats.handlerErrors).toBe(statsBefore.handlerErrors);
      expect(server.stats.disconnectsByStatus).toEqual(statsBefore.disconnectsByStatus);
      expect(server.stats.connections).toBeGreaterThan(0);
      expect(hap.running()).toBe(true);
    });
  });

  describe('option spop-check', () => {
    const events: SpopEvent[] = [];
    let hap: HaproxyInstance;
    let server: SpopServer | undefined;
    let agentPort: number;

    beforeAll(async () => {
      agentPort = await freePort();
      hap = await startHaproxy({
        cfg: `${HAPROXY_GLOBALS}
frontend fe
  bind 127.0.0.1:{{port:fe}}
  http-request return status 200
backend chk
  mode tcp
  timeout connect 1s
  timeout server 30s
  option spop-check
  server a1 127.0.0.1:{{port:agent}} check inter 100ms rise 1 fall 1
`,
        ports: { agent: agentPort },
      });
    });
    afterAll(async () => {
      await hap?.stop();
      await server?.close({ deadlineMs: 1000 });
    });

    const state = async () => {
      const row = (await hap.showStat()).find((r) => r.pxname === 'chk' && r.svname === 'a1');
      return { status: row?.status, check: row?.check_status };
    };

    it('reports the agent DOWN while nothing listens, UP once it answers, DOWN again after close', async () => {
      await hap.waitForLog(/Server chk\/a1 is DOWN/);
      expect((await state()).status).toBe('DOWN');

      let since = hap.logs().length;
      const agent = await startAgent(new Behaviour(), events, agentPort);
      server = agent.server;
      await hap.waitForLog(/Server chk\/a1 is UP, reason: Layer7 check passed/, 5000, since);
      expect(await state()).toEqual({ status: 'UP', check: 'L7OK' });
      expect(events.some((e) => e.type === 'hello' && e.healthcheck)).toBe(true);

      since = hap.logs().length;
      await server.close({ deadlineMs: 1000 });
      await hap.waitForLog(/Server chk\/a1 is DOWN/, 5000, since);
      expect((await state()).status).toBe('DOWN');
    });
  });

  describe('agent restarted under traffic', () => {
    let hap: HaproxyInstance;
    const servers: SpopServer[] = [];

    afterAll(async () => {
      await hap?.stop();
      await Promise.all(servers.map((s) => s.close({ deadlineMs: 1000 })));
    });

    it('fails closed while the agent is away and recovers once it listens again', async () => {
      const b = new Behaviour();
      const first = await startAgent(b);
      servers.push(first.server);
      const port = first.port;
      hap = await startHaproxy({ cfg: HAPROXY_CFG, spoeConf: SPOE_CONF, ports: { agent: port } });

      type Phase = 'up' | 'closing' | 'gap' | 'back';
      let phase: Phase = 'up';
      let stop = false;
      let n = 0;
      const results: { n: number; r: HttpResponse; start: Phase; end: Phase }[] = [];
      const count = (pred: (x: (typeof results)[number]) => boolean) => results.filter(pred).length;
      const until = async (what: string, cond: () => boolean) => {
        const deadline = Date.now() + 10_000;
        while (!cond()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
          await sleep(10);
        }
      };
      const worker = async () => {
        while (!stop) {
          const i = n++;
          const start = phase;
          // fe_t: 300 ms `timeout processing`, so requests during the gap end quickly.
          const r = await httpRequest(hap.url(`/echo?n=${i}`, 'fe_t')).catch(
            (err: Error): HttpResponse => ({ status: -1, headers: {}, body: err.message }),
          );
          results.push({ n: i, r, start, end: phase });
          await sleep(5);
        }
      };
      const workers = Array.from({ length: 6 }, worker);

      await until('traffic through the first agent', () => count((x) => x.r.status === 200) >= 20);
      phase = 'closing';
      await first.server.close({ deadlineMs: 2000 });
      phase = 'gap';
      await until(
        'requests while no agent listens',
        () => count((x) => x.start === 'gap' && x.end === 'gap') >= 10,
      );
      const second = await startAgent(b, [], port);
      servers.push(second.server);
      phase = 'back';
      await until(
        'traffic through the restarted agent',
        () => count((x) => x.start === 'back' && x.r.status === 200) >= 20,
      );
      stop = true;
      await Promise.all(workers);

      // A 200 always carries the request's own value; nothing is allowed without the agent.
      const bad = results.filter((x) => x.r.status === 200 && fields(x.r.body).n !== String(x.n));
      expect(bad).toEqual([]);
      const gap = results.filter((x) => x.start === 'gap' && x.end === 'gap');
      expect(gap.map((x) => x.r.status)).toEqual(gap.map(() => 403));
      expect(results.filter((x) => x.r.status !== 200 && x.r.status !== 403)).toEqual([]);
      expect(hap.running()).toBe(true);
    });
  });

  describe('graceful close', () => {
    let hap: HaproxyInstance;
    let server: SpopServer;
    afterEach(async () => {
      await hap?.stop();
      await server?.close({ deadlineMs: 1000 });
    });

    it('answers in-flight NOTIFYs before AGENT-DISCONNECT, and accepts no new connection', async () => {
      const b = new Behaviour();
      const events: SpopEvent[] = [];
      const agent = await startAgent(b, events);
      server = agent.server;
      hap = await startHaproxy({ cfg: HAPROXY_CFG, spoeConf: SPOE_CONF, ports: { agent: agent.port } });

      b.closeGate();
      const inFlight = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => httpRequest(hap.url(`/gate?n=${n}`)));
      const deadline = Date.now() + 10_000;
      while (b.gated < 8 && Date.now() < deadline) await sleep(10);
      expect(b.gated).toBe(8);

      let closed = false;
      const closing = server.close({ deadlineMs: 5000 }).then(() => {
        closed = true;
      });
      await sleep(50);
      expect(closed).toBe(false); // still waiting for the handlers
      expect(await canConnect(agent.port)).toBe(false);
      // Idle connections may already be told to go; those carrying a pending NOTIFY may not.
      const busy = new Set(b.seen.map((s) => s.connectionId));
      const early = events.filter((e) => e.type === 'disconnect' && busy.has(e.connectionId));
      expect(early).toEqual([]);

      b.releaseGate();
      const responses = await Promise.all(inFlight);
      await closing;
      expect(responses.map((r) => [r.status, fields(r.body).n])).toEqual(
        [1, 2, 3, 4, 5, 6, 7, 8].map((n) => [200, String(n)]),
      );
      const sent = events.filter((e) => e.type === 'disconnect' && e.direction === 'sent');
      expect(sent.length).toBeGreaterThan(0);
      expect(sent.every((e) => e.type === 'disconnect' && e.status === 0)).toBe(true);
      expect(server.stats.handlerErrors).toBe(0);
    });
  });
});
