/**
 * The SPOE contract end to end inside one process: real NOTIFY bytes (the HAProxy 2.6
 * capture and frames built like it) → the real engine with the development issuer and real
 * ES256 signatures → the ACK's SET-VAR actions, encoded and decoded again.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { canonicalPath, createAuthorizeHandler } from '../../src/agent/handler.js';
import { FAIL_CLOSED_ACTIONS } from '../../src/agent/vars.js';
import { AuthzEngine, devIssuerConfig, mintDevToken, normalizePath } from '../../src/auth/index.js';
import {
  DataType,
  decodeFrame,
  encodeFrame,
  FrameType,
  FrameWriter,
  type HandlerResult,
  type NamedValue,
  type Notify,
  VarScope,
} from '../../src/spop/index.js';

const FIXTURES = new URL('../fixtures/spop/haproxy-2.6/', import.meta.url);
const silent = pino({ level: 'silent' });
const ctx = { connectionId: 1, logger: silent };

function notifyFrom(args: readonly NamedValue[], name = 'authorize'): Notify {
  const frame = encodeFrame({ type: FrameType.NOTIFY, streamId: 3, frameId: 1, messages: [{ name, args }] });
  const decoded = decodeFrame(frame, 4);
  if (decoded.type !== FrameType.NOTIFY || !('notify' in decoded)) throw new Error('not a NOTIFY');
  return decoded.notify;
}

function str(name: string, value: string): NamedValue {
  return { name, value };
}

/** The actions as HAProxy would read them back from the ACK bytes. */
function varsOf(actions: HandlerResult): Record<string, unknown> {
  const writer = new FrameWriter();
  writer.ack(3, 1, actions);
  const ack = decodeFrame(writer.take() as Buffer, 4);
  if (ack.type !== FrameType.ACK || !('actions' in ack)) throw new Error('not an ACK');
  const out: Record<string, unknown> = {};
  for (const a of ack.actions) {
    expect(a.scope).toBe(VarScope.TXN);
    if (a.op === 'set') out[a.name] = a.value.value;
  }
  return out;
}

async function setup(audit: 'all' | 'deny' | 'off' = 'off') {
  const engine = AuthzEngine.create({
    issuers: [devIssuerConfig()],
    forwardClaims: [{ name: 'email', claim: 'email' }],
  });
  await engine.start();
  const lines: unknown[] = [];
  const auditLogger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
  const decisions: string[] = [];
  const handler = createAuthorizeHandler({
    engine,
    audit,
    auditLogger,
    onDecision: (d) => decisions.push(d.reason),
  });
  return { engine, handler, lines, decisions };
}

