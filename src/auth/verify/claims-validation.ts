import type { JWTPayload, JWTVerifyOptions } from 'jose';
import { strictUtf8 } from './jws.js';

/**
 * JWT claims validation, a line-by-line mirror of jose 6.2 `validateClaimsSet`
 * (dist/webapi/lib/jwt_claims_set.js) for the fast path of verify.ts: same checks, same order,
 * same error codes, claims and messages, so reasonForJoseError() maps a fast-path failure to
 * the reason jose's would get. Options jose would refuse or that we do not mirror (duration
 * strings) compile to null, and such verifications stay with jose.
 */

/** A failure shaped like jose's error (code, claim, reason, message); not thrown. */
export interface ClaimsFailure {
  readonly ok: false;
  readonly code: 'ERR_JWT_INVALID' | 'ERR_JWT_CLAIM_VALIDATION_FAILED' | 'ERR_JWT_EXPIRED';
  readonly claim: string | undefined;
  readonly reason: 'missing' | 'invalid' | 'check_failed' | undefined;
  readonly message: string;
}

export type ClaimsResult = { readonly ok: true; readonly payload: JWTPayload } | ClaimsFailure;

/** jwtVerify options digested once (they change once per second, see issuer.ts optionsAt). */
export interface ClaimRules {
  readonly algorithms: readonly string[] | undefined;
  readonly typ: string | undefined;
  /** Claims that must be present, in the order jose checks them. */
  readonly presence: readonly string[];
  readonly issuer: readonly unknown[] | undefined;
  readonly subject: unknown;
  readonly audience: readonly unknown[] | undefined;
  readonly tolerance: number;
  /** Seconds since the epoch, or undefined for "read the clock" (no currentDate option). */
  readonly now: number | undefined;
  readonly maxTokenAge: number | undefined;
}

const normalizeTyp = (value: string): string => {
  const normalized = value.toLowerCase();
  return value.includes('/') ? normalized : `application/${normalized}`;
};

/** The rules for `options`, or null when jose would throw a TypeError or parse a duration string. */
export function compileClaimRules(options: JWTVerifyOptions): ClaimRules | null {
  const { algorithms, typ, requiredClaims = [], issuer, subject, audience, maxTokenAge } = options;
  const { clockTolerance, currentDate } = options;
  if (
    algorithms !== undefined &&
    (!Array.isArray(algorithms) || algorithms.some((a) => typeof a !== 'string'))
  )
    return null;
  if (typ !== undefined && typeof typ !== 'string') return null;
  if (!Array.isArray(requiredClaims)) return null;
  if (audience !== undefined && typeof audience !== 'string' && !Array.isArray(audience)) return null;
  const presenceCheck = [...requiredClaims];
  if (maxTokenAge !== undefined) presenceCheck.push('iat');
  if (audience !== undefined) presenceCheck.push('aud');
  if (subject !== undefined) presenceCheck.push('sub');
  if (issuer !== undefined) presenceCheck.push('iss');
  const presence = [...new Set(presenceCheck.reverse())];
  if (presence.some((c) => typeof c !== 'string')) return null;
  let tolerance = 0;
  if (clockTolerance !== undefined) {
    if (typeof clockTolerance !== 'number') return null; // strings: jose's secs(); not mirrored
    tolerance = clockTolerance;
  }
  if (!Number.isFinite(tolerance) || tolerance < 0) return null;
  let now: number | undefined;
  if (currentDate !== undefined) {
    if (!(currentDate instanceof Date)) return null;
    now = Math.floor(currentDate.getTime() / 1000);
    if (!Number.isFinite(now)) return null;
  }
  if (
    maxTokenAge !== undefined &&
    (typeof maxTokenAge !== 'number' || !Number.isFinite(maxTokenAge) || maxTokenAge < 0)
  )
    return null;
  return {
    algorithms,
    typ: typ === undefined ? undefined : normalizeTyp(typ),
    presence,
    issuer: issuer === undefined ? undefined : Array.isArray(issuer) ? [...issuer] : [issuer],
    subject,
    audience: audience === undefined ? undefined : typeof audience === 'string' ? [audience] : [...audience],
    tolerance,
    now,
    maxTokenAge,
  };
}

