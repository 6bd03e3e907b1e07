// Client certificates through real HAProxy with TLS: HAProxy verifies the certificate
// (`verify required`, or `optional` with errors ignored to let an unverified one through) and
// hands ssl_c_used / ssl_c_verify / ssl_c_s_dn / ssl_c_der,sha2(256) to the agent, which enforces
// certificate-bound tokens (RFC 8705 `cnf.x5t#S256`) and rules that require a certificate.
// Certificates are made in the test with the openssl CLI.
import { request as httpsRequest } from 'node:https';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAuthorizeHandler } from '../../src/agent/handler.js';
import { AuthzEngine } from '../../src/auth/index.js';
import { SpopServer } from '../../src/spop/index.js';
import { jwks, makeKey, sign, type TestKey } from '../auth/helpers/keys.js';
import { HAPROXY_GLOBALS, type HaproxyInstance, requireHaproxy, startHaproxy } from '../helpers/haproxy.js';
import { makePki, type TestCert, type TestPki } from '../helpers/tls-certs.js';

const { haproxy, describeHaproxy } = requireHaproxy();

const ISS = 'https://idp.example.com';

const SPOE_CONF = `[auth]
spoe-agent auth-agent
  messages authorize
  option var-prefix auth
  option set-on-error error
  timeout hello 2s
  timeout idle 30s
  timeout processing 2s
  use-backend agents
spoe-message authorize
  args method=method path=path authorization=req.hdr(authorization) ssl_c_used=ssl_c_used ssl_c_verify=ssl_c_verify ssl_c_s_dn=ssl_c_s_dn ssl_c_sha256=ssl_c_der,sha2(256)
  event on-frontend-http-request
`;

const frontend = (name: string, verify: string) => `
frontend ${name}
  bind 127.0.0.1:{{port:${name}}} ssl crt {{file:server.pem}} ca-file {{file:ca.pem}} ${verify}
  filter spoe engine auth config {{spoe}}
  http-request deny deny_status 401 content-type text/plain lf-string "deny %[var(txn.auth.reason)]" if !{ var(txn.auth.allow) -m bool }
  http-request return status 200 content-type text/plain lf-string "allow %[var(txn.auth.sub)]"
`;

describeHaproxy(`client certificates through HAProxy ${haproxy?.version} with TLS`, () => {
  let pki: TestPki;
  let alice: TestCert;
  let bob: TestCert;
  let stranger: TestCert;
  let key: TestKey;
  let engine: AuthzEngine;
  let server: SpopServer;
  let hap: HaproxyInstance;

  beforeAll(async () => {
    pki = makePki();
    alice = pki.client('alice');
    bob = pki.client('bob');
    stranger = pki.client('alice', { otherCa: true });
    key = await makeKey('ES256', 'k1');
    engine = AuthzEngine.create({
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
          {
            name: 'ops-console',
            path: '/ops/**',
            anonymous: true,
            clientCert: { subjects: ['/O=Acme/CN=alice'] },
          },
          { name: 'api', path: '/api/**' },
        ],
      },
    });
    await engine.start();
    server = new SpopServer({
      handler: createAuthorizeHandler({ engine, audit: 'off', auditLogger: pino({ level: 'silent' }) }),
      handlerTimeoutMs: 1000,
    });
    const agent = await server.listen(0, '127.0.0.1');
    hap = await startHaproxy({
      cfg: `${HAPROXY_GLOBALS}${frontend('strict', 'verify required')}${frontend('lax', 'verify optional ca-ignore-err all crt-ignore-err all')}
backend agents
  mode tcp
  timeout connect 1s
  timeout server 30s
  server a1 127.0.0.1:{{port:agent}}
`,
      spoeConf: SPOE_CONF,
      ports: { agent: agent.port },
      files: { 'server.pem': pki.serverPem, 'ca.pem': pki.caCert },
    });
  }, 60_000);

  afterAll(async () => {
    await hap?.stop();
    await server?.close();
    engine?.close();
    pki?.cleanup();
  });

  /** GET `path` on frontend `fe` over TLS with `cert` (or none): status and body. */
  function get(
    fe: 'strict' | 'lax',
    path: string,
    cert: TestCert | null,
    token?: string,
  ): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: hap.ports[fe],
          path,
          method: 'GET',
          ca: pki.caCert,
          servername: 'localhost',
          agent: false,
          ...(cert === null ? {} : { cert: cert.cert, key: cert.key }),
          headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c) => {
            body += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.end();
    });
  }

  const bound = (cert: TestCert, sub = 'svc-alice') =>
    sign(key, { iss: ISS, aud: 'prefect', sub, claims: { cnf: { 'x5t#S256': cert.x5tS256 } } });

  it('a certificate-bound token passes with its certificate, and only with it', async () => {
    const token = await bound(alice);
    expect(await get('strict', '/api/flows', alice, token)).toEqual({ status: 200, body: 'allow svc-alice' });
    // Same token, another certificate of the same CA: a stolen token replayed elsewhere.
    expect(await get('strict', '/api/flows', bob, token)).toEqual({
      status: 401,
      body: 'deny cert_mismatch',
    });
    // And back: the cached identity still needs the right certificate.
    expect(await get('strict', '/api/flows', alice, token)).toEqual({ status: 200, body: 'allow svc-alice' });
  });

  it('without a certificate, or with one HAProxy could not verify, a bound token is refused', async () => {
    const token = await bound(alice);
    expect(await get('lax', '/api/flows', null, token)).toEqual({ status: 401, body: 'deny cert_mismatch' });
    // Same subject, same key type, another CA: HAProxy reports ssl_c_verify != 0.
    expect(await get('lax', '/api/flows', stranger, token)).toEqual({
      status: 401,
      body: 'deny cert_mismatch',
    });
  });

  it('an unbound token needs no certificate', async () => {
    const token = await sign(key, { iss: ISS, aud: 'prefect', sub: 'plain' });
    expect(await get('lax', '/api/flows', null, token)).toEqual({ status: 200, body: 'allow plain' });
    expect(await get('strict', '/api/flows', bob, token)).toEqual({ status: 200, body: 'allow plain' });
  });

  it('verify required: HAProxy refuses the handshake without a certificate', async () => {
    await expect(get('strict', '/api/flows', null)).rejects.toThrow();
  });

  it('a rule can require a verified certificate with a given subject', async () => {
    expect((await get('strict', '/ops/console', alice)).status).toBe(200);
    expect(await get('strict', '/ops/console', bob)).toEqual({ status: 401, body: 'deny missing_token' });
    expect((await get('lax', '/ops/console', stranger)).status).toBe(401);
    expect((await get('lax', '/ops/console', null)).status).toBe(401);
  });
});
