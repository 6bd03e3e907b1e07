/**
 * Provider profiles against tokens shaped as each provider issues them
 * (test/fixtures/providers/), with the README's configuration block for that provider, key
 * documents in the provider's own format served from loopback at the provider's real paths,
 * and the engine's real verification path. One table per provider: the valid tokens allowed
 * with the right subject and roles, the typical mistakes denied with the right reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuthzEngine, type AuthzRequest, AuthzEngine as Engine } from '../../src/auth/index.js';
import { type JwksServer, startJwksServer } from '../helpers/jwks-server.js';
import { NOW_MS, NOW_S, type TestKey } from './helpers/keys.js';
import {
  loadProviderFixture,
  loopbackFetch,
  loopbackPath,
  type ProviderFixture,
  providerKey,
  publicPem,
  readmeBlock,
  signAlb,
  signCompact,
  tokenShape,
} from './helpers/providers.js';

let server: JwksServer;
beforeAll(async () => {
  server = await startJwksServer();
});
afterAll(async () => {
  await server.close();
});

const FLOW = '/api/flows/0b7c1e5e-2f43-4c1e-9d3a-8a0c2a4c6e11';

function request(profileHeader: boolean, token: string): AuthzRequest {
  return {
    method: 'GET',
    path: FLOW,
    query: null,
    host: 'prefect.example.com',
    authorization: profileHeader ? null : `Bearer ${token}`,
    cookie: null,
    tokenHeader: profileHeader ? token : null,
    src: '203.0.113.7',
  };
}

function engineFor(config: Record<string, unknown>): AuthzEngine {
  return Engine.create(config, { now: () => NOW_MS, fetch: loopbackFetch(server.origin) });
}

function publish(url: string, body: unknown, contentType?: string): void {
  server.setDocument(loopbackPath(url), body, contentType);
}

function oidc(issuer: string, jwksUri: string, key: TestKey, extra: Record<string, unknown> = {}): void {
  publish(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`, {
    issuer,
    jwks_uri: jwksUri,
    ...extra,
  });
  publish(jwksUri, { keys: [key.jwk] });
}

/** The roles the trace lists for the verified token ("roles from claims [..]: [a, b]"). */
function tracedRoles(trace: readonly string[]): string[] | null {
  const line = trace.find((l) => l.startsWith('roles from claims'));
  const m = line === undefined ? null : /: \[(.*)\]$/.exec(line);
  return m === null ? null : (m[1] as string).split(', ').filter((r) => r !== '');
}

interface ProviderTable {
  readonly name: string;
  readonly alg: 'RS256' | 'ES256';
  readonly kid: string;
  /** Publishes the provider's key documents for `key`. */
  readonly publish: (fixture: ProviderFixture, key: TestKey) => Promise<void> | void;
  /** The token travels in the profile's header rather than Authorization. */
  readonly header?: boolean;
  readonly encode?: 'alb';
}