describe('authorize handler', () => {
  it('allows a viewer to list flows and sets every decision var with its HAProxy type', async () => {
    const { handler, engine } = await setup();
    const token = await mintDevToken({ sub: 'alice', roles: ['viewer'], claims: { email: 'a@example.com' } });
    const notify = notifyFrom([
      str('method', 'POST'),
      str('path', '/api/flows/filter'),
      { name: 'query', value: null },
      str('host', 'prefect.example.com'),
      str('authorization', `Bearer ${token}`),
      { name: 'cookie', value: null },
      { name: 'src', value: { type: DataType.IPV4, value: '192.0.2.10' } },
      str('id', 'req-1'),
    ]);
    const vars = varsOf(await handler(notify, ctx));
    expect(vars).toEqual({
      allow: true,
      status: 200,
      reason: 'ok',
      sub: 'alice',
      iss: 'urn:spoe-authz:dev',
      role: 'viewer',
      rule: expect.stringContaining('prefect.viewer'),
      tag: 'safe-retry',
      cache: 'miss',
      claim_email: 'a@example.com',
    });
    // The same token again is a cache hit, answered synchronously.
    const again = handler(notify, ctx);
    expect(again).not.toBeInstanceOf(Promise);
    expect(varsOf(again as HandlerResult).cache).toBe('hit');
    engine.close();
  });

  it('denies a viewer creating a flow run with 403 forbidden', async () => {
    const { handler, engine } = await setup();
    const token = await mintDevToken({ sub: 'bob', roles: ['viewer'] });
    const vars = varsOf(
      await handler(
        notifyFrom([
          str('path', '/api/deployments/6f1c5e2a-0000-4000-8000-000000000001/create_flow_run'),
          str('authorization', `Bearer ${token}`),
          str('method', 'POST'), // args in any order
        ]),
        ctx,
      ),
    );
    expect(vars).toMatchObject({ allow: false, status: 403, reason: 'forbidden', sub: 'bob' });
    engine.close();
  });

  it.each([
    // raw path as HAProxy sends it -> what the allow carries in `path` (undefined: no var)
    ['/api/flows/filter', undefined],
    ['/api/admin/../flows/filter', '/api/flows/filter'],
    ['/api//flows///filter', '/api/flows/filter'],
    ['/api/./flows/filter', '/api/flows/filter'],
    ['/api/fl%6Fws/filter', '/api/flows/filter'],
    ['/api/flows/%7euser/../filter', '/api/flows/filter'],
    ['/api/.well-known/../flows/filter', '/api/flows/filter'],
  ])('an allow of %s carries the normalised path %s when it differs', async (raw, expected) => {
    const { handler, engine } = await setup();
    const token = await mintDevToken({ sub: 'pat', roles: ['viewer'] });
    const notify = notifyFrom([
      str('method', 'POST'),
      str('path', raw),
      str('authorization', `Bearer ${token}`),
    ]);
    const first = varsOf(await handler(notify, ctx));
    expect(first).toMatchObject({ allow: true, cache: 'miss' });
    expect(first.path).toBe(expected);
    // A remembered decision (cache hit, ACK encoded once) still carries it for this raw path.
    const again = varsOf((await handler(notify, ctx)) as HandlerResult);
    expect(again).toMatchObject({ allow: true, cache: 'hit' });
    expect(again.path).toBe(expected);
    engine.close();
  });

  it('a deny never carries a path, canonical or not', async () => {
    const { handler, engine } = await setup();
    const token = await mintDevToken({ sub: 'pia', roles: ['viewer'] });
    for (const raw of ['/api/admin/settings', '/api/flows/../admin/settings', '/api/flows/%2e%2e/admin']) {
      const vars = varsOf(
        await handler(
          notifyFrom([str('method', 'POST'), str('path', raw), str('authorization', `Bearer ${token}`)]),
          ctx,
        ),
      );
      expect(vars.allow).toBe(false);
      expect(vars).not.toHaveProperty('path');
    }
    engine.close();
  });

  it('canonicalPath is normalizePath wherever the result differs, for any path', () => {
    const segment = fc.constantFrom(
      'api',
      'flows',
      '.',
      '..',
      '',
      '%2e',
      '%6F',
      '%2F',
      '%7e',
      'a%20b',
      '%zz',
      '\\',
      '.well-known',
    );
    const path = fc.array(segment, { maxLength: 8 }).map((s) => `/${s.join('/')}`);
    fc.assert(
      fc.property(fc.oneof(path, fc.string()), (raw) => {
        const n = normalizePath(raw);
        expect(canonicalPath(raw)).toBe(typeof n === 'string' && n !== raw ? n : null);
      }),
      { numRuns: 2_000 },
    );
  });

  it('reads the token from the cookie arg and IPv6 src, ignoring unknown args', async () => {
    const engine2 = AuthzEngine.create({ issuers: [devIssuerConfig()], tokens: { cookie: 'prefect_token' } });
    await engine2.start();
    const h2 = createAuthorizeHandler({ engine: engine2, audit: 'off', auditLogger: silent });
    const token = await mintDevToken({ sub: 'carol', roles: ['viewer'] });
    const vars = varsOf(
      await h2(
        notifyFrom([
          str('method', 'GET'),
          str('path', '/api/flows/6f1c5e2a-0000-4000-8000-000000000001'),
          str('cookie', token),
          { name: 'src', value: { type: DataType.IPV6, value: '::1' } },
          str('something_else', 'ignored'),
        ]),
        ctx,
      ),
    );
    expect(vars).toMatchObject({ allow: true, sub: 'carol' });
    engine2.close();
  });

  it.each([
    ['no method', [str('path', '/api/flows/filter')]],
    ['no path', [str('method', 'GET')]],
    ['path of the wrong type', [str('method', 'GET'), { name: 'path', value: 7 }]],
  ] as const)('denies %s with bad_request', async (_what, args) => {
    const { handler, engine } = await setup();
    const vars = varsOf(await handler(notifyFrom(args), ctx));
    expect(vars).toEqual({ allow: false, status: 403, reason: 'bad_request' });
    engine.close();
  });

  it('answers a NOTIFY without the authorize message with no decision (HAProxy fails closed)', async () => {
    const { handler, engine } = await setup();
    expect(await handler(notifyFrom([str('method', 'GET')], 'something-else'), ctx)).toEqual([]);
    engine.close();
  });

  it('decides the real HAProxy 2.6 capture: bad signature is a 401 deny', async () => {
    const { handler, engine } = await setup();
    // The fixture's token claims iss https://idp.example.com/ with a fake RS256 signature.
    const hex = readFileSync(new URL('notify-create-flow-run.hex', FIXTURES), 'utf8').trim();
    const decoded = decodeFrame(Buffer.from(hex, 'hex'));
    if (decoded.type !== FrameType.NOTIFY || !('notify' in decoded)) throw new Error('not a NOTIFY');
    const vars = varsOf(await handler(decoded.notify, ctx));
    expect(vars).toMatchObject({ allow: false, status: 401, reason: 'unknown_issuer' });
    engine.close();
  });

  it('audits per the switch and never logs the token', async () => {
    const token = await mintDevToken({ sub: 'dave', roles: ['viewer'] });
    const allowed = notifyFrom([
      str('method', 'POST'),
      str('path', '/api/flows/filter'),
      str('authorization', `Bearer ${token}`),
      str('id', 'uid-7'),
    ]);
    const denied = notifyFrom([str('method', 'POST'), str('path', '/api/flows/filter')]);
    for (const [mode, expected] of [
      ['all', 2],
      ['deny', 1],
      ['off', 0],
    ] as const) {
      const { handler, lines, engine } = await setup(mode);
      await handler(allowed, ctx);
      await handler(denied, ctx);
      expect(lines).toHaveLength(expected);
      expect(JSON.stringify(lines)).not.toContain(token.split('.')[2]);
      if (mode === 'all') {
        expect(lines[0]).toMatchObject({ audit: true, id: 'uid-7', sub: 'dave', allow: true, reason: 'ok' });
        expect(lines[1]).toMatchObject({ allow: false, reason: 'missing_token', status: 401 });
      }
      engine.close();
    }
  });

  it('fail-closed ACK denies with 503', () => {
    expect(varsOf([...FAIL_CLOSED_ACTIONS])).toEqual({ allow: false, status: 503 });
  });
});
