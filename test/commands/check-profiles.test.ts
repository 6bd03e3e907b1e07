/** `check` and `explain` through the CLI say what a provider profile set. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { main } from '../../src/cli.js';
import { jwks, makeKey } from '../auth/helpers/keys.js';
import { loadProviderFixture, readmeBlock, signCompact, tokenShape } from '../auth/helpers/providers.js';
import { capture } from '../helpers/capture.js';

const dir = mkdtempSync(join(tmpdir(), 'spoe-authz-profiles-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number; out: string }> {
  const { value: code, text: out } = await capture('stdout', () => main(args));
  return { code, out };
}

describe('profiles in check and explain', () => {
  it('check prints what each profile set and the SPOE arg its token source needs', async () => {
    const file = join(dir, 'alb.yaml');
    writeFileSync(file, stringify(readmeBlock('aws-alb')));
    const { code, out } = await run(['check', '--config', file]);
    expect(code).toBe(0);
    expect(out).toMatch(
      /^issuer alb: profile aws-alb set algorithms=\["ES256"\], keys=\{"type":"pem-url","url":"https:\/\/public-keys\.auth\.elb\.eu-west-1\.amazonaws\.com\/\{kid\}"\}, roles\.claims=/m,
    );
    expect(out).toContain(
      'tokens: header x-amzn-oidc-data: the SPOE message needs token_header=req.hdr(x-amzn-oidc-data)',
    );
  });

  it('explain shows the profile, what it set (not what the config overrode) and its checks', async () => {
    const fixture = loadProviderFixture('github-actions');
    const key = await makeKey('RS256', 'gh-1');
    const keysFile = join(dir, 'gh.jwks.json');
    writeFileSync(keysFile, JSON.stringify(jwks(key)));
    const block = readmeBlock('github-actions') as { issuers: Array<Record<string, unknown>> };
    const file = join(dir, 'gh.yaml');
    writeFileSync(
      file,
      stringify({ issuers: [{ ...block.issuers[0], keys: { type: 'jwks-file', path: keysFile } }] }),
    );
    // The fixture's times are relative to the real clock here: explain has no clock option.
    const token = await signCompact(
      tokenShape(fixture, 'deploy', Math.floor(Date.now() / 1000), key.kid),
      key,
    );
    const { code, out } = await run([
      'explain',
      '--config',
      file,
      '--method',
      'POST',
      '--path',
      '/api/deployments/',
      '--token',
      token,
    ]);
    expect(out).toMatch(
      /^profile github-actions set: issuer="https:\/\/token\.actions\.githubusercontent\.com", algorithms=\["RS256"\], roles\.claims=\["sub"\]$/m,
    );
    expect(out).not.toMatch(/set: .*keys=/);
    expect(out).toMatch(/^roles from claims \[sub\]: \[developer\]$/m);
    expect(code).toBe(0);
  });
});
