// A sample of the path-confusion table (test/auth/policy/path-confusion.test.ts) through the
// shipped HAProxy config, the real agent process and the Prefect stub: what the agent refuses
// never reaches Prefect, whatever HAProxy makes of the raw request-target first; what it allows
// reaches Prefect as the path it judged.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { requireHaproxy } from '../helpers/haproxy.js';
import { devToken, type SentRequest, type Stack, send, startStack } from './stack.js';

const { describeHaproxy } = requireHaproxy();

/**
 * Refused by the agent (403 bad_request), or by HAProxy's own parser (400) where HAProxy
 * versions differ on the raw character: never forwarded either way.
 */
type Refused = 'bad_request' | 'haproxy_400_or_bad_request';

const REFUSED: ReadonlyArray<[raw: string, by: Refused]> = [
  ['/api/admin/settings;x=1', 'bad_request'],
  ['/api/admin/settings%3Bx=1', 'bad_request'],
  ['/API/ADMIN/SETTINGS', 'bad_request'],
  ['/api/Admin/settings', 'bad_request'],
  ['/api/admin%2Fsettings', 'bad_request'],
  ['/api/%2e%2e/admin/settings', 'bad_request'],
  ['/api/%252e%252e/admin/settings', 'bad_request'],
  ['/api/admin%C0%AFsettings', 'bad_request'],
  ['/api/flows/%FF', 'bad_request'],
  ['/api/admin\\settings', 'haproxy_400_or_bad_request'],
  ['/api/admin/settings.', 'bad_request'],
  ['/api/admin/settings%20', 'bad_request'],
  ['/api/admin/settings%3F', 'bad_request'],
  ['/api/admin/settings%23', 'bad_request'],
  ['/api/%EF%BD%81%EF%BD%84%EF%BD%8D%EF%BD%89%EF%BD%8E/settings', 'bad_request'],
  ['/api/admin/%C5%BFettings', 'bad_request'],
  ['/api/block_documents/x?include_secrets=false&include_secrets=true', 'bad_request'],
  ['/api/block_documents/x?Include_Secrets=true', 'bad_request'],
  ['/api/block_documents/x?x=1;include_secrets=true', 'bad_request'],
];

describeHaproxy('path confusion through the shipped HAProxy config', () => {
  let stack: Stack;
  let viewer: string;

  beforeAll(async () => {
    stack = await startStack({ agent: { config: { devIssuer: true, audit: 'all' } } });
    viewer = await devToken('pat-paths', ['viewer']);
  }, 90_000);
  afterAll(() => stack?.stop());

  const atPrefect = (r: SentRequest) => stack.stub.withHeader('x-test-id', r.testId)[0];

  it.each(REFUSED)('%s is refused (%s), with a token and without', async (raw, by) => {
    for (const token of [viewer, undefined]) {
      const r = await send(stack.hap, 'GET', raw, { rawPath: true, ...(token ? { token } : {}) });
      expect(atPrefect(r), raw).toBeUndefined();
      if (by === 'haproxy_400_or_bad_request' && r.status === 400) {
        expect(r.body, raw).not.toContain('"reason"');
      } else {
        expect(r.status, raw).toBe(403);
        expect(JSON.parse(r.body), raw).toEqual({ detail: 'forbidden', reason: 'bad_request' });
      }
    }
  });

  it('a raw fragment never reaches Prefect', async () => {
    const r = await send(stack.hap, 'GET', '/api/flows/abc#/../../admin/settings', {
      rawPath: true,
      token: viewer,
    });
    expect([400, 403]).toContain(r.status);
    expect(atPrefect(r)).toBeUndefined();
  });

  it('what every server reads the same way reaches Prefect as the path that was judged', async () => {
    const cases = [
      ['/api/%61dmin/version', '/api/admin/version'],
      ['//api//flows/abc', '/api/flows/abc'],
      ['/api/flows/caf%c3%a9', '/api/flows/caf%C3%A9'],
      ['/api/block_documents/x?include_secrets=false', '/api/block_documents/x?include_secrets=false'],
    ] as const;
    for (const [raw, judged] of cases) {
      const r = await send(stack.hap, 'GET', raw, { rawPath: true, token: viewer });
      expect(r.status, raw).toBe(200);
      expect(atPrefect(r)?.url, raw).toBe(judged);
    }
  });
});
