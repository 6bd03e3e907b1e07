import * as jose from 'jose';
import { describe, expect, it } from 'vitest';
import { DEV_PRIVATE_JWK, DEV_PUBLIC_JWK } from '../../../src/auth/dev/dev-keys.js';
import {
  AuthzEngine,
  DEV_AUDIENCE,
  DEV_ISSUER,
  DEV_PUBLIC_JWKS,
  devIssuerConfig,
  isDevIssuer,
  mintDevToken,
} from '../../../src/auth/index.js';
import { NOW_MS } from '../helpers/keys.js';
import { request } from '../helpers/request.js';

describe('development issuer', () => {
  it('ships a matching ES256 key pair whose kid is its thumbprint', async () => {
    expect(DEV_PRIVATE_JWK).toMatchObject({
      kty: 'EC',
      crv: 'P-256',
      x: DEV_PUBLIC_JWK.x,
      y: DEV_PUBLIC_JWK.y,
    });
    expect(DEV_PUBLIC_JWK).not.toHaveProperty('d');
    expect(DEV_PUBLIC_JWKS.keys[0]).not.toHaveProperty('d');
    expect(await jose.calculateJwkThumbprint({ ...DEV_PUBLIC_JWK })).toBe(DEV_PUBLIC_JWK.kid);
  });

  it('mints tokens the dev issuer config verifies, roles taken as-is', async () => {
    const e = AuthzEngine.create({ issuers: [devIssuerConfig()] }, { now: () => NOW_MS });
    const token = await mintDevToken({ sub: 'dev-user', roles: ['operator'], now: NOW_MS, ttlSeconds: 60 });
    const payload = jose.decodeJwt(token);
    expect(payload).toMatchObject({
      iss: DEV_ISSUER,
      aud: DEV_AUDIENCE,
      sub: 'dev-user',
      roles: ['operator'],
    });
    expect(payload.exp).toBe(NOW_MS / 1000 + 60);
    expect(isDevIssuer(payload.iss as string)).toBe(true);
    expect(await e.decide(request('POST', '/api/deployments/d/create_flow_run', { token }))).toMatchObject({
      allow: true,
      sub: 'dev-user',
      role: 'operator',
      iss: DEV_ISSUER,
    });
  });

  it('honours ttl, audience, scope, extra claims and nbf', async () => {
    const e = AuthzEngine.create({ issuers: [devIssuerConfig()] }, { now: () => NOW_MS + 120_000 });
    const expired = await mintDevToken({ sub: 'a', roles: ['viewer'], now: NOW_MS, ttlSeconds: 60 });
    expect(await e.decide(request('GET', '/api/flows', { token: expired }))).toMatchObject({
      reason: 'expired',
    });
    const wrongAud = await mintDevToken({ sub: 'a', now: NOW_MS + 120_000, audience: 'grafana' });
    expect(await e.decide(request('GET', '/api/flows', { token: wrongAud }))).toMatchObject({
      reason: 'bad_audience',
    });
    const early = await mintDevToken({ sub: 'a', now: NOW_MS + 120_000, notBeforeSeconds: 600 });
    expect(await e.decide(request('GET', '/api/flows', { token: early }))).toMatchObject({
      reason: 'not_yet_valid',
    });
    const extra = jose.decodeJwt(
      await mintDevToken({
        sub: 'a',
        scope: 'prefect:read',
        claims: { email: 'a@example.com', sub: 'ignored' },
      }),
    );
    expect(extra).toMatchObject({ scope: 'prefect:read', email: 'a@example.com', sub: 'a' });
  });
});
