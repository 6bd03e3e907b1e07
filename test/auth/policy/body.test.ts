// Body-aware decisions: POST /api/block_documents/filter, whose body can ask for secrets. The
// viewer's Blocks page works; secrets never leak; a body the agent cannot judge is refused with a
// reason that says why.
import { beforeAll, describe, expect, it } from 'vitest';
import type { AuthzEngine, AuthzRequest, PolicyConfigInput } from '../../../src/auth/index.js';
import { isFalseJson, parseJsonBody } from '../../../src/auth/policy/body.js';
import { TEST_ISS, testEngine } from '../helpers/engine.js';
import { makeKey, NOW_MS, sign, type TestKey } from '../helpers/keys.js';
import { request } from '../helpers/request.js';

const FILTER = '/api/block_documents/filter';
let key: TestKey;
const tokens = new Map<string, string>();

beforeAll(async () => {
  key = await makeKey('ES256', 'k');
  for (const role of ['viewer', 'operator', 'worker', 'developer', 'admin']) {
    tokens.set(
      role,
      await sign(key, { iss: TEST_ISS, aud: 'prefect', sub: role, claims: { roles: [role] } }),
    );
  }
});

function engine(policy: PolicyConfigInput = {}): AuthzEngine {
  return testEngine(key, () => NOW_MS, { policy });
}

function withBody(role: string, body: string | Uint8Array | null, bodySize?: number | null): AuthzRequest {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  return {
    ...request('POST', FILTER, { token: tokens.get(role) ?? null }),
    body: bytes,
    bodySize: bodySize === undefined ? (bytes?.length ?? null) : bodySize,
  };
}

describe('parseJsonBody', () => {
  it('reads a whole JSON object within the bound', () => {
    expect(parseJsonBody(Buffer.from('{"include_secrets":false}'), 25, 100)).toEqual({
      include_secrets: false,
    });
    expect(parseJsonBody(Buffer.from('\ufeff{}'), null, 100)).toEqual({});
  });

  it.each([
    ['no body sent', null, null, 'body_missing'],
    ['above the bound', Buffer.from(`{"a":"${'x'.repeat(100)}"}`), null, 'body_too_large'],
    ['cut by HAProxy (shorter than declared)', Buffer.from('{"a":1'), 400, 'body_too_large'],
    ['longer than declared', Buffer.from('{}'), 1, 'body_too_large'],
    ['not JSON', Buffer.from('include_secrets=true'), null, 'body_invalid'],
    ['empty', Buffer.alloc(0), 0, 'body_invalid'],
    ['an array', Buffer.from('[{"include_secrets":true}]'), null, 'body_invalid'],
    ['a string', Buffer.from('"x"'), null, 'body_invalid'],
    ['null', Buffer.from('null'), null, 'body_invalid'],
    ['NaN (Python reads it, JSON does not)', Buffer.from('{"limit":NaN}'), null, 'body_invalid'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), null, 'body_invalid'],
  ] as const)('%s -> %s', (_what, body, declared, reason) => {
    expect(parseJsonBody(body, declared, 64)).toBe(reason);
  });

  it('reads false the way Prefect (pydantic) does, and nothing else', () => {
    for (const v of [false, 0, 'false', 'False', 'FALSE', '0', 'off', 'f', 'n', 'no', 'No']) {
      expect(isFalseJson(v), String(v)).toBe(true);
    }
    for (const v of [true, 1, 'true', 'yes', 'on', ' false', '', null, {}, [], 2]) {
      expect(isFalseJson(v), JSON.stringify(v)).toBe(false);
    }
  });
});

