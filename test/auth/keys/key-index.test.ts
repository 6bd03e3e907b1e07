import { generateKeyPairSync } from 'node:crypto';
import * as jose from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { AuthzEngine } from '../../../src/auth/index.js';
import { KeyIndex } from '../../../src/auth/keys/key-index.js';
import { makeKey, NOW_MS, sign, type TestKey } from '../helpers/keys.js';
import { request } from '../helpers/request.js';

let rsa: TestKey;
let rsa2: TestKey;
let ec: TestKey;

beforeAll(async () => {
  rsa = await makeKey('RS256', 'r1');
  rsa2 = await makeKey('RS256', 'r2');
  ec = await makeKey('ES256', 'e1');
});

const algOf = (key: jose.CryptoKey | undefined) => (key?.algorithm as { name?: string } | undefined)?.name;

describe('KeyIndex (synchronous kid lookup in front of jose)', () => {
  it('finds keys by kid and algorithm, and by algorithm alone when unambiguous', async () => {
    const index = await KeyIndex.build({ keys: [rsa.jwk, ec.jwk] }, ['RS256', 'PS256', 'ES256']);
    expect(algOf(index.lookup('RS256', 'r1'))).toBe('RSASSA-PKCS1-v1_5');
    expect(algOf(index.lookup('ES256', 'e1'))).toBe('ECDSA');
    expect(algOf(index.lookup('ES256', undefined))).toBe('ECDSA');
    // The JWK says alg RS256: jose would not use it for PS256, nor for an unlisted algorithm.
    expect(index.lookup('PS256', 'r1')).toBeUndefined();
    expect(index.lookup('RS384', 'r1')).toBeUndefined();
    expect(index.lookup('ES256', 'r1')).toBeUndefined();
    expect(index.lookup('RS256', 'nope')).toBeUndefined();
    expect(index.lookup(undefined, 'r1')).toBeUndefined();
    expect(index.lookup('RS256', 42)).toBeUndefined();
  });

  it('leaves ambiguous and unusable keys to jose', async () => {
    const noAlg = (k: TestKey) => ({ ...k.jwk, alg: undefined });
    const index = await KeyIndex.build(
      {
        keys: [
          noAlg(rsa),
          { ...noAlg(rsa2), kid: 'r1' },
          { ...ec.jwk, kid: 'enc', use: 'enc' },
          { ...ec.jwk, kid: 'ops', key_ops: ['encrypt'] },
          { ...ec.jwk, kid: 'curve', crv: 'P-384' },
          'not a key',
        ],
      },
      ['RS256', 'PS256', 'ES256'],
    );
    expect(index.lookup('RS256', 'r1')).toBeUndefined();
    expect(index.lookup('RS256', undefined)).toBeUndefined();
    expect(index.lookup('ES256', 'enc')).toBeUndefined();
    expect(index.lookup('ES256', 'ops')).toBeUndefined();
    expect(index.lookup('ES256', 'curve')).toBeUndefined();
    expect(index.lookup('ES256', undefined)).toBeUndefined();
  });

  it('holds a node:crypto FastKey beside each CryptoKey jose would accept, for the same lookups', async () => {
    const { publicKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048 });
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    const index = await KeyIndex.build(
      {
        keys: [
          rsa.jwk,
          ec.jwk,
          { ...weak, kid: 'weak', alg: 'RS256' },
          { ...(await jose.exportJWK(publicKey)), kid: 'x' },
        ],
      },
      ['RS256', 'PS256', 'ES256'],
    );
    expect(index.fastLookup('RS256', 'r1')?.alg).toBe('RS256');
    expect(index.fastLookup('ES256', 'e1')).toMatchObject({ alg: 'ES256', offload: true });
    expect(index.fastLookup('ES256', undefined)?.alg).toBe('ES256');
    // A JWK without alg serves every RSA algorithm, each with its own FastKey.
    expect(index.fastLookup('PS256', 'x')).toMatchObject({ alg: 'PS256', offload: false });
    expect(index.fastLookup('RS256', 'x')?.alg).toBe('RS256');
    // jose refuses RSA under 2048 bits at verification time: the CryptoKey is indexed, no FastKey.
    expect(index.lookup('RS256', 'weak')).toBeDefined();
    expect(index.fastLookup('RS256', 'weak')).toBeUndefined();
    expect(index.fastLookup('PS256', 'r1')).toBeUndefined();
    expect(index.fastLookup('RS256', 'nope')).toBeUndefined();
    // Three RS256 candidates without kid: ambiguous, left to jose.
    expect(index.fastLookup('RS256', undefined)).toBeUndefined();
  });

  it('never indexes private key material', async () => {
    const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
    const priv = { ...(await jose.exportJWK(privateKey)), kid: 'p', alg: 'ES256' };
    const index = await KeyIndex.build({ keys: [priv] }, ['ES256']);
    expect(index.lookup('ES256', 'p')).toBeUndefined();
  });

  it('an engine still verifies what only jose can: no kid, two candidate keys', async () => {
    const e = AuthzEngine.create(
      {
        issuers: [
          {
            id: 'i',
            issuer: 'https://idp.example.com',
            audiences: ['prefect'],
            algorithms: ['RS256'],
            keys: { type: 'jwks', jwks: { keys: [rsa.jwk, rsa2.jwk] } },
          },
        ],
        policy: { preset: 'none', rules: [{ path: '/**' }] },
      },
      { now: () => NOW_MS },
    );
    await e.start();
    for (const key of [rsa, rsa2]) {
      const token = await sign(key, { iss: 'https://idp.example.com', aud: 'prefect', noKid: true });
      expect(await e.decide(request('GET', '/', { token }))).toMatchObject({ reason: 'ok' });
    }
    const forged = await sign(ec, {
      iss: 'https://idp.example.com',
      aud: 'prefect',
      noKid: true,
      header: { alg: 'ES256' },
    });
    expect(await e.decide(request('GET', '/', { token: forged }))).toMatchObject({ allow: false });
  });
});
