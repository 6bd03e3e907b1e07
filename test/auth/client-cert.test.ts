/**
 * Certificate-bound tokens (RFC 8705 `cnf.x5t#S256`) and rules that read the client certificate,
 * in the engine: every path (fresh verification, token cache, remembered decisions, explain)
 * sees the binding, and a remembered decision never crosses certificates.
 */
import { describe, expect, it } from 'vitest';
import type { ClientCertificate } from '../../src/auth/client-cert.js';
import { bindingProblem, certThumbprint, sha256Arg } from '../../src/auth/client-cert.js';
import { AuthzEngine, type AuthzRequest } from '../../src/auth/index.js';
import { jwks, makeKey, NOW_MS, sign } from './helpers/keys.js';
import { request } from './helpers/request.js';

const ISS = 'https://idp.example.com';
const ALICE: ClientCertificate = { verified: true, subject: '/O=Acme/CN=alice', sha256: 'A'.repeat(43) };
const BOB: ClientCertificate = { verified: true, subject: '/O=Acme/CN=bob', sha256: 'B'.repeat(43) };

const withCert = (req: AuthzRequest, cert: ClientCertificate | null): AuthzRequest => ({
  ...req,
  clientCert: cert,
});

describe('client certificates in the engine', async () => {
  const key = await makeKey('ES256', 'k1');
  const engine = AuthzEngine.create(
    {
      issuers: [
        {
          id: 'idp',
          issuer: ISS,
          audiences: ['prefect'],
          algorithms: ['ES256'],
          keys: { type: 'jwks', jwks: jwks(key) },
          roles: { claims: ['roles'], passthrough: true },
        },
      ],
      policy: {
        preset: 'none',
        rules: [
          { name: 'ops', path: '/ops/**', clientCert: { subjects: ['/O=Acme/CN=alice'] } },
          { name: 'mtls-only', path: '/mtls/**', clientCert: true },
          { name: 'api', path: '/api/**' },
        ],
      },
    },
    { now: () => NOW_MS },
  );
  await engine.start();
  const bound = await sign(key, { iss: ISS, aud: 'prefect', claims: { cnf: { 'x5t#S256': ALICE.sha256 } } });
  const plain = await sign(key, { iss: ISS, aud: 'prefect' });

  it('a bound token: allowed with its certificate on every path, cert_mismatch otherwise', async () => {
    const api = request('GET', '/api/flows', { token: bound });
    expect((await engine.decide(withCert(api, ALICE))).reason).toBe('ok');
    // Now cached, and with a remembered decision for /api/flows: neither may skip the binding.
    expect((await engine.decide(withCert(api, BOB))).reason).toBe('cert_mismatch');
    expect((await engine.decide(withCert(api, null))).reason).toBe('cert_mismatch');
    expect((await engine.decide(withCert(api, { ...ALICE, verified: false }))).reason).toBe('cert_mismatch');
    expect((await engine.decide(withCert(api, ALICE))).reason).toBe('ok');
    const { decision, trace } = await engine.explain(withCert(api, BOB));
    expect([decision.reason, decision.status]).toEqual(['cert_mismatch', 401]);
    expect(trace.join('\n')).toMatch(/bound to another client certificate/);
  });

  it('rules: a verified certificate, with a subject when listed; remembered decisions stay per certificate', async () => {
    const ops = request('GET', '/ops/panel', { token: plain });
    expect((await engine.decide(withCert(ops, ALICE))).allow).toBe(true);
    expect((await engine.decide(withCert(ops, BOB))).reason).toBe('forbidden');
    expect((await engine.decide(withCert(ops, ALICE))).allow).toBe(true);
    expect((await engine.decide(withCert(ops, null))).reason).toBe('forbidden');
    const mtls = request('GET', '/mtls/x', { token: plain });
    expect((await engine.decide(withCert(mtls, BOB))).allow).toBe(true);
    expect((await engine.decide(withCert(mtls, { ...BOB, verified: false }))).reason).toBe('forbidden');
  });
});

describe('client-cert helpers', () => {
  it('certThumbprint reads cnf x5t#S256 only', () => {
    expect(certThumbprint({ cnf: { 'x5t#S256': 'abc' } })).toBe('abc');
    expect(certThumbprint({ cnf: { jkt: 'abc' } })).toBeNull();
    expect(certThumbprint({ cnf: 'abc' })).toBeNull();
    expect(certThumbprint({})).toBeNull();
  });
  it('bindingProblem and sha256Arg', () => {
    expect(bindingProblem(ALICE.sha256 as string, ALICE)).toBeNull();
    expect(bindingProblem(ALICE.sha256 as string, { ...ALICE, sha256: null })).toMatch(/no ssl_c_sha256/);
    expect(sha256Arg('zz'.repeat(32))).toBeNull();
    expect(sha256Arg(new Uint8Array(32))).toBe(Buffer.alloc(32).toString('base64url'));
  });
});
