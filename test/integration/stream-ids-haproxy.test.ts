// How each HAProxy line numbers its NOTIFY frames (spop-reference 1.13): up to 3.0 the stream id
// is HAProxy's stream uniq_id (one per HTTP stream, shared by every connection) and the frame id
// counts events of that stream; 3.1+ opens an SPOP stream per event on a pooled connection, with
// odd ids 1, 3, 5, ... per connection and frame id 1. Either way the agent must not take the
// stream id for a transaction id (the contract sends `id=unique-id` for that).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SpopServer, VarScope } from '../../src/spop/index.js';
import { HAPROXY_GLOBALS, type HaproxyInstance, requireHaproxy, startHaproxy } from '../helpers/haproxy.js';
import { httpRequest } from '../helpers/http.js';

const { describeHaproxy } = requireHaproxy();

const SPOE_CONF = `[x]
spoe-agent x-agent
  messages check
  option var-prefix x
  timeout hello 2s
  timeout idle 30s
  timeout processing 2s
  use-backend agents
spoe-message check
  args path=path
  event on-frontend-http-request
`;

const HAPROXY_CFG = `${HAPROXY_GLOBALS}
frontend fe
  bind 127.0.0.1:{{port:fe}}
  filter spoe engine x config {{spoe}}
  http-request deny if !{ var(txn.x.allow) -m bool }
  http-request return status 200
backend agents
  mode tcp
  timeout connect 1s
  timeout server 30s
  server a1 127.0.0.1:{{port:agent}}
`;

interface Seen {
  conn: number;
  sid: bigint;
  fid: bigint;
}

describeHaproxy('stream and frame ids of NOTIFY frames', (v) => {
  const spopMux = v.major > 3 || (v.major === 3 && v.minor >= 1);
  const seen: Seen[] = [];
  let server: SpopServer;
  let hap: HaproxyInstance;

  beforeAll(async () => {
    server = new SpopServer({
      handler: (notify, ctx) => {
        seen.push({ conn: ctx.connectionId, sid: BigInt(notify.streamId), fid: BigInt(notify.frameId) });
        return [{ op: 'set', scope: VarScope.TXN, name: 'allow', value: true }];
      },
    });
    const port = (await server.listen(0, '127.0.0.1')).port;
    hap = await startHaproxy({ cfg: HAPROXY_CFG, spoeConf: SPOE_CONF, ports: { agent: port } });
  });
  afterAll(async () => {
    await hap?.stop();
    await server?.close({ deadlineMs: 1000 });
  });

  it(
    spopMux ? 'odd stream ids per connection, frame id 1 (3.1+)' : "HAProxy's stream ids (2.x)",
    async () => {
      // One request after the other: one event each, each on a new HTTP stream.
      for (let i = 0; i < 6; i++) expect((await httpRequest(hap.url(`/r${i}`))).status).toBe(200);
      expect(seen).toHaveLength(6);
      expect(seen.every((s) => s.fid === 1n)).toBe(true);
      const sids = seen.map((s) => s.sid);
      if (spopMux) {
        for (const conn of new Set(seen.map((s) => s.conn))) {
          const own = seen.filter((s) => s.conn === conn).map((s) => s.sid);
          expect(own).toEqual(own.map((_, i) => BigInt(2 * i + 1)));
        }
      } else {
        // uniq_id of each HTTP stream: growing with every stream HAProxy creates (the agent
        // connection's own stream takes one too), whatever the agent connection.
        for (let i = 1; i < sids.length; i++)
          expect(sids[i] as bigint).toBeGreaterThan(sids[i - 1] as bigint);
        expect(sids.some((s) => s % 2n === 0n)).toBe(true);
      }
    },
  );
});
