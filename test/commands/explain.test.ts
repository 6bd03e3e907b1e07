/** `explain` through the CLI: the trace, and the path HAProxy would forward for a non-canonical one. */
import { describe, expect, it } from 'vitest';
import { mintDevToken } from '../../src/auth/index.js';
import { main } from '../../src/cli.js';
import { capture } from '../helpers/capture.js';

async function explain(args: string[]): Promise<{ code: number; out: string }> {
  const { value: code, text: out } = await capture('stdout', () => main(['explain', ...args]));
  return { code, out };
}

describe('spoe-authz explain', () => {
  it('names the path HAProxy forwards when an allowed path is not canonical', async () => {
    const token = await mintDevToken({ sub: 'alice', roles: ['viewer'] });
    const odd = await explain([
      '--method',
      'POST',
      '--path',
      '/api/admin/../flows//filter',
      '--token',
      token,
    ]);
    expect(odd.code).toBe(0);
    expect(odd.out).toContain('forwarded path: /api/flows/filter (var path: HAProxy set-path)');

    const plain = await explain([
      '--method',
      'POST',
      '--path',
      '/api/flows/filter',
      '--token',
      token,
      '--json',
    ]);
    expect(plain.code).toBe(0);
    expect(JSON.parse(plain.out)).toMatchObject({ decision: { allow: true }, forwardedPath: null });

    // A deny forwards nothing: HAProxy answers it itself.
    const denied = await explain([
      '--method',
      'POST',
      '--path',
      '/api/flows/../admin/settings',
      '--token',
      token,
      '--json',
    ]);
    expect(denied.code).toBe(1);
    expect(JSON.parse(denied.out)).toMatchObject({ decision: { allow: false }, forwardedPath: null });
  });

  it('judges a body given with --body, as HAProxy sends it for the Blocks page', async () => {
    const token = await mintDevToken({ sub: 'bea', roles: ['viewer'] });
    const args = ['--method', 'POST', '--path', '/api/block_documents/filter', '--token', token, '--json'];
    const without = await explain(args);
    expect(JSON.parse(without.out)).toMatchObject({ decision: { allow: false, reason: 'body_missing' } });
    const page = await explain([...args, '--body', '{"include_secrets":false,"limit":10}']);
    expect(page.code).toBe(0);
    const secrets = await explain([...args, '--body', '{"include_secrets":true}']);
    expect(JSON.parse(secrets.out)).toMatchObject({
      decision: { allow: false, reason: 'forbidden', rule: 'prefect.deny.body-secrets' },
    });
  });
});
