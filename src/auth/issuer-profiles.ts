/**
 * Provider profiles: `issuers[].profile` fills in what a provider documents (where its token
 * travels, how its audience is checked, which claims hold roles and scopes, where its keys are
 * and in which format) so one short block configures an issuer. A profile only fills settings
 * the issuer leaves out: anything written explicitly wins. The sources are named per profile;
 * the token shapes they describe are in test/fixtures/providers/.
 */

export const PROFILES = [
  'generic',
  'keycloak',
  'okta',
  'entra',
  'auth0',
  'cognito',
  'google',
  'cloudflare-access',
  'aws-alb',
  'google-iap',
  'kubernetes',
  'github-actions',
] as const;
export type Profile = (typeof PROFILES)[number];

/** Where a profile's token travels, when not in `Authorization: Bearer`. */
export interface ProfileTokenSource {
  readonly header?: string;
  readonly cookie?: string;
}

type Raw = Record<string, unknown>;

const ENTRA_LOGIN = 'https://login.microsoftonline.com';
/** Tenant ids are GUIDs (Entra access token claims reference: `tid`). */
export const TENANT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id> */
const ALB_ARN =
  /^arn:aws[a-z-]*:elasticloadbalancing:([a-z0-9-]+):\d{12}:loadbalancer\/app\/[^/]+\/[0-9a-f]+$/;

export function entraV2Issuer(tenant: string): string {
  return `${ENTRA_LOGIN}/${tenant}/v2.0`;
}
export function entraV1Issuer(tenant: string): string {
  return `https://sts.windows.net/${tenant}/`;
}

/** The region of an ALB ARN, or null. */
export function albRegion(arn: string): string | null {
  return ALB_ARN.exec(arn)?.[1] ?? null;
}