describe('POST /api/block_documents/filter through the preset', () => {
  let e: AuthzEngine;
  beforeAll(() => {
    e = engine();
  });

  it.each([
    ['{}', 'ok'],
    ['{"limit":10,"offset":0,"block_documents":{"is_anonymous":{"eq_":false}}}', 'ok'],
    ['{"include_secrets":false}', 'ok'],
    ['{"include_secrets":"off"}', 'ok'],
    ['{"include_secrets":true}', 'forbidden'],
    ['{"include_secrets":1}', 'forbidden'],
    ['{"include_secrets":"yes"}', 'forbidden'],
    ['{"include_secrets":null}', 'forbidden'],
    ['{"include_secrets":false,"include_secrets":true}', 'forbidden'],
    ['{"include\\u005fsecrets":true}', 'forbidden'],
    ['include_secrets=true', 'body_invalid'],
    ['[]', 'body_invalid'],
  ] as const)('viewer %s -> %s', async (body, reason) => {
    const d = await e.decide(withBody('viewer', body));
    expect(d.reason).toBe(reason);
    expect(d.status).toBe(reason === 'ok' ? 200 : 403);
    if (reason === 'forbidden')
      expect(d).toMatchObject({ rule: 'prefect.deny.body-secrets', tag: 'secrets' });
  });

  it('refuses a body it was not sent, or only part of', async () => {
    expect((await e.decide(withBody('viewer', null))).reason).toBe('body_missing');
    expect((await e.decide(withBody('viewer', '{"limit":1', 5000))).reason).toBe('body_too_large');
    const big = JSON.stringify({ block_documents: { name: { any_: ['x'.repeat(9000)] } } });
    expect((await e.decide(withBody('viewer', big))).reason).toBe('body_too_large');
  });

  it('honours a larger bound when configured', async () => {
    const big = JSON.stringify({ block_documents: { name: { any_: ['x'.repeat(9000)] } } });
    expect((await engine({ bodyMaxBytes: 16384 }).decide(withBody('viewer', big))).reason).toBe('ok');
  });

  it('lets developers and admins ask for secrets; not operators or workers', async () => {
    const secrets = '{"include_secrets":true}';
    expect((await e.decide(withBody('developer', secrets))).reason).toBe('ok');
    expect((await e.decide(withBody('admin', secrets))).reason).toBe('ok');
    expect((await e.decide(withBody('operator', secrets))).reason).toBe('forbidden');
    expect((await e.decide(withBody('worker', secrets))).reason).toBe('forbidden');
    expect((await e.decide(withBody('worker', '{}'))).reason).toBe('forbidden');
  });

  it('never answers a body from the remembered decisions of a cached token', async () => {
    const fresh = engine();
    expect((await fresh.decide(withBody('viewer', '{}'))).reason).toBe('ok');
    expect((await fresh.decide(withBody('viewer', '{}'))).cache).toBe('hit');
    expect((await fresh.decide(withBody('viewer', '{"include_secrets":true}'))).reason).toBe('forbidden');
    expect((await fresh.decide(withBody('viewer', '{}'))).reason).toBe('ok');
    expect((await fresh.decide(withBody('viewer', null))).reason).toBe('body_missing');
    expect((await fresh.decide(withBody('viewer', '{"include_secrets":true}'))).reason).toBe('forbidden');
  });

  it('explains a body decision', async () => {
    const x = await e.explain(withBody('viewer', 'nope'));
    expect(x.decision.reason).toBe('body_invalid');
    expect(x.trace.join('\n')).toMatch(
      /body=4 bytes[\s\S]*no match \(body_invalid\)[\s\S]*body: body_invalid/,
    );
  });

  it('validates body conditions in custom rules', () => {
    expect(() =>
      engine({ preset: 'none', rules: [{ path: '/x', body: { include_secrets: {} } }] as never }),
    ).toThrow(/one of present, truthy/);
    const custom = engine({
      preset: 'none',
      rules: [{ methods: ['POST'], path: '/x', body: { dry_run: { present: true } }, roles: ['viewer'] }],
    });
    const req = (b: string) => ({
      ...request('POST', '/x', { token: tokens.get('viewer') ?? null }),
      body: Buffer.from(b),
    });
    return Promise.all([
      expect(Promise.resolve(custom.decide(req('{"dry_run":false}')))).resolves.toMatchObject({
        reason: 'ok',
      }),
      expect(Promise.resolve(custom.decide(req('{}')))).resolves.toMatchObject({ reason: 'forbidden' }),
    ]);
  });
});
