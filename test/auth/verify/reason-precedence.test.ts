/**
 * Reasons in the documented precedence (README "Reasons"): the request (bad_request), then the
 * token's structure (malformed_token), issuer (unknown_issuer), the issuer's `crit` and
 * algorithm (malformed_token, bad_algorithm), key (unknown_key, keys_unavailable), signature
 * (bad_signature), claims in jose's order, and last the policy (forbidden). Each case breaks
 * two levels at once and expects the earlier one, for both verifiers (`verifier: fast | jose`).
 */
import { KeyObject, sign as nodeSign, type webcrypto } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type AuthzConfigInput,
  AuthzEngine,
  type Reason,
  STATUS_BY_REASON,
} from '../../../src/auth/index.js';
import { VERIFIER_MODES } from '../../../src/auth/verify/verifier.js';
import { forge, jwks, makeKey, NOW_MS, NOW_S, sign, type TestKey } from '../helpers/keys.js';
import { request } from '../helpers/request.js';

const A = 'https://idp.example.com';
const DOWN = 'https://down.example.com';
const AUD = 'prefect';
const b64 = (v: string | Buffer) => Buffer.from(v).toString('base64url');

let rs: TestKey;
let es: TestKey;
let other: TestKey;
const engines = new Map<string, AuthzEngine>();

function config(verifier: string): AuthzConfigInput {
  return {
    verifier: verifier as 'fast',
    issuers: [
      {
        id: 'a',
        issuer: A,
        audiences: [AUD],
        algorithms: ['RS256', 'ES256'],
        keys: { type: 'jwks', jwks: jwks(rs, es) },
        typ: 'JWT',
        critical: ['urn:example:known'],
      },
      {
        id: 'down',
        issuer: DOWN,
        audiences: [AUD],
        algorithms: ['RS256'],
        keys: { type: 'jwks-url', url: 'https://down.example.com/jwks', retryIntervalSeconds: 3600 },
      },
    ],
    cache: { maxEntries: 0, negativeTtlSeconds: 0 },
    policy: {
      preset: 'none',
      rules: [
        { name: 'flows', path: '/api/flows/**' },
        { name: 'open', path: '/api/health', methods: ['GET'], anonymous: true },
      ],
    },
  };
}

beforeAll(async () => {
  rs = await makeKey('RS256', 'rs');
  es = await makeKey('ES256', 'es');
  other = await makeKey('RS256', 'rs');
  for (const verifier of VERIFIER_MODES) {
    const engine = AuthzEngine.create(config(verifier), {
      now: () => NOW_MS,
      fetch: () => Promise.reject(new TypeError('fetch failed: provider down in this test')),
    });
    await engine.start();
    engines.set(verifier, engine);
  }
  return () => {
    for (const e of engines.values()) e.close();
  };
});

const payload = (over: Record<string, unknown> = {}) => ({
  iss: A,
  aud: AUD,
  sub: 'alice',
  iat: NOW_S,
  exp: NOW_S + 600,
  ...over,
});

/** header.payload signed with RS256 by `key` (the JOSE header and payload as given, raw). */
function rsToken(header: string, body: string, key = rs): string {
  const input = `${b64(header)}.${b64(body)}`;
  return `${input}.${signWith(key, input)}`;
}

const signers = new Map<TestKey, (data: string) => string>();
function signWith(key: TestKey, input: string): string {
  const s = signers.get(key);
  if (s === undefined) throw new Error('signer not prepared');
  return s(input);
}

beforeAll(() => {
  for (const key of [rs, other]) {
    const ko = KeyObject.from(key.privateKey as unknown as webcrypto.CryptoKey);
    signers.set(key, (data) => nodeSign('sha256', Buffer.from(data), ko).toString('base64url'));
  }
});

type Case = [what: string, expected: Reason, token: () => Promise<string> | string, path?: string];

const HDR = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ alg: 'RS256', kid: 'rs', typ: 'JWT', ...over });
const BODY = (over: Record<string, unknown> = {}) => JSON.stringify(payload(over));

