/** `verifier: fast | jose` from the file and from AUTHZ_VERIFIER, and what each setting does. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mintDevToken } from '../../src/auth/index.js';
import { ConfigError } from '../../src/config/errors.js';
import { createEngine, loadConfig } from '../../src/config/load.js';
import { request } from '../auth/helpers/request.js';

const dir = mkdtempSync(join(tmpdir(), 'authz-verifier-'));
const yaml = (verifier?: string) => {
  const p = join(dir, `v-${verifier ?? 'default'}.yaml`);
  writeFileSync(p, `devIssuer: true\n${verifier === undefined ? '' : `verifier: ${verifier}\n`}`);
  return p;
};

describe('verifier setting', () => {
  it('defaults to fast; the file sets it; AUTHZ_VERIFIER overrides the file', () => {
    expect(loadConfig({ path: yaml(), env: {} }).authz.verifier).toBeUndefined();
    expect(loadConfig({ path: yaml('jose'), env: {} }).authz.verifier).toBe('jose');
    expect(loadConfig({ path: yaml('jose'), env: { AUTHZ_VERIFIER: 'fast' } }).authz.verifier).toBe('fast');
    expect(loadConfig({ path: yaml(), env: { AUTHZ_VERIFIER: 'jose' } }).authz.verifier).toBe('jose');
  });

  it('refuses anything else, naming the field', () => {
    let issues: string[] = [];
    try {
      loadConfig({ path: yaml(), env: { AUTHZ_VERIFIER: 'openssl' } });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      issues = err.issues.map((i) => `${i.path}: ${i.message}`);
    }
    expect(issues).toEqual([expect.stringMatching(/^verifier: .*"fast"\|"jose"/)]);
  });

  it.each([
    ['fast', { fastSync: 0, fastPool: 1, jose: 0 }],
    ['jose', { fastSync: 0, fastPool: 0, jose: 1 }],
  ] as const)('verifier %s checks the signature with that verifier', async (verifier, verifiers) => {
    const engine = createEngine(loadConfig({ path: yaml(verifier), env: {} }));
    await engine.start();
    try {
      const token = await mintDevToken({ sub: 'alice', roles: ['viewer'] });
      const d = await engine.decide(request('POST', '/api/flows/filter', { token }));
      expect(d).toMatchObject({ allow: true, reason: 'ok', sub: 'alice' });
      expect(engine.stats().verifiers).toEqual(verifiers);
    } finally {
      engine.close();
    }
  });
});