/** The ALB public key endpoint of a region (ELB guide, "User claims encoding and signature verification"). */
export function albKeyUrl(region: string): string {
  return region.startsWith('us-gov-')
    ? `https://s3-${region}.amazonaws.com/aws-elb-public-keys-prod-${region}/{kid}`
    : `https://public-keys.auth.elb.${region}.amazonaws.com/{kid}`;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/**
 * The settings a profile supplies for one issuer, computed from what the issuer does say (its
 * issuer URL, audiences, tenant, signer). Unknown or missing inputs yield fewer defaults; the
 * schema then names what is still missing.
 */
export function profileDefaults(profile: Profile, issuer: Raw): Raw {
  const iss = typeof issuer.issuer === 'string' ? issuer.issuer : undefined;
  const audiences = strings(issuer.audiences);
  switch (profile) {
    case 'generic':
      return {};
    case 'keycloak':
      // Server Administration Guide: access tokens carry `typ: Bearer` (ID tokens `ID`), realm
      // roles in realm_access.roles and client roles in resource_access.<client>.roles.
      return {
        algorithms: ['RS256'],
        keys: { type: 'oidc' },
        claimValues: { typ: 'Bearer' },
        roles: {
          claims: [
            'realm_access.roles',
            ...audiences.map((a) => `resource_access.${a}.roles`),
            'groups',
            'scope',
          ],
        },
      };
    case 'okta':
      // Custom authorization servers: scp is an array, groups only with a groups claim.
      return { algorithms: ['RS256'], keys: { type: 'oidc' }, roles: { claims: ['groups', 'scp'] } };
    case 'auth0':
      // RBAC permissions in `permissions`, scopes in the space-delimited `scope`.
      return { algorithms: ['RS256'], keys: { type: 'oidc' }, roles: { claims: ['permissions', 'scope'] } };
    case 'entra': {
      const entra = (issuer.entra ?? {}) as Raw;
      const tenants = strings(entra.tenants);
      const first = tenants[0];
      if (first === undefined) return { algorithms: ['RS256'] };
      const aliases = tenants.flatMap((t) => [entraV2Issuer(t), entraV1Issuer(t)]);
      const primary = iss ?? entraV2Issuer(first);
      // One tenant: its own discovery document. Several: `organizations`, whose issuer is the
      // template https://login.microsoftonline.com/{tenantid}/v2.0.
      const discoveryTenant = tenants.length === 1 ? first : 'organizations';
      return {
        issuer: primary,
        issuerAliases: aliases.filter((a) => a !== primary),
        algorithms: ['RS256'],
        keys: {
          type: 'oidc',
          discoveryUrl: `${ENTRA_LOGIN}/${discoveryTenant}/v2.0/.well-known/openid-configuration`,
        },
        roles: { claims: ['roles', 'scp', 'groups'], spaceDelimited: ['scp'] },
      };
    }
    case 'cognito':
      // Access tokens have no aud: client_id names the app client, token_use says which token.
      return {
        algorithms: ['RS256'],
        keys:
          iss === undefined
            ? undefined
            : { type: 'jwks-url', url: `${trimSlash(iss)}/.well-known/jwks.json` },
        audienceClaim: 'client_id',
        claimValues: { token_use: 'access' },
        roles: { claims: ['cognito:groups', 'scope'] },
      };
    case 'google':
      return {
        issuer: iss ?? 'https://accounts.google.com',
        issuerAliases:
          (iss ?? 'https://accounts.google.com') === 'https://accounts.google.com'
            ? ['accounts.google.com']
            : [],
        algorithms: ['RS256'],
        keys: { type: 'jwks-url', url: 'https://www.googleapis.com/oauth2/v3/certs' },
        roles: { claims: ['email'] },
      };
    case 'cloudflare-access':
      return {
        algorithms: ['RS256'],
        keys:
          iss === undefined ? undefined : { type: 'jwks-url', url: `${trimSlash(iss)}/cdn-cgi/access/certs` },
        // Service tokens carry an empty sub and the token's client id in common_name.
        subjectClaims: ['sub', 'common_name'],
        roles: { claims: ['email', 'common_name', 'groups'] },
      };
    case 'aws-alb': {
      const alb = (issuer.alb ?? {}) as Raw;
      const signer = strings(alb.signers)[0];
      const region =
        typeof alb.region === 'string' ? alb.region : signer === undefined ? null : albRegion(signer);
      return {
        algorithms: ['ES256'],
        keys: region === null ? undefined : { type: 'pem-url', url: albKeyUrl(region) },
        roles: { claims: ['groups', 'email'] },
      };
    }
    case 'google-iap':
      // Signed headers: ES256, lifetime at most 10 minutes, 30 s skew.
      return {
        issuer: 'https://cloud.google.com/iap',
        algorithms: ['ES256'],
        keys: { type: 'jwks-url', url: 'https://www.gstatic.com/iap/verify/public_key-jwk' },
        maxTokenAgeSeconds: 600,
        clockToleranceSeconds: 30,
        roles: { claims: ['email'] },
      };
    case 'kubernetes':
      return { algorithms: ['RS256'], keys: { type: 'oidc' }, roles: { claims: ['sub'] } };
    case 'github-actions':
      return {
        issuer: 'https://token.actions.githubusercontent.com',
        algorithms: ['RS256'],
        keys: { type: 'oidc' },
        roles: { claims: ['sub'] },
      };
  }
}

/** Where each profile's token travels (the edges send their own header; browsers a cookie). */
export const PROFILE_TOKENS: Readonly<Partial<Record<Profile, ProfileTokenSource>>> = {
  'cloudflare-access': { header: 'Cf-Access-Jwt-Assertion', cookie: 'CF_Authorization' },
  'aws-alb': { header: 'x-amzn-oidc-data' },
  'google-iap': { header: 'x-goog-iap-jwt-assertion' },
};

function isRecord(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `explicit` with every key it leaves out taken from `defaults` (one level into `roles`). */
function fill(explicit: Raw, defaults: Raw): { merged: Raw; set: string[] } {
  const merged: Raw = { ...explicit };
  const set: string[] = [];
  for (const [key, value] of Object.entries(defaults)) {
    if (value === undefined) continue;
    if (key === 'roles' && isRecord(value)) {
      const given = isRecord(explicit.roles) ? explicit.roles : {};
      const roles: Raw = { ...given };
      for (const [k, v] of Object.entries(value)) {
        if (given[k] === undefined) {
          roles[k] = v;
          set.push(`roles.${k}`);
        }
      }
      merged.roles = roles;
    } else if (explicit[key] === undefined) {
      merged[key] = value;
      set.push(key);
    }
  }
  return { merged, set };
}

/** One issuer's raw config with its profile's defaults filled in, and the keys the profile set. */
export function applyProfile(issuer: unknown): { issuer: unknown; set: string[] } {
  if (!isRecord(issuer)) return { issuer, set: [] };
  const profile = issuer.profile;
  if (typeof profile !== 'string' || !(PROFILES as readonly string[]).includes(profile))
    return { issuer, set: [] };
  const { merged, set } = fill(issuer, profileDefaults(profile as Profile, issuer));
  return { issuer: merged, set };
}

/**
 * The whole authorization config with each issuer's profile applied, and `tokens.header` /
 * `tokens.cookie` taken from the profiles when the config sets neither. Never throws: input the
 * schema will refuse is passed through for it to name.
 */
export function applyProfiles(config: unknown): unknown {
  if (!isRecord(config) || !Array.isArray(config.issuers)) return config;
  const issuers = config.issuers.map((i) => applyProfile(i).issuer);
  const tokens: Raw = isRecord(config.tokens) ? { ...config.tokens } : {};
  for (const field of ['header', 'cookie'] as const) {
    if (tokens[field] !== undefined) continue;
    const wanted = new Set<string>();
    for (const i of issuers) {
      const source = isRecord(i) ? PROFILE_TOKENS[i.profile as Profile] : undefined;
      if (source?.[field] !== undefined) wanted.add(source[field]);
    }
    // Two edges wanting two headers: the config must choose (the schema reports it).
    if (wanted.size === 1) tokens[field] = [...wanted][0];
  }
  return { ...config, issuers, ...(Object.keys(tokens).length > 0 ? { tokens } : {}) };
}

/** Profiles whose token source conflicts with another's (for the schema's message). */
export function conflictingTokenProfiles(config: Raw): string[] {
  const out: string[] = [];
  const tokens = isRecord(config.tokens) ? config.tokens : {};
  for (const field of ['header', 'cookie'] as const) {
    if (tokens[field] !== undefined) continue;
    const by = new Map<string, string>();
    for (const i of Array.isArray(config.issuers) ? config.issuers : []) {
      const p = isRecord(i) ? (i.profile as Profile) : undefined;
      const v = p === undefined ? undefined : PROFILE_TOKENS[p]?.[field];
      if (v !== undefined) by.set(v, p as string);
    }
    if (by.size > 1)
      out.push(`tokens.${field}: profiles ${[...by.values()].join(', ')} read different ${field}s; set it`);
  }
  return out;
}

/** Human lines: what the profile of a (validated) issuer supplies, for `check` and `explain`. */
export function describeProfile(issuer: { profile: Profile } & Raw): string[] {
  if (issuer.profile === 'generic') return [];
  const defaults = profileDefaults(issuer.profile, issuer);
  const lines: string[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  for (const [key, value] of Object.entries(defaults)) {
    if (value === undefined) continue;
    if (key === 'roles' && isRecord(value) && isRecord(issuer.roles)) {
      for (const [k, v] of Object.entries(value)) {
        if (same(issuer.roles[k], v)) lines.push(`roles.${k}=${JSON.stringify(v)}`);
      }
    } else if (key === 'keys' && isRecord(value) && isRecord(issuer.keys)) {
      if (Object.entries(value).every(([k, v]) => same((issuer.keys as Raw)[k], v)))
        lines.push(`keys=${JSON.stringify(value)}`);
    } else if (same(issuer[key], value)) {
      lines.push(`${key}=${JSON.stringify(value)}`);
    }
  }
  const tokens = PROFILE_TOKENS[issuer.profile];
  if (tokens?.header)
    lines.push(`tokens.header=${tokens.header} (SPOE arg token_header=req.hdr(${tokens.header}))`);
  if (tokens?.cookie)
    lines.push(`tokens.cookie=${tokens.cookie} (SPOE arg cookie=req.cook(${tokens.cookie}))`);
  return lines;
}

/** What a profile needs and cannot default, per issuer, with the zod path to name. */
export function profileProblems(config: unknown): Array<{ path: (string | number)[]; message: string }> {
  const out: Array<{ path: (string | number)[]; message: string }> = [];
  if (!isRecord(config) || !Array.isArray(config.issuers)) return out;
  config.issuers.forEach((issuer: unknown, i: number) => {
    if (!isRecord(issuer)) return;
    const options = (key: string) => (isRecord(issuer[key]) ? (issuer[key] as Raw) : undefined);
    if (issuer.profile === 'entra' && options('entra') === undefined)
      out.push({ path: ['issuers', i, 'entra'], message: 'profile entra needs entra.tenants (tenant ids)' });
    if (issuer.profile === 'aws-alb' && options('alb') === undefined)
      out.push({
        path: ['issuers', i, 'alb'],
        message: 'profile aws-alb needs alb.signers (load balancer ARNs)',
      });
    if (issuer.profile === 'aws-alb' && options('alb') !== undefined && issuer.keys === undefined) {
      const alb = options('alb') as Raw;
      const first = strings(alb.signers)[0];
      if (alb.region === undefined && (first === undefined || albRegion(first) === null))
        out.push({
          path: ['issuers', i, 'alb', 'region'],
          message: 'no region in the signer ARN: set alb.region',
        });
    }
  });
  return out;
}