const CASES: Case[] = [
  // Structure before issuer.
  [
    'header not JSON, iss unknown',
    'malformed_token',
    () => rsToken('{"alg":"RS256",', BODY({ iss: 'https://evil' })),
  ],
  [
    'header not JSON, iss known, signature of another key',
    'malformed_token',
    () => rsToken('not json', BODY(), other),
  ],
  ['header a JSON string, iss unknown', 'malformed_token', () => rsToken('"RS256"', BODY({ iss: 'x' }))],
  [
    'header invalid UTF-8, iss unknown',
    'malformed_token',
    () => `${b64(Buffer.from([0x7b, 0xff, 0x7d]))}.${b64(BODY({ iss: 'x' }))}.c2ln`,
  ],
  ['header without alg, iss unknown', 'malformed_token', () => rsToken('{"kid":"rs"}', BODY({ iss: 'x' }))],
  ['header alg empty, iss unknown', 'malformed_token', () => rsToken(HDR({ alg: '' }), BODY({ iss: 'x' }))],
  [
    'crit not an array, iss unknown',
    'malformed_token',
    () => rsToken(HDR({ crit: 'x', x: 1 }), BODY({ iss: 'x' })),
  ],
  [
    'crit naming a missing member, iss unknown',
    'malformed_token',
    () => rsToken(HDR({ crit: ['urn:example:known'] }), BODY({ iss: 'x' })),
  ],
  [
    'b64 false under crit, iss known',
    'malformed_token',
    () => rsToken(HDR({ crit: ['b64'], b64: false }), BODY()),
  ],
  [
    'payload not JSON, signature of another key',
    'malformed_token',
    () => rsToken(HDR(), '{"iss":"https://idp.example.com",', other),
  ],
  ['payload a JSON array, iss unknown', 'malformed_token', () => rsToken(HDR(), '[{"iss":"x"}]')],
  [
    'a part of length 1 mod 4, iss known',
    'malformed_token',
    async () => {
      const token = await sign(rs, { iss: A, aud: AUD });
      const sigLength = token.length - token.lastIndexOf('.') - 1;
      return `${token}${'A'.repeat((((1 - sigLength) % 4) + 4) % 4)}`;
    },
  ],
  // Issuer before algorithm, key, signature and claims.
  ['alg none, iss unknown', 'unknown_issuer', () => forge({ alg: 'none' }, payload({ iss: 'https://evil' }))],
  [
    'iss missing, expired, signature bad',
    'unknown_issuer',
    () => rsToken(HDR(), JSON.stringify({ aud: AUD, exp: 1 }), other),
  ],
  // The issuer's crit, then the algorithm, before the key.
  [
    'crit the issuer does not know, alg not allowed',
    'malformed_token',
    () => rsToken(HDR({ alg: 'PS256', crit: ['urn:x'], 'urn:x': 1 }), BODY()),
  ],
  [
    'alg not allowed, kid unknown',
    'bad_algorithm',
    () => rsToken(HDR({ alg: 'RS512', kid: 'nope' }), BODY()),
  ],
  ['alg none, expired', 'bad_algorithm', () => forge({ alg: 'none' }, payload({ exp: 1 }))],
  // Key before signature and claims.
  [
    'kid unknown, signature bad, expired',
    'unknown_key',
    () => rsToken(HDR({ kid: 'nope' }), BODY({ exp: 1 }), other),
  ],
  ['keys unavailable, expired', 'keys_unavailable', () => rsToken(HDR(), BODY({ iss: DOWN, exp: 1 }))],
  // Signature before claims.
  ['signature of another key, expired', 'bad_signature', () => rsToken(HDR(), BODY({ exp: 1 }), other)],
  ['signature of another key, wrong aud', 'bad_signature', () => rsToken(HDR(), BODY({ aud: 'x' }), other)],
  // Claims in jose's order: typ, presence, iss, aud, iat, nbf, exp.
  ['typ wrong, expired', 'bad_claims', () => rsToken(HDR({ typ: 'at+jwt' }), BODY({ exp: 1 }))],
  ['exp missing, wrong aud', 'bad_claims', () => rsToken(HDR(), BODY({ exp: undefined, aud: 'x' }))],
  [
    'aud missing, exp missing',
    'bad_audience',
    () => rsToken(HDR(), BODY({ exp: undefined, aud: undefined })),
  ],
  ['wrong aud, expired', 'bad_audience', () => rsToken(HDR(), BODY({ aud: 'x', exp: 1 }))],
  ['nbf in the future, expired', 'not_yet_valid', () => rsToken(HDR(), BODY({ nbf: NOW_S + 3600, exp: 1 }))],
  ['expired', 'expired', () => rsToken(HDR(), BODY({ exp: 1 }))],
  // Claims before the policy; the request before everything.
  ['expired, route no rule grants', 'expired', () => rsToken(HDR(), BODY({ exp: 1 })), '/api/admin/settings'],
  ['valid, route no rule grants', 'forbidden', () => rsToken(HDR(), BODY()), '/api/admin/settings'],
  ['malformed token, ambiguous path', 'bad_request', () => 'x.y.z', '/api/flows%2Ffilter'],
  ['valid token, ambiguous path', 'bad_request', () => rsToken(HDR(), BODY()), '/api/flows/..%2Fadmin'],
  ['valid', 'ok', () => rsToken(HDR(), BODY())],
];

describe.each(VERIFIER_MODES)('verifier: %s', (verifier) => {
  it.each(CASES)('%s -> %s', async (_what, expected, make, path = '/api/flows/x') => {
    const engine = engines.get(verifier) as AuthzEngine;
    const d = await engine.decide(request('GET', path, { token: await make() }));
    expect(d.reason).toBe(expected);
    expect(d.status).toBe(STATUS_BY_REASON[expected]);
  });

  it('a missing token is judged after the path, before the policy', async () => {
    const engine = engines.get(verifier) as AuthzEngine;
    expect((await engine.decide(request('GET', '/api/flows%2Fx'))).reason).toBe('bad_request');
    expect((await engine.decide(request('GET', '/api/flows/x'))).reason).toBe('missing_token');
    expect((await engine.decide(request('GET', '/api/health'))).reason).toBe('ok');
  });
});
