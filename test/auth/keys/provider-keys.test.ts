/**
 * Key sources that are not a plain JWKS, and the Entra multi-tenant discovery: none may weaken
 * fail-closed behaviour. A bad key document never replaces a good key; an unknown kid, a junk
 * answer or an unreachable endpoint is a denial with the reason that says which.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AuthzEngine, type AuthzRequest } from '../../../src/auth/index.js';
import { type JwksServer, startJwksServer } from '../../helpers/jwks-server.js';
import { NOW_MS, NOW_S, type TestKey } from '../helpers/keys.js';
import {
  loadProviderFixture,
  loopbackFetch,
  loopbackPath,
  providerKey,
  publicPem,
  readmeBlock,
  signAlb,
  signCompact,
  tokenShape,
} from '../helpers/providers.js';

let server: JwksServer;
beforeAll(async () => {
  server = await startJwksServer();
});
afterAll(async () => {
  await server.close();
});

const FLOW = '/api/flows/0b7c1e5e-2f43-4c1e-9d3a-8a0c2a4c6e11';
const req = (token: string, header: boolean): AuthzRequest => ({
  method: 'GET',
  path: FLOW,
  query: null,
  host: null,
  authorization: header ? null : `Bearer ${token}`,
  cookie: null,
  tokenHeader: header ? token : null,
  src: null,
});

describe('aws-alb: a PEM per kid', () => {
  const fixture = loadProviderFixture('aws-alb');
  const keyUrl = (kid: string) => `https://public-keys.auth.elb.eu-west-1.amazonaws.com/${kid}`;
  let good: TestKey;
  let rotated: TestKey;
  let engine: AuthzEngine;
  const fetched: string[] = [];

  const token = (key: TestKey, name = 'user') => signAlb(tokenShape(fixture, name, NOW_S, key.kid), key);

  beforeAll(async () => {
    good = await providerKey('ES256', '11111111-1111-4111-8111-111111111111');
    rotated = await providerKey('ES256', '22222222-2222-4222-8222-222222222222');
    server.setDocument(loopbackPath(keyUrl(good.kid)), await publicPem(good), 'text/plain');
    engine = AuthzEngine.create(
      { ...readmeBlock('aws-alb'), policy: { preset: 'prefect' } },
      { now: () => NOW_MS, fetch: loopbackFetch(server.origin, fetched) },
    );
    await engine.start();
  });
  afterAll(() => engine.close());
  afterEach(() => server.setMode('ok'));

  it('fetches a kid once, from the region of the signer, and keeps it', async () => {
    expect((await engine.explain(req(token(good), true))).decision.reason).toBe('ok');
    expect((await engine.explain(req(token(good), true))).decision.reason).toBe('ok');
    expect(fetched.filter((u) => u.endsWith(good.kid))).toEqual([keyUrl(good.kid)]);
  });

  it('a junk answer for a known kid never replaces its key (it is not asked again)', async () => {
    server.setDocument(loopbackPath(keyUrl(good.kid)), 'not a key', 'text/plain');
    server.setMode('garbage');
    expect((await engine.explain(req(token(good), true))).decision.reason).toBe('ok');
    server.setDocument(loopbackPath(keyUrl(good.kid)), await publicPem(good), 'text/plain');
  });

  it('a new kid answered with junk is keys_unavailable (503), and not kept', async () => {
    server.setDocument(
      loopbackPath(keyUrl(rotated.kid)),
      '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n',
      'text/plain',
    );
    const d = (await engine.explain(req(token(rotated), true))).decision;
    expect([d.reason, d.status]).toEqual(['keys_unavailable', 503]);
  });

  it('a kid the endpoint does not know (404) is unknown_key (401)', async () => {
    const stranger = await providerKey('ES256', '33333333-3333-4333-8333-333333333333');
    const d = (await engine.explain(req(token(stranger), true))).decision;
    expect([d.reason, d.status]).toEqual(['unknown_key', 401]);
  });

  it('a kid that is not a plain identifier is refused before any fetch', async () => {
    const shape = tokenShape(fixture, 'user', NOW_S, '../../evil');
    const before = fetched.length;
    const d = (await engine.explain(req(signAlb(shape, good), true))).decision;
    expect(d.allow).toBe(false);
    expect(d.reason).toBe('malformed_token');
    expect(fetched.length).toBe(before);
  });

  it('a PEM of another curve is refused (keys_unavailable)', async () => {
    const p384 = await providerKey('ES384', '44444444-4444-4444-8444-444444444444');
    server.setDocument(loopbackPath(keyUrl(p384.kid)), await publicPem(p384), 'text/plain');
    const d = (await engine.explain(req(token(p384), true))).decision;
    expect(d.reason).toBe('keys_unavailable');
  });

  it('an ALB token is recognised by its signer wherever it travels, padded or not', async () => {
    const d = (await engine.explain(req(token(good), false))).decision;
    // Bearer is read too, and routes to the ALB path by its `signer`: still verified, never loosened.
    expect(d.reason).toBe('ok');
    const plain = await signCompact(tokenShape(fixture, 'user', NOW_S, good.kid), good);
    // The same claims as a standard compact JWS: also the ALB path (the header has `signer`).
    expect((await engine.explain(req(plain, true))).decision.reason).toBe('ok');
  });
});

describe('entra: several tenants through the {tenantid} discovery document', () => {
  const fixture = loadProviderFixture('entra');
  const tenant = fixture.tenant as string;
  const other = fixture.otherTenant as string;
  let key: TestKey;
  let engine: AuthzEngine;

  beforeAll(async () => {
    key = await providerKey('RS256', 'KQ2tAcrE7lBaViGmN7Ddx1vG3R8');
    const jwksUri = 'https://login.microsoftonline.com/organizations/discovery/v2.0/keys';
    server.setDocument(
      loopbackPath('https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration'),
      { ...(fixture.discovery as Record<string, unknown>), jwks_uri: jwksUri },
    );
    server.setDocument(loopbackPath(jwksUri), { keys: [key.jwk] });
    const block = readmeBlock('entra') as { issuers: Array<Record<string, unknown>> };
    const issuer = { ...block.issuers[0], entra: { tenants: [tenant, other] } };
    engine = AuthzEngine.create(
      { issuers: [issuer], policy: { preset: 'prefect' } },
      { now: () => NOW_MS, fetch: loopbackFetch(server.origin) },
    );
    await engine.start();
  });
  afterAll(() => engine.close());

  it('a template issuer is accepted for discovery, and both tenants verify', async () => {
    expect(engine.ready()).toBe(true);
    const mine = await signCompact(tokenShape(fixture, 'access-v2', NOW_S, key.kid), key);
    const theirs = await signCompact(tokenShape(fixture, 'other-tenant', NOW_S, key.kid), key);
    expect((await engine.explain(req(mine, false))).decision.reason).toBe('ok');
    expect((await engine.explain(req(theirs, false))).decision.reason).toBe('ok');
  });

  it('a third tenant is unknown; a tid that is not the tenant of iss is bad_claims', async () => {
    const shape = tokenShape(fixture, 'access-v2', NOW_S, key.kid);
    const third = 'f8cdef31-a31e-4b4a-93e4-5f571e91255a';
    const stranger = {
      ...shape,
      payload: { ...shape.payload, iss: `https://login.microsoftonline.com/${third}/v2.0`, tid: third },
    };
    expect((await engine.explain(req(await signCompact(stranger, key), false))).decision.reason).toBe(
      'unknown_issuer',
    );
    const crossed = { ...shape, payload: { ...shape.payload, tid: other } };
    expect((await engine.explain(req(await signCompact(crossed, key), false))).decision.reason).toBe(
      'bad_claims',
    );
  });
});

describe('entra: a discovery document naming another issuer is refused', () => {
  it('keys stay unavailable, tokens get 503', async () => {
    const fixture = loadProviderFixture('entra');
    const key = await providerKey('RS256', 'k-other');
    const tenant = fixture.tenant as string;
    server.setDocument(
      loopbackPath(`https://login.microsoftonline.com/${tenant}/v2.0/.well-known/openid-configuration`),
      {
        issuer: 'https://login.microsoftonline.com/{tenantid}/v2.0/evil',
        jwks_uri: 'https://login.microsoftonline.com/x/keys',
      },
    );
    const engine = AuthzEngine.create(
      { ...readmeBlock('entra'), policy: { preset: 'prefect' } },
      { now: () => NOW_MS, fetch: loopbackFetch(server.origin) },
    );
    try {
      await engine.start();
      expect(engine.ready()).toBe(false);
      const token = await signCompact(tokenShape(fixture, 'access-v2', NOW_S, key.kid), key);
      expect((await engine.explain(req(token, false))).decision.status).toBe(503);
    } finally {
      engine.close();
      server.setDocument(
        loopbackPath(`https://login.microsoftonline.com/${tenant}/v2.0/.well-known/openid-configuration`),
        null,
      );
    }
  });
});

describe('cloudflare-access: the certs document', () => {
  it('keeps its keys when the document turns to junk, and reads the CF_Authorization cookie', async () => {
    const fixture = loadProviderFixture('cloudflare-access');
    const key = await providerKey('RS256', 'cf-1');
    const certs = `${fixture.issuer}/cdn-cgi/access/certs`;
    server.setDocument(loopbackPath(certs), {
      keys: [key.jwk],
      public_cert: { kid: key.kid, cert: 'x' },
      public_certs: [],
    });
    const engine = AuthzEngine.create(
      { ...readmeBlock('cloudflare-access'), policy: { preset: 'prefect' } },
      { now: () => NOW_MS, fetch: loopbackFetch(server.origin) },
    );
    try {
      await engine.start();
      const token = await signCompact(tokenShape(fixture, 'user', NOW_S, key.kid), key);
      server.setDocument(loopbackPath(certs), 'not json', 'application/json');
      await engine.refreshKeys();
      expect((await engine.explain(req(token, true))).decision.reason).toBe('ok');
      const viaCookie: AuthzRequest = { ...req(token, true), tokenHeader: null, cookie: token };
      expect((await engine.explain(viaCookie)).decision.reason).toBe('ok');
    } finally {
      engine.close();
    }
  });
});
