// What Prefect's own clients send, through the shipped HAProxy config and the real agent:
// - the Blocks page's POST /api/block_documents/filter, judged on its JSON body (HAProxy buffers
//   and sends the body for that route only);
// - websockets opened the way Prefect opens them: upgrade with subprotocol `prefect` and the
//   credential from PREFECT_CLIENT_CUSTOM_HEADERS, then the in-band auth message, answered by the
//   stub the way Prefect's server answers it.
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireHaproxy } from '../helpers/haproxy.js';
import { httpRequest } from '../helpers/http.js';
import { encodeFrame, FrameReader, nextFrame } from '../helpers/ws-frame.js';
import { devToken, type SentRequest, type Stack, send, startStack, uuid } from './stack.js';

const { describeHaproxy } = requireHaproxy();

const FILTER = '/api/block_documents/filter';
/** The Blocks page's request (ui-v2/src/api/block-documents: buildListFilterBlockDocumentsQuery). */
const BLOCKS_PAGE = JSON.stringify({ offset: 0, sort: 'BLOCK_TYPE_AND_NAME_ASC', include_secrets: false });

describeHaproxy('Prefect clients through the shipped HAProxy config and the agent', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ agent: { config: { devIssuer: true, audit: 'all' } } });
  });
  afterAll(() => stack?.stop());

  const atPrefect = (r: SentRequest) => stack.stub.withHeader('x-test-id', r.testId)[0];
  const denial = (r: SentRequest) => ({
    status: r.status,
    body: JSON.parse(r.body),
    reached: !!atPrefect(r),
  });

  describe('bodies', () => {
    it("a viewer's Blocks page lists block documents; Prefect gets the body untouched", async () => {
      const viewer = await devToken('bea-blocks', ['viewer']);
      const r = await send(stack.hap, 'POST', FILTER, { token: viewer, body: BLOCKS_PAGE });
      expect(r.status).toBe(200);
      expect(atPrefect(r)?.body).toBe(BLOCKS_PAGE);
      expect(atPrefect(r)?.headers['x-prefect-role']).toBe('viewer');
    });

    it('secrets asked for in the body are refused below developer and reach Prefect for a developer', async () => {
      const viewer = await devToken('sid-secrets', ['viewer']);
      const developer = await devToken('dev-secrets', ['developer']);
      for (const body of [
        '{"include_secrets":true}',
        '{"include_secrets":"yes","limit":1}',
        '{"include_secrets":1}',
      ]) {
        const r = await send(stack.hap, 'POST', FILTER, { token: viewer, body });
        expect(denial(r), body).toEqual({
          status: 403,
          body: { detail: 'forbidden', reason: 'forbidden' },
          reached: false,
        });
      }
      const allowed = await send(stack.hap, 'POST', FILTER, {
        token: developer,
        body: '{"include_secrets":true}',
      });
      expect(allowed.status).toBe(200);
      expect(atPrefect(allowed)?.body).toBe('{"include_secrets":true}');
    });

    it('a body that is not JSON, or over the bound, is refused with a reason that says so', async () => {
      const viewer = await devToken('ned-notjson', ['viewer']);
      const notJson = await send(stack.hap, 'POST', FILTER, { token: viewer, body: 'include_secrets=true' });
      expect(denial(notJson)).toEqual({
        status: 403,
        body: { detail: 'forbidden', reason: 'body_invalid' },
        reached: false,
      });
      // 20 KB: over the 8192 bytes HAProxy sends and the agent judges.
      const big = JSON.stringify({ block_documents: { name: { any_: ['x'.repeat(20_000)] } } });
      const tooLarge = await send(stack.hap, 'POST', FILTER, { token: viewer, body: big });
      expect(denial(tooLarge)).toEqual({
        status: 403,
        body: { detail: 'forbidden', reason: 'body_too_large' },
        reached: false,
      });
      // Just over the bound: HAProxy cuts it at 8192, the agent sees it is shorter than declared.
      const edge = `{"a":"${'x'.repeat(8192 - 8)}"}`;
      expect(edge.length).toBe(8192);
      const atBound = await send(stack.hap, 'POST', FILTER, { token: viewer, body: edge });
      expect(atBound.status).toBe(200);
      const over = await send(stack.hap, 'POST', FILTER, { token: viewer, body: `${edge} ` });
      expect(denial(over)).toEqual({
        status: 403,
        body: { detail: 'forbidden', reason: 'body_too_large' },
        reached: false,
      });
    });

    it('a chunked body is judged whole', async () => {
      const viewer = await devToken('chuck-chunked', ['viewer']);
      const testId = uuid();
      const res = await httpRequest(stack.hap.url(FILTER), {
        method: 'POST',
        headers: {
          authorization: `Bearer ${viewer}`,
          'content-type': 'application/json',
          'transfer-encoding': 'chunked',
          'x-test-id': testId,
        },
        body: BLOCKS_PAGE,
      });
      expect(res.status).toBe(200);
      expect(stack.stub.withHeader('x-test-id', testId)[0]?.body).toBe(BLOCKS_PAGE);
    });

    it('a path that reaches the route without matching HAProxy’s body ACL is refused, not guessed', async () => {
      const viewer = await devToken('pat-path', ['viewer']);
      const r = await send(stack.hap, 'POST', '/api//block_documents/filter', {
        token: viewer,
        body: BLOCKS_PAGE,
        rawPath: true,
      });
      expect(denial(r)).toEqual({
        status: 403,
        body: { detail: 'forbidden', reason: 'body_missing' },
        reached: false,
      });
    });

    it('other routes are not held back for their body', async () => {
      const viewer = await devToken('otto-other', ['viewer']);
      const r = await send(stack.hap, 'POST', '/api/flows/filter', { token: viewer, body: '{"limit":1}' });
      expect(r.status).toBe(200);
      expect(atPrefect(r)?.body).toBe('{"limit":1}');
    });
  });

  describe('websockets as Prefect opens them', () => {
    const cases = [
      ['/api/events/in', 'worker', 'viewer'],
      ['/api/events/out', 'worker', null],
      ['/api/events/out', 'viewer', null],
      ['/api/logs/out', 'viewer', 'worker'],
      ['/api/task_runs/subscriptions/scheduled', 'worker', 'viewer'],
      ['/api/work_pools/k8s-prod/workers/connect', 'worker', 'operator'],
    ] as const;

    it.each(cases)(
      '%s: %s with PREFECT_CLIENT_CUSTOM_HEADERS gets in; %s does not',
      async (path, allowed, denied) => {
        const token = await devToken(`ws-${allowed}`, [allowed]);
        const ws = await prefectSocket(path, { Authorization: `Bearer ${token}` });
        try {
          expect(ws.status).toBe(101);
          expect(ws.headers['sec-websocket-protocol']).toBe('prefect');
          const seen = stack.stub.withHeader('x-test-id', ws.testId)[0];
          expect(seen?.headers['x-forwarded-user']).toBe(`ws-${allowed}`);
          expect(seen?.headers['x-prefect-role']).toBe(allowed);
          // Prefect's first message: in-band auth (token: PREFECT_API_KEY or the auth string, none here).
          const reader = new FrameReader();
          ws.socket?.write(encodeFrame(JSON.stringify({ type: 'auth', token: null }), { mask: true }));
          const reply = await nextFrame(ws.socket as Socket, reader);
          expect(JSON.parse(reply.payload.toString())).toEqual({ type: 'auth_success' });
          const filter = JSON.stringify({
            type: 'filter',
            filter: { event: { prefix: ['prefect.flow-run.'] } },
          });
          ws.socket?.write(encodeFrame(filter, { mask: true }));
          expect((await nextFrame(ws.socket as Socket, reader)).payload.toString()).toBe(filter);
        } finally {
          ws.socket?.destroy();
        }
        if (denied !== null) {
          const other = await prefectSocket(path, {
            Authorization: `Bearer ${await devToken(`ws-${denied}`, [denied])}`,
          });
          other.socket?.destroy();
          expect(other.status).toBe(403);
          expect(stack.stub.withHeader('x-test-id', other.testId)).toEqual([]);
        }
      },
    );

    it.each(cases.filter((c, i) => cases.findIndex((d) => d[0] === c[0]) === i))(
      '%s: a stock client (credential only in its first message) gets 401 before Prefect',
      async (path) => {
        const ws = await prefectSocket(path, {});
        ws.socket?.destroy();
        expect(ws.status).toBe(401);
        expect(ws.headers['www-authenticate']).toBe('Bearer realm="prefect"');
        expect(stack.stub.withHeader('x-test-id', ws.testId)).toEqual([]);
      },
    );
  });

  /**
   * A handshake as Prefect's websocket_connect sends it: subprotocol `prefect`, its User-Agent,
   * and PREFECT_CLIENT_CUSTOM_HEADERS merged in.
   */
  function prefectSocket(
    path: string,
    custom: Record<string, string>,
  ): Promise<{ status: number; headers: Record<string, unknown>; socket: Socket | null; testId: string }> {
    const testId = uuid();
    const headers: Record<string, string> = {
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': Buffer.from(testId.slice(0, 16)).toString('base64'),
      'sec-websocket-protocol': 'prefect',
      'user-agent': 'prefect/3.8.3 (API 0.8.4)',
      'x-test-id': testId,
      ...custom,
    };
    return new Promise((resolve, reject) => {
      const req = request(stack.hap.url(path), { headers, agent: false });
      req.setTimeout(10_000, () => req.destroy(new Error(`upgrade ${path}: no answer`)));
      req.once('upgrade', (res, socket) =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, socket, testId }),
      );
      req.once('response', (res) => {
        res.resume();
        res.once('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, socket: null, testId }),
        );
      });
      req.once('error', reject);
      req.end();
    });
  }
});
