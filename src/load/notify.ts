/**
 * NOTIFY frames as HAProxy sends them for haproxy/spoe-agent.conf:
 *   spoe-message authorize
 *     args method=method path=path query=query host=req.hdr(host)
 *          authorization=req.hdr(authorization) cookie=req.cook(prefect_token) src=src
 *          id=unique-id prefect_ui=req.hdr(x-prefect-ui)
 * A failed fetch (no query string, no cookie, no X-Prefect-UI header) is sent as NULL
 * (reference §1.5). Everything constant is encoded once; per request only the header, the
 * token's arg (pre-encoded per token) and the unique-id's counter are written.
 */
import { DataType, encodeVarint, FrameType, type FrameWriter } from '../spop/index.js';

export const AUTHORIZE_MESSAGE = 'authorize';

export interface Route {
  readonly method: string;
  readonly path: string;
  /** Query string without `?`; null when the request has none. */
  readonly query: string | null;
}

const RUN = '5f8a8c61-1b9e-4a2b-9c3e-0d2f4a6b8c10';
const TASK = 'c0ffee00-7d1e-4c2b-8e3f-1a2b3c4d5e6f';
const DEPLOYMENT = '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d';

/**
 * What Prefect workers and flow-run processes call most (poll, report state, log, read their
 * run and deployment). A token with role `worker` is allowed on every one of them by the
 * built-in Prefect policy, so a valid token always yields allow=true.
 */
export const PREFECT_ROUTES: readonly Route[] = [
  { method: 'POST', path: '/api/work_pools/default-pool/get_scheduled_flow_runs', query: null },
  { method: 'GET', path: `/api/flow_runs/${RUN}`, query: null },
  { method: 'POST', path: `/api/task_runs/${TASK}/set_state`, query: null },
  { method: 'POST', path: '/api/logs', query: null },
  { method: 'POST', path: '/api/flow_runs/filter', query: null },
  { method: 'GET', path: `/api/deployments/${DEPLOYMENT}`, query: 'include_secrets=false' },
  { method: 'POST', path: `/api/flow_runs/${RUN}/set_state`, query: null },
  { method: 'POST', path: '/api/work_pools/default-pool/workers/heartbeat', query: null },
];

export const HOST_HEADER = 'prefect.internal:4200';

function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([encodeVarint(b.length), b]);
}

function stringArg(name: string, value: string): Buffer {
  return Buffer.concat([str(name), Buffer.from([DataType.STRING]), str(value)]);
}

function nullArg(name: string): Buffer {
  return Buffer.concat([str(name), Buffer.from([DataType.NULL])]);
}

function ipv4Arg(name: string, ip: readonly [number, number, number, number]): Buffer {
  return Buffer.concat([str(name), Buffer.from([DataType.IPV4, ...ip])]);
}

/** Message name, NB-ARGS, then method, path, query, host of one route. */
function routeChunk(route: Route): Buffer {
  return Buffer.concat([
    str(AUTHORIZE_MESSAGE),
    Buffer.from([9]),
    stringArg('method', route.method),
    stringArg('path', route.path),
    route.query === null ? nullArg('query') : stringArg('query', route.query),
    stringArg('host', HOST_HEADER),
  ]);
}

/** The `authorization` arg for a token: `Bearer <token>`. */
export function authorizationArg(token: string): Buffer {
  return stringArg('authorization', `Bearer ${token}`);
}

const HEX = Buffer.from('0123456789ABCDEF', 'latin1');
const ID_COUNTER_DIGITS = 8;
const PREFECT_UI_NULL = nullArg('prefect_ui');

/**
 * Writes NOTIFY frames into a {@link FrameWriter}. One per connection: the client address
 * (`src`) and the unique-id prefix are per connection, like HAProxy's for one client.
 */
export class NotifyEncoder {
  private readonly routes: readonly Buffer[];
  /** cookie=NULL, src=<ipv4>, then `id` up to the counter digits. */
  private readonly middle: Buffer;
  private readonly digits: Buffer;

  constructor(connectionIndex: number, routes: readonly Route[] = PREFECT_ROUTES) {
    if (routes.length === 0) throw new TypeError('at least one route is needed');
    this.routes = routes.map(routeChunk);
    const c = connectionIndex;
    const src = [10, 20 + ((c >> 16) & 0xff), (c >> 8) & 0xff, c & 0xff || 1] as const;
    // unique-id-format %{+X}o %ci:%cp_%fi:%fp_%Ts_%rt:%pid (haproxy.cfg), %rt being the counter.
    const srcHex = src.map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join('');
    const prefix = `${srcHex}:${(40_000 + (c % 20_000)).toString(16).toUpperCase()}_7F000001:1F90_${Math.floor(
      Date.now() / 1000,
    )
      .toString(16)
      .toUpperCase()}_`;
    const idLen = prefix.length + ID_COUNTER_DIGITS;
    this.middle = Buffer.concat([
      nullArg('cookie'),
      ipv4Arg('src', src),
      str('id'),
      Buffer.from([DataType.STRING]),
      encodeVarint(idLen),
      Buffer.from(prefix, 'latin1'),
    ]);
    this.digits = Buffer.alloc(ID_COUNTER_DIGITS);
  }

  get routeCount(): number {
    return this.routes.length;
  }

  /** Appends one whole NOTIFY frame (length prefix included); returns its body length. */
  write(
    w: FrameWriter,
    streamId: number,
    frameId: number,
    route: number,
    authorization: Buffer,
    seq: number,
  ): number {
    w.begin(FrameType.NOTIFY, streamId, frameId);
    w.bytes(this.routes[route % this.routes.length]!);
    w.bytes(authorization);
    w.bytes(this.middle);
    const d = this.digits;
    let v = seq >>> 0;
    for (let i = ID_COUNTER_DIGITS - 1; i >= 0; i--) {
      d[i] = HEX[v & 0xf]!;
      v >>>= 4;
    }
    w.bytes(d);
    w.bytes(PREFECT_UI_NULL);
    return w.finish();
  }
}