function failure(
  code: ClaimsFailure['code'],
  message: string,
  claim?: string,
  reason?: ClaimsFailure['reason'],
): ClaimsFailure {
  return { ok: false, code, claim, reason, message };
}

const unexpected = (claim: string) =>
  failure('ERR_JWT_CLAIM_VALIDATION_FAILED', `unexpected "${claim}" claim value`, claim, 'check_failed');

function audiencePresent(audPayload: unknown, audOption: readonly unknown[]): boolean {
  if (typeof audPayload === 'string') return audOption.includes(audPayload);
  if (Array.isArray(audPayload)) return audOption.some((aud) => audPayload.includes(aud));
  return false;
}

/** Claims-set bytes (the decoded payload segment) checked against `rules`; header `typ` as given. */
export function checkClaims(rules: ClaimRules, headerTyp: unknown, bytes: Buffer): ClaimsResult {
  let claims: unknown;
  try {
    claims = JSON.parse(strictUtf8(bytes));
  } catch {
    return failure('ERR_JWT_INVALID', 'JWT Claims Set must be a top-level JSON object');
  }
  // jose isObject(): for JSON.parse output, any non-null non-array object.
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims))
    return failure('ERR_JWT_INVALID', 'JWT Claims Set must be a top-level JSON object');
  return checkClaimsSet(rules, headerTyp, claims as JWTPayload);
}

/** A parsed claims set (a JSON object, as checkClaims found it) checked against `rules`. */
export function checkClaimsSet(rules: ClaimRules, headerTyp: unknown, set: JWTPayload): ClaimsResult {
  if (rules.typ !== undefined && (typeof headerTyp !== 'string' || normalizeTyp(headerTyp) !== rules.typ))
    return failure(
      'ERR_JWT_CLAIM_VALIDATION_FAILED',
      'unexpected "typ" JWT header value',
      'typ',
      'check_failed',
    );
  for (const claim of rules.presence) {
    if (!Object.hasOwn(set, claim))
      return failure(
        'ERR_JWT_CLAIM_VALIDATION_FAILED',
        `missing required "${claim}" claim`,
        claim,
        'missing',
      );
  }
  if (rules.issuer !== undefined && !rules.issuer.includes(set.iss)) return unexpected('iss');
  if (rules.subject !== undefined && set.sub !== rules.subject) return unexpected('sub');
  if (rules.audience !== undefined && !audiencePresent(set.aud, rules.audience)) return unexpected('aud');
  const tolerance = rules.tolerance;
  const now = rules.now ?? Math.floor(Date.now() / 1000);
  const iat = set.iat;
  if ((iat !== undefined || rules.maxTokenAge !== undefined) && typeof iat !== 'number')
    return failure('ERR_JWT_CLAIM_VALIDATION_FAILED', '"iat" claim must be a number', 'iat', 'invalid');
  const nbf = set.nbf;
  if (nbf !== undefined) {
    if (typeof nbf !== 'number')
      return failure('ERR_JWT_CLAIM_VALIDATION_FAILED', '"nbf" claim must be a number', 'nbf', 'invalid');
    if (nbf > now + tolerance)
      return failure(
        'ERR_JWT_CLAIM_VALIDATION_FAILED',
        '"nbf" claim timestamp check failed',
        'nbf',
        'check_failed',
      );
  }
  const exp = set.exp;
  if (exp !== undefined) {
    if (typeof exp !== 'number')
      return failure('ERR_JWT_CLAIM_VALIDATION_FAILED', '"exp" claim must be a number', 'exp', 'invalid');
    if (exp <= now - tolerance)
      return failure('ERR_JWT_EXPIRED', '"exp" claim timestamp check failed', 'exp', 'check_failed');
  }
  if (rules.maxTokenAge !== undefined) {
    const age = now - (iat as number);
    if (age - tolerance > rules.maxTokenAge)
      return failure(
        'ERR_JWT_EXPIRED',
        '"iat" claim timestamp check failed (too far in the past)',
        'iat',
        'check_failed',
      );
    if (age < -tolerance)
      return failure(
        'ERR_JWT_CLAIM_VALIDATION_FAILED',
        '"iat" claim timestamp check failed (it should be in the past)',
        'iat',
        'check_failed',
      );
  }
  return { ok: true, payload: set };
}
