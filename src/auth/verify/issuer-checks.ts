import type { JWTPayload } from 'jose';
import { claimAt, claimStrings } from '../claims.js';
import type { IssuerConfig } from '../issuer-config.js';
import type { Reason } from '../reasons.js';

/**
 * Checks an issuer makes after the signature and the standard claims (jose's or the fast path's),
 * whichever verifier ran: the audience in another claim (Cognito's client_id), claims that must
 * hold given values (`token_use: access`, Keycloak's `typ: Bearer`), and what a profile's
 * provider documents beyond that (the Entra tenant, an access token rather than an ID token).
 */
export interface IssuerCheckFailure {
  readonly reason: Reason;
  readonly detail: string;
}

type Check = (payload: JWTPayload) => IssuerCheckFailure | null;

function matches(value: unknown, wanted: readonly (string | number | boolean)[]): boolean {
  if (Array.isArray(value)) return value.some((v) => wanted.includes(v as never));
  return value !== undefined && wanted.includes(value as never);
}

export class IssuerChecks {
  private readonly checks: readonly Check[];
  /** One line per check, for explain. */
  readonly descriptions: readonly string[];

  constructor(config: IssuerConfig) {
    const checks: Check[] = [];
    const said: string[] = [];
    // Which token it is first: an ID token where an access token is wanted says so.
    for (const [claim, want] of Object.entries(config.claimValues)) {
      const wanted = Array.isArray(want) ? want : [want];
      said.push(`${claim} = ${wanted.map((w) => JSON.stringify(w)).join(' | ')}`);
      checks.push((p) =>
        matches(claimAt(p, claim), wanted)
          ? null
          : {
              reason: 'bad_claims',
              detail: `${claim} is ${JSON.stringify(claimAt(p, claim) ?? null)}, expected ${wanted.map((w) => JSON.stringify(w)).join(' or ')}`,
            },
      );
    }
    if (config.audienceClaim !== 'aud') {
      const claim = config.audienceClaim;
      const audiences = config.audiences;
      said.push(`${claim} in [${audiences.join(', ')}] (instead of aud)`);
      checks.push((p) =>
        claimStrings(claimAt(p, claim), false).some((v) => audiences.includes(v))
          ? null
          : {
              reason: 'bad_audience',
              detail: `${claim} ${JSON.stringify(claimAt(p, claim) ?? null)} is not an accepted audience`,
            },
      );
    }
    if (config.profile === 'entra' && config.entra !== undefined) {
      const tenants = config.entra.tenants;
      said.push(`tid in [${tenants.join(', ')}] and names the tenant of iss`);
      checks.push((p) => {
        const tid = p.tid;
        if (typeof tid !== 'string' || !tenants.includes(tid))
          return {
            reason: 'bad_claims',
            detail: `tid ${JSON.stringify(tid ?? null)} is not a configured tenant`,
          };
        // The v1 and v2 issuers both carry the tenant: https://sts.windows.net/{tid}/, .../{tid}/v2.0
        if (typeof p.iss !== 'string' || !p.iss.includes(`/${tid}/`))
          return { reason: 'bad_claims', detail: `tid ${tid} is not the tenant of iss ${String(p.iss)}` };
        return null;
      });
      // Entra access tokens carry delegated scopes (scp) or app roles (roles); ID tokens neither.
      said.push('scp or roles present (an access token, not an ID token)');
      checks.push((p) =>
        p.scp !== undefined || p.roles !== undefined
          ? null
          : { reason: 'bad_claims', detail: 'neither scp nor roles: an ID token, not an access token' },
      );
    }
    if (config.profile === 'google') {
      said.push('email_verified true when email is present');
      checks.push((p) =>
        p.email === undefined || p.email_verified === true
          ? null
          : { reason: 'bad_claims', detail: 'email present but email_verified is not true' },
      );
    }
    this.checks = checks;
    this.descriptions = said;
  }

  /** The first failing check, or null. */
  run(payload: JWTPayload): IssuerCheckFailure | null {
    for (const check of this.checks) {
      const failure = check(payload);
      if (failure !== null) return failure;
    }
    return null;
  }
}
