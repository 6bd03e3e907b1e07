import * as jose from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { AuthzEngine, type Decision, type Reason } from '../../../src/auth/index.js';
import {
  forge,
  hmacForge,
  jwks,
  makeKey,
  NOW_MS,
  NOW_S,
  sign,
  type TestKey,
  type TokenSpec,
} from '../helpers/keys.js';
import { request } from '../helpers/request.js';

const A = 'https://idp-a.example.com';
const B = 'https://idp-b.example.com';
const EDGE = 'https://edge.example.com';
const AUD = 'prefect';
const SECRET = Buffer.from('an edge secret that is long enough for HS256!');

let keys: Record<'rs' | 'ps' | 'es' | 'es384' | 'ed' | 'b', TestKey>;
let engine: AuthzEngine;

async function decide(token: string): Promise<Decision> {
  return engine.decide(request('GET', '/api/flows/x', { token }));
}

async function tokenA(key: TestKey, spec: TokenSpec = {}): Promise<string> {
  return sign(key, { iss: A, aud: AUD, ...spec });
}

beforeAll(async () => {
  keys = {
    rs: await makeKey('RS256', 'a-rs'),
    ps: await makeKey('PS256', 'a-ps'),
    es: await makeKey('ES256', 'a-es'),
    es384: await makeKey('ES384', 'a-es384'),
    ed: await makeKey('EdDSA', 'a-ed'),
    b: await makeKey('RS256', 'b-rs'),
  };
  engine = AuthzEngine.create(
    {
      issuers: [
        {
          id: 'a',
          issuer: A,
          audiences: [AUD, 'other'],
          algorithms: ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'],
          keys: { type: 'jwks', jwks: jwks(keys.rs, keys.ps, keys.es, keys.es384, keys.ed) },
        },
        {
          id: 'b',
          issuer: B,
          audiences: [AUD],
          algorithms: ['RS256'],
          keys: { type: 'jwks', jwks: jwks(keys.b) },
        },
        {
          id: 'edge',
          issuer: EDGE,
          audiences: [AUD],
          algorithms: ['HS256'],
          keys: { type: 'secret', value: SECRET.toString('base64'), encoding: 'base64' },
        },
        {
          id: 'strict',
          issuer: 'https://strict.example.com',
          audiences: [AUD],
          algorithms: ['ES256'],
          keys: { type: 'jwks', jwks: jwks(keys.es) },
          typ: 'at+jwt',
          maxTokenAgeSeconds: 600,
          requiredClaims: ['email'],
          critical: ['urn:example:ext'],
        },
      ],
      cache: { maxEntries: 0, negativeTtlSeconds: 0 },
      policy: { preset: 'none', rules: [{ name: 'any-token', path: '/**' }] },
    },
    { now: () => NOW_MS },
  );
  await engine.start();
});

describe('signatures that verify', () => {
  it.each(['rs', 'ps', 'es', 'es384', 'ed'] as const)('%s', async (name) => {
    const d = await decide(await tokenA(keys[name], { sub: `user-${name}` }));
    expect(d).toMatchObject({
      allow: true,
      status: 200,
      reason: 'ok',
      sub: `user-${name}`,
      iss: A,
      rule: 'any-token',
    });
  });

  it('HS256 from an edge secret', async () => {
    const d = await decide(
      await sign({ alg: 'HS256', secret: SECRET }, { iss: EDGE, aud: AUD, sub: 'edge-user' }),
    );
    expect(d).toMatchObject({ allow: true, reason: 'ok', sub: 'edge-user', iss: EDGE });
  });

  it('accepts one audience out of several, and exp/nbf within the clock tolerance', async () => {
    expect((await decide(await tokenA(keys.rs, { aud: ['x', 'other'] }))).reason).toBe('ok');
    expect((await decide(await tokenA(keys.rs, { exp: -20 }))).reason).toBe('ok');
    expect((await decide(await tokenA(keys.rs, { nbf: 20 }))).reason).toBe('ok');
  });

  it('a token without kid against a one-key set', async () => {
    expect((await decide(await sign(keys.b, { iss: B, aud: AUD, noKid: true }))).reason).toBe('ok');
  });

  it('the strict issuer: typ at+jwt, email required, known crit', async () => {
    const ok = await sign(keys.es, {
      iss: 'https://strict.example.com',
      aud: AUD,
      header: { typ: 'at+jwt', crit: ['urn:example:ext'], 'urn:example:ext': 1 },
      crit: { 'urn:example:ext': true },
      claims: { email: 'a@example.com' },
    });
    expect((await decide(ok)).reason).toBe('ok');
  });
});

