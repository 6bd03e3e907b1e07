/**
 * jose is pinned to the exact version the hand copies of its internals were checked against.
 * A new jose can change what a token's verdict is (key selection, claim checks, header rules)
 * while the fast path keeps the old behaviour, so this fails on any change of the installed
 * or declared version until someone has re-checked the copies and updated CHECKED_VERSION.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/agent-process.js';

/** The jose release the files below were last compared with, line by line. */
const CHECKED_VERSION = '6.2.18';

const RECHECK = `
jose's version changed. Before changing CHECKED_VERSION in ${'test/auth/verify/jose-pin.test.ts'},
compare these hand copies with the new jose's sources (node_modules/jose/dist/webapi/...):
  src/auth/verify/jws.ts               lib/jws_verify.js, lib/key.js (checkCryptoKey,
                                       checkModulusLength), lib/jws_algorithms.js
  src/auth/verify/claims-validation.ts lib/jwt_claims_set.js (validateClaimsSet)
  src/auth/keys/key-index.ts           jwks/local.js (isUsableJWK, importWithAlgCache)
  src/auth/verify/verifier.ts          lib/validate.js (parseJoseHeader, validateCrit), jwt/verify.js
then run test/auth/verify/*.test.ts (jose-differential, fast-verify, reason-precedence).`;

const json = (path: string) => JSON.parse(readFileSync(join(REPO_ROOT, path), 'utf8'));

describe('jose pin', () => {
  it('package.json asks for exactly the checked version', () => {
    expect(json('package.json').dependencies.jose, RECHECK).toBe(CHECKED_VERSION);
  });

  it('package-lock.json resolves it to that version', () => {
    const lock = json('package-lock.json');
    expect(lock.packages[''].dependencies.jose, RECHECK).toBe(CHECKED_VERSION);
    expect(lock.packages['node_modules/jose'].version, RECHECK).toBe(CHECKED_VERSION);
  });

  it('the installed jose is that version', () => {
    const require = createRequire(import.meta.url);
    const installed = JSON.parse(
      readFileSync(join(require.resolve('jose').split('/dist/')[0] as string, 'package.json'), 'utf8'),
    );
    expect(installed.version, RECHECK).toBe(CHECKED_VERSION);
  });
});