const TABLES: readonly ProviderTable[] = [
  {
    name: 'keycloak',
    alg: 'RS256',
    kid: 'fJtvQ2r1O6xQ5u8d0bqM2l9X1vF4sZ8yT3wK7nH5cA0',
    publish: (f, k) => oidc(f.issuer, `${f.issuer}/protocol/openid-connect/certs`, k),
  },
  {
    name: 'okta',
    alg: 'RS256',
    kid: 'W9uo6kOl9qkHhIaFZQ1HcXb3kCMOlB6EwCJnKyMjaKc',
    publish: (f, k) => oidc(f.issuer, `${f.issuer}/v1/keys`, k),
  },
  {
    name: 'auth0',
    alg: 'RS256',
    kid: 'tXWK0n6z9CjvXgGZQGmYw',
    publish: (f, k) => oidc(f.issuer, `${f.issuer}.well-known/jwks.json`, k),
  },
  {
    name: 'entra',
    alg: 'RS256',
    kid: 'KQ2tAcrE7lBaViGmN7Ddx1vG3R8',
    publish: (f, k) => {
      const tid = f.tenant as string;
      oidc(f.issuer, `https://login.microsoftonline.com/${tid}/discovery/v2.0/keys`, k);
    },
  },
  {
    name: 'cognito',
    alg: 'RS256',
    kid: 'abcdefghijklmnopqrsexample=',
    publish: (f, k) => publish(`${f.issuer}/.well-known/jwks.json`, { keys: [k.jwk] }),
  },
  {
    name: 'google',
    alg: 'RS256',
    kid: '6f7254101f56e41cf35c9926de84a2d552b4c6f1',
    publish: (_f, k) => publish('https://www.googleapis.com/oauth2/v3/certs', { keys: [k.jwk] }),
  },
  {
    name: 'cloudflare-access',
    alg: 'RS256',
    kid: '1a1c3986a44ce6390be42ec772b031df8f433fdc71716db821dc0c39af3bce49',
    header: true,
    publish: async (f, k) => {
      // The certs document: JWKs plus the same keys as PEM certificates, which we ignore.
      const pem = await publicPem(k);
      publish(`${f.issuer}/cdn-cgi/access/certs`, {
        keys: [k.jwk],
        public_cert: { kid: k.kid, cert: pem },
        public_certs: [{ kid: k.kid, cert: pem }],
      });
    },
  },
  {
    name: 'aws-alb',
    alg: 'ES256',
    kid: '7e1c2b4a-3d5f-4e6a-9b8c-0d1e2f3a4b5c',
    header: true,
    encode: 'alb',
    publish: async (_f, k) => {
      publish(
        `https://public-keys.auth.elb.eu-west-1.amazonaws.com/${k.kid}`,
        await publicPem(k),
        'text/plain',
      );
    },
  },
  {
    name: 'google-iap',
    alg: 'ES256',
    kid: '0oeLcQ',
    header: true,
    publish: (_f, k) => publish('https://www.gstatic.com/iap/verify/public_key-jwk', { keys: [k.jwk] }),
  },
  {
    name: 'kubernetes',
    alg: 'RS256',
    kid: 'OAjVVaejWFc0Yt9ykr0_8lMMuRNs67OXTWHsN02Pkyw',
    publish: (f, k) => oidc(f.issuer, `${f.issuer}/keys`, k),
  },
  {
    name: 'github-actions',
    alg: 'RS256',
    kid: 'cc413527-173f-5a05-976e-9c52b1d7b431',
    publish: (f, k) => oidc(f.issuer, `${f.issuer}/.well-known/jwks`, k),
  },
];

for (const table of TABLES) {
  describe(`profile ${table.name}`, () => {
    const fixture = loadProviderFixture(table.name);
    let key: TestKey;
    let engine: AuthzEngine;

    beforeAll(async () => {
      key = await providerKey(table.alg, table.kid);
      await table.publish(fixture, key);
      engine = engineFor({ ...readmeBlock(table.name), policy: { preset: 'prefect' } });
      await engine.start();
    });
    afterAll(() => engine.close());

    it.each(Object.entries(fixture.tokens))('%s', async (name, c) => {
      const shape = tokenShape(fixture, name, NOW_S, key.kid);
      const token = table.encode === 'alb' ? signAlb(shape, key) : await signCompact(shape, key);
      const { decision, trace } = await engine.explain(request(table.header === true, token));
      const want = c.expect;
      expect({ allow: decision.allow, reason: decision.reason }, trace.join('\n')).toEqual({
        allow: want.allow,
        reason: want.reason ?? 'ok',
      });
      if (want.sub !== undefined) expect(decision.sub ?? '').toBe(want.sub);
      if (want.roles !== undefined) expect(tracedRoles(trace)?.sort()).toEqual([...want.roles].sort());
      // The decision path (token cache, coalescing) gives the same answer as explain.
      const decided = await engine.decide(request(table.header === true, token));
      expect(decided.reason).toBe(decision.reason);
    });
  });
}