describe('adversarial tokens', () => {
  const payload = () => ({ iss: A, aud: AUD, sub: 'mallory', exp: NOW_S + 3600, iat: NOW_S });
  const strict = (spec: TokenSpec) =>
    sign(keys.es, {
      iss: 'https://strict.example.com',
      aud: AUD,
      header: { typ: 'at+jwt' },
      claims: { email: 'a@example.com' },
      ...spec,
    });

  const table: Array<[string, Reason, () => Promise<string> | string]> = [
    ['alg none', 'bad_algorithm', () => forge({ alg: 'none', typ: 'JWT' }, payload())],
    ['alg NONE', 'bad_algorithm', () => forge({ alg: 'NONE' }, payload(), 'c2ln')],
    [
      'alg outside the allow-list (RS512)',
      'bad_algorithm',
      () => forge({ alg: 'RS512', kid: 'a-rs' }, payload(), 'c2ln'),
    ],
    ['PS256 to an RS256-only issuer', 'bad_algorithm', () => sign(keys.ps, { iss: B, aud: AUD })],
    [
      'HS256 signed with the RSA public key (JWK) as secret',
      'bad_algorithm',
      async () =>
        hmacForge({ alg: 'HS256', kid: 'a-rs' }, payload(), Buffer.from(JSON.stringify(keys.rs.jwk))),
    ],
    [
      'HS256 signed with the RSA public key (SPKI PEM) as secret',
      'bad_algorithm',
      async () =>
        hmacForge({ alg: 'HS256' }, payload(), Buffer.from(await jose.exportSPKI(keys.rs.publicKey))),
    ],
    [
      'HS256 with the edge secret but iss of an RSA issuer',
      'bad_algorithm',
      () => sign({ alg: 'HS256', secret: SECRET }, { iss: A, aud: AUD }),
    ],
    [
      'HS256 with a wrong secret',
      'bad_signature',
      () => sign({ alg: 'HS256', secret: Buffer.alloc(32, 7) }, { iss: EDGE, aud: AUD }),
    ],
    ['unknown iss', 'unknown_issuer', () => sign(keys.rs, { iss: 'https://evil.example.com', aud: AUD })],
    [
      'iss differing only by a trailing slash',
      'unknown_issuer',
      () => sign(keys.rs, { iss: `${A}/`, aud: AUD }),
    ],
    ['missing iss', 'unknown_issuer', () => sign(keys.rs, { aud: AUD })],
    ['wrong aud', 'bad_audience', () => tokenA(keys.rs, { aud: 'grafana' })],
    ['missing aud', 'bad_audience', () => sign(keys.rs, { iss: A })],
    ['expired', 'expired', () => tokenA(keys.rs, { exp: -3600 })],
    ['expired beyond the tolerance by 1 s', 'expired', () => tokenA(keys.rs, { exp: -31 })],
    ['nbf in the future', 'not_yet_valid', () => tokenA(keys.rs, { nbf: 3600 })],
    ['no exp', 'bad_claims', () => tokenA(keys.rs, { exp: null })],
    ['exp not a number', 'bad_claims', () => tokenA(keys.rs, { exp: null, claims: { exp: 'tomorrow' } })],
    ['sub not a string', 'bad_claims', () => tokenA(keys.rs, { claims: { sub: 42 } })],
    ['sub with a newline', 'bad_claims', () => tokenA(keys.rs, { sub: 'alice\r\nX-Injected: 1' })],
    ['unknown kid', 'unknown_key', () => tokenA(keys.rs, { header: { kid: 'nope' } })],
    ['issuer A token presented with B iss (A kid)', 'unknown_key', () => sign(keys.rs, { iss: B, aud: AUD })],
    [
      'issuer A token presented with B iss (B kid)',
      'bad_signature',
      () => sign(keys.rs, { iss: B, aud: AUD, header: { kid: 'b-rs' } }),
    ],
    [
      'issuer A token presented with B iss (no kid)',
      'bad_signature',
      () => sign(keys.rs, { iss: B, aud: AUD, noKid: true }),
    ],
    [
      'payload swapped after signing',
      'bad_signature',
      async () => {
        const [h, , s] = (await tokenA(keys.rs)).split('.');
        const [, p] = (await tokenA(keys.rs, { sub: 'root' })).split('.');
        return `${h}.${p}.${s}`;
      },
    ],
    [
      'signature of another key with the same kid',
      'bad_signature',
      () => sign(keys.b, { iss: A, aud: AUD, header: { kid: 'a-rs' } }),
    ],
    ['truncated', 'malformed_token', async () => (await tokenA(keys.rs)).slice(0, 40)],
    ['truncated signature', 'bad_signature', async () => (await tokenA(keys.es)).slice(0, -8)],
    ['garbage base64', 'malformed_token', () => 'eyJhbGci!!.eyJzdWIi.c2ln'],
    ['base64 that is not JSON', 'malformed_token', () => 'abcd.efgh.ijkl'],
    ['header JSON without alg', 'malformed_token', () => forge({ typ: 'JWT' }, payload(), 'c2ln')],
    [
      'payload a JSON array',
      'malformed_token',
      () =>
        `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('[1]').toString('base64url')}.c2ln`,
    ],
    ['oversized (8 KiB + 1)', 'malformed_token', async () => `${await tokenA(keys.rs)}${'A'.repeat(8193)}`],
    [
      'crit header we do not know',
      'malformed_token',
      () => tokenA(keys.rs, { header: { crit: ['urn:evil'], 'urn:evil': true }, crit: { 'urn:evil': true } }),
    ],
    ['typ required but JWT', 'bad_claims', () => strict({ header: { typ: 'JWT' } })],
    ['required claim missing', 'bad_claims', () => strict({ claims: {} })],
    ['older than maxTokenAge', 'expired', () => strict({ iat: -3600 })],
    ['maxTokenAge without iat', 'bad_claims', () => strict({ iat: null })],
  ];

  it.each(table)('%s -> %s', async (_name, reason, make) => {
    const d = await decide(await make());
    expect(d.reason).toBe(reason);
    expect(d.allow).toBe(false);
    expect(d.status).toBe(401);
    expect(d.sub).toBeNull();
    expect(d.claims).toEqual([]);
  });

  it('reports the issuer for failures after issuer selection, never for unknown issuers', async () => {
    expect((await decide(await tokenA(keys.rs, { exp: -3600 }))).iss).toBe(A);
    expect((await decide(await sign(keys.rs, { iss: 'https://evil.example.com', aud: AUD }))).iss).toBeNull();
  });
});
