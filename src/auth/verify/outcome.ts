/**
 * What a verification answers (verify.ts), and the Identity a verified token grants, built the
 * same way whichever verifier (node:crypto fast path or jose) checked the signature.
 */
import type { JWTPayload } from 'jose';
import { type ForwardClaimSpec, forwardClaims, hasControlCharacters, tokenScopes } from '../claims.js';
import { certThumbprint } from '../client-cert.js';
import { Identity } from '../identity.js';
import type { CompiledIssuer } from '../issuer.js';
import type { Reason } from '../reasons.js';

export type VerifyOutcome =
  | { readonly ok: true; readonly identity: Identity }
  | { readonly ok: false; readonly reason: Reason; readonly iss: string | null; readonly detail: string };

export function fail(reason: Reason, iss: string | null, detail: string): VerifyOutcome {
  return { ok: false, reason, iss, detail };
}

/** `sub` goes to HAProxy as a variable: a short printable string or nothing. */
const MAX_SUB_LENGTH = 512;

/** Verified payload and protected header (alg, kid) -> Identity, whichever path verified them. */
export function verifiedIdentity(
  issuer: CompiledIssuer,
  payload: JWTPayload,
  alg: string,
  kid: unknown,
  forward: readonly ForwardClaimSpec[],
  trace: string[] | null,
): VerifyOutcome {
  // The subject: the first of the issuer's subject claims with a non-empty value (`sub`, or for
  // Cloudflare Access service tokens, whose sub is "", their `common_name`).
  let sub: unknown;
  let subClaim = 'sub';
  for (const claim of issuer.config.subjectClaims) {
    sub = payload[claim];
    subClaim = claim;
    if (sub !== undefined && sub !== '') break;
  }
  if (
    sub !== undefined &&
    (typeof sub !== 'string' || sub.length > MAX_SUB_LENGTH || hasControlCharacters(sub))
  ) {
    return fail('bad_claims', issuer.iss, `${subClaim} must be a printable string of at most 512 characters`);
  }
  const failure = issuer.checks.run(payload);
  if (failure !== null) return fail(failure.reason, issuer.iss, failure.detail);
  const tol = issuer.toleranceSeconds;
  let expires = payload.exp as number;
  const maxAge = issuer.config.maxTokenAgeSeconds;
  if (maxAge !== undefined && typeof payload.iat === 'number')
    expires = Math.min(expires, payload.iat + maxAge);
  // Identities are what the token cache holds, up to cache.maxEntries of them: strings and
  // role lists that repeat across tokens (alg, kid, the same roles) are shared, not copied.
  const identity = new Identity(
    {
      issuerId: issuer.id,
      iss: issuer.iss,
      sub: (sub as string | undefined) ?? null,
      kid: typeof kid === 'string' ? shared(kid) : null,
      alg: shared(alg),
      expiresAtMs: (expires + tol) * 1000,
      notBeforeMs: typeof payload.nbf === 'number' ? (payload.nbf - tol) * 1000 : Number.NEGATIVE_INFINITY,
      roles: sharedRoles(issuer.roles.roles(payload)),
      forwarded: forwardClaims(payload, forward),
      certThumbprint: certThumbprint(payload),
    },
    payload,
  );
  if (trace) {
    trace.push(`signature: verified (alg ${identity.alg}, kid ${identity.kid ?? '(none)'})`);
    trace.push(
      `claims: iss, ${issuer.config.audienceClaim} in [${issuer.config.audiences.join(', ')}], exp ${payload.exp}` +
        `${payload.nbf === undefined ? '' : `, nbf ${payload.nbf}`}` +
        `${issuer.config.typ ? `, typ ${issuer.config.typ}` : ''}, tolerance ${tol}s: ok`,
    );
    if (issuer.checks.descriptions.length > 0)
      trace.push(
        `issuer checks (profile ${issuer.config.profile}): ${issuer.checks.descriptions.join('; ')}: ok`,
      );
    trace.push(`subject: ${identity.sub ?? '(none)'}`);
    if (identity.certThumbprint !== null)
      trace.push(`bound to a client certificate: x5t#S256 ${identity.certThumbprint}`);
    trace.push(
      `roles from claims [${issuer.config.roles.claims.join(', ')}]: [${identity.roles.join(', ')}]`,
    );
    trace.push(`scopes: [${[...tokenScopes(payload)].join(', ')}]`);
  }
  return { ok: true, identity };
}

/** Interned strings and role lists; bounded, since kids and role sets come from outside. */
const MAX_SHARED = 1024;
const sharedStrings = new Map<string, string>();
const sharedRoleLists = new Map<string, readonly string[]>();

function shared(s: string): string {
  const known = sharedStrings.get(s);
  if (known !== undefined) return known;
  if (sharedStrings.size < MAX_SHARED && s.length <= 256) sharedStrings.set(s, s);
  return s;
}

function sharedRoles(roles: readonly string[]): readonly string[] {
  if (roles.length === 0) return NO_ROLES;
  const key = roles.join('\n');
  const known = sharedRoleLists.get(key);
  if (known !== undefined) return known;
  const list = Object.freeze(roles.map(shared));
  if (sharedRoleLists.size < MAX_SHARED) sharedRoleLists.set(key, list);
  return list;
}

const NO_ROLES: readonly string[] = Object.freeze([]);
