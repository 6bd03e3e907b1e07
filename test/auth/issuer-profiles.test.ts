import { describe, expect, it } from 'vitest';
import { AuthError, parseAuthzConfig } from '../../src/auth/index.js';
import { applyProfile, describeProfile } from '../../src/auth/issuer-profiles.js';
import { discoveryIssuerMatches } from '../../src/auth/keys/remote-key-source.js';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const OTHER = '9188040d-6c67-4c5b-b112-36a304b66dad';
const ARN = 'arn:aws:elasticloadbalancing:eu-west-1:111122223333:loadbalancer/app/prefect/50dc6c495c0c9188';

function parse(issuer: Record<string, unknown>, rest: Record<string, unknown> = {}) {
  return parseAuthzConfig({ issuers: [{ id: 'p', ...issuer }], ...rest });
}

describe('profiles fill in what is left out', () => {
  it('explicit settings win, key by key (roles one level down)', () => {
    const c = parse({
      profile: 'keycloak',
      issuer: 'https://sso.example.com/realms/r',
      audiences: ['api'],
      algorithms: ['ES256'],
      roles: { map: { ops: 'operator' } },
    });
    const i = c.issuers[0]!;
    expect(i.algorithms).toEqual(['ES256']);
    expect(i.keys).toMatchObject({ type: 'oidc' });
    expect(i.roles.claims).toEqual(['realm_access.roles', 'resource_access.api.roles', 'groups', 'scope']);
    expect(i.roles.map).toEqual({ ops: 'operator' });
    expect(i.claimValues).toEqual({ typ: 'Bearer' });
    const relaxed = parse({
      profile: 'keycloak',
      issuer: 'https://sso.example.com/realms/r',
      audiences: ['api'],
      claimValues: {},
    });
    expect(relaxed.issuers[0]!.claimValues).toEqual({});
  });

  it('reports which keys it set', () => {
    const { set } = applyProfile({
      id: 'x',
      profile: 'cognito',
      issuer: 'https://cognito-idp.eu-west-1.amazonaws.com/p',
      audiences: ['c'],
      algorithms: ['RS256'],
    });
    expect(set).toEqual(['keys', 'audienceClaim', 'claimValues', 'roles.claims']);
    expect(applyProfile({ id: 'x', issuer: 'i' }).set).toEqual([]);
  });

  it('entra: v2 issuer, v1 and v2 aliases for every tenant, tenant or organizations discovery', () => {
    const one = parse({ profile: 'entra', entra: { tenants: [TENANT] }, audiences: ['api://prefect'] })
      .issuers[0]!;
    expect(one.issuer).toBe(`https://login.microsoftonline.com/${TENANT}/v2.0`);
    expect(one.issuerAliases).toEqual([`https://sts.windows.net/${TENANT}/`]);
    expect(one.keys).toMatchObject({
      discoveryUrl: `https://login.microsoftonline.com/${TENANT}/v2.0/.well-known/openid-configuration`,
    });
    const two = parse({ profile: 'entra', entra: { tenants: [TENANT, OTHER] }, audiences: ['api://prefect'] })
      .issuers[0]!;
    expect(two.issuerAliases).toHaveLength(3);
    expect(two.keys).toMatchObject({
      discoveryUrl: 'https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration',
    });
  });

  it('aws-alb: the key endpoint of the signer region (GovCloud: its S3 bucket); an edge header', () => {
    const c = parse({
      profile: 'aws-alb',
      issuer: 'https://idp.example.com',
      audiences: ['client'],
      alb: { signers: [ARN] },
    });
    expect(c.issuers[0]!.keys).toMatchObject({
      type: 'pem-url',
      url: 'https://public-keys.auth.elb.eu-west-1.amazonaws.com/{kid}',
    });
    expect(c.tokens.header).toBe('x-amzn-oidc-data');
    const gov = parse({
      profile: 'aws-alb',
      issuer: 'https://idp.example.com',
      audiences: ['client'],
      alb: { signers: [ARN], region: 'us-gov-west-1' },
    });
    expect(gov.issuers[0]!.keys).toMatchObject({
      url: 'https://s3-us-gov-west-1.amazonaws.com/aws-elb-public-keys-prod-us-gov-west-1/{kid}',
    });
  });

  it('an explicit tokens.header wins over the profile; two edges wanting two headers must choose', () => {
    const cf = {
      id: 'cf',
      profile: 'cloudflare-access',
      issuer: 'https://acme.cloudflareaccess.com',
      audiences: ['tag'],
    };
    const iap = { id: 'iap', profile: 'google-iap', audiences: ['/projects/1/apps/x'] };
    expect(parseAuthzConfig({ issuers: [cf], tokens: { header: 'x-token' } }).tokens).toMatchObject({
      header: 'x-token',
      cookie: 'CF_Authorization',
    });
    expect(() => parseAuthzConfig({ issuers: [cf, iap] })).toThrow(
      /tokens.header: profiles cloudflare-access, google-iap/,
    );
    expect(
      parseAuthzConfig({ issuers: [cf, iap], tokens: { header: 'Cf-Access-Jwt-Assertion' } }).issuers,
    ).toHaveLength(2);
  });

  it('names what a profile still needs', () => {
    for (const [issuer, path] of [
      [{ profile: 'entra', audiences: ['a'] }, 'issuers.0.entra'],
      [{ profile: 'aws-alb', issuer: 'https://i', audiences: ['a'] }, 'issuers.0.alb'],
      [{ profile: 'cognito', audiences: ['a'] }, 'issuers.0.issuer'],
      [{ profile: 'entra', entra: { tenants: ['common'] }, audiences: ['a'] }, 'issuers.0.entra.tenants.0'],
    ] as const) {
      const err = (() => {
        try {
          parse(issuer);
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err).toBeInstanceOf(AuthError);
      expect((err as AuthError).issues.map((i) => i.path)).toContain(path);
    }
  });

  it('describeProfile lists the settings that are the profile s', () => {
    const i = parse({
      profile: 'google-iap',
      audiences: ['/projects/1/apps/x'],
      roles: { claims: ['email', 'hd'] },
    }).issuers[0]!;
    const lines = describeProfile(i);
    expect(lines).toContain('issuer="https://cloud.google.com/iap"');
    expect(lines).toContain('maxTokenAgeSeconds=600');
    expect(lines.some((l) => l.startsWith('roles.claims'))).toBe(false);
    expect(lines.some((l) => l.startsWith('tokens.header=x-goog-iap-jwt-assertion'))).toBe(true);
  });
});

describe('discovery issuer templates ({tenantid})', () => {
  const v2 = (t: string) => `https://login.microsoftonline.com/${t}/v2.0`;
  it.each([
    [v2(TENANT), [v2(TENANT)], true],
    [
      'https://login.microsoftonline.com/{tenantid}/v2.0',
      [v2(TENANT), `https://sts.windows.net/${TENANT}/`],
      true,
    ],
    [
      'https://login.microsoftonline.com/{tenantid}/v2.0',
      ['https://login.microsoftonline.com/a/b/v2.0'],
      false,
    ],
    ['https://login.microsoftonline.com/{tenantid}/v2.0/evil', [v2(TENANT)], false],
    ['https://evil.example.com/{tenantid}/v2.0', [v2(TENANT)], false],
    ['{tenantid}', [v2(TENANT)], false],
    [42, [v2(TENANT)], false],
  ])('%s against %j: %s', (doc, isses, ok) => {
    expect(discoveryIssuerMatches(doc, isses)).toBe(ok);
  });
});
