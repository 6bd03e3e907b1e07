import { type JWTPayload, type JWTVerifyResult, jwtVerify } from 'jose';
import { type ForwardClaimSpec, forwardClaims, hasControlCharacters, tokenScopes } from './claims.js';
import type { Identity } from './identity.js';
import type { CompiledIssuer } from './issuer.js';
import { reasonForJoseError } from './jose-errors.js';
import type { Reason } from './reasons.js';
import { compactShapeProblem, decodeSegment } from './token-source.js';

export type VerifyOutcome =
  | { readonly ok: true; readonly identity: Identity }
  | { readonly ok: false; readonly reason: Reason; readonly iss: string | null; readonly detail: string };

/** `sub` goes to HAProxy as a variable: a short printable string or nothing. */
const MAX_SUB_LENGTH = 512;

function fail(reason: Reason, iss: string | null, detail: string): VerifyOutcome {
  return { ok: false, reason, iss, detail };
}

function errorDetail(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  return typeof e?.code === 'string' ? `${e.code}: ${String(e.message)}` : String(err);
}

/**
 * Token -> Identity. The issuer is picked by the token's unverified `iss` (authz-reference 2.7);
 * an unknown issuer, a disallowed algorithm or an unknown `crit` is refused before any key
 * lookup, so such tokens never cause a network call. Then jose verifies signature and claims.
 */
export class TokenVerifier {
  private readonly byIss: ReadonlyMap<string, CompiledIssuer>;
  private readonly forward: readonly ForwardClaimSpec[];

  constructor(issuers: readonly CompiledIssuer[], forward: readonly ForwardClaimSpec[]) {
    this.byIss = new Map(issuers.map((i) => [i.iss, i]));
    this.forward = forward;
  }

  issuerFor(iss: string): CompiledIssuer | undefined {
    return this.byIss.get(iss);
  }

  async verify(token: string, nowMs: number, trace: string[] | null): Promise<VerifyOutcome> {
    const shape = compactShapeProblem(token);
    if (shape !== null) return fail('malformed_token', null, `not a compact JWS: ${shape}`);
    const dot1 = token.indexOf('.');
    const dot2 = token.indexOf('.', dot1 + 1);
    const header = decodeSegment(token.slice(0, dot1));
    if (header === undefined) return fail('malformed_token', null, 'header is not a JSON object');
    const alg = header.alg;
    if (typeof alg !== 'string' || alg === '') return fail('malformed_token', null, 'header has no alg');
    const kid = typeof header.kid === 'string' ? header.kid : null;
    trace?.push(`token header: alg=${alg} kid=${kid ?? '(none)'} typ=${String(header.typ ?? '(none)')}`);
    if (alg.toLowerCase() === 'none') return fail('bad_algorithm', null, 'alg "none" is never accepted');
    const unverified = decodeSegment(token.slice(dot1 + 1, dot2));
    if (unverified === undefined) return fail('malformed_token', null, 'payload is not a JSON object');
    const iss = unverified.iss;
    if (typeof iss !== 'string') return fail('unknown_issuer', null, 'token has no iss claim');
    const issuer = this.byIss.get(iss);
    if (issuer === undefined)
      return fail('unknown_issuer', null, `no issuer configured for iss ${JSON.stringify(iss)}`);
    trace?.push(`issuer: ${iss} -> ${issuer.id} (keys: ${issuer.keys.kind})`);
    if (!issuer.algorithms.has(alg)) {
      return fail('bad_algorithm', iss, `alg ${alg} not in [${[...issuer.algorithms].join(', ')}]`);
    }
    const crit = header.crit;
    if (crit !== undefined) {
      const unknown = Array.isArray(crit) ? crit.filter((c) => !issuer.critical.has(c as string)) : [crit];
      if (unknown.length > 0 || (Array.isArray(crit) && crit.length === 0)) {
        return fail(
          'malformed_token',
          iss,
          `crit names unsupported header parameters ${JSON.stringify(unknown)}`,
        );
      }
    }

    const options = { ...issuer.verifyOptions, currentDate: new Date(nowMs) };
    let result: JWTVerifyResult;
    try {
      result = await jwtVerify(token, issuer.keys.getKey, options);
    } catch (err) {
      let reason = reasonForJoseError(err);
      if ((err as { code?: unknown }).code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') {
        const tried = await this.tryEachKey(token, err as AsyncIterable<unknown>, options);
        if (tried.ok) {
          result = tried.result;
          return this.identity(issuer, result, trace);
        }
        reason = tried.reason;
      }
      // An unknown kid while the provider is unreachable may be a rotation we cannot see yet.
      if (reason === 'unknown_key' && issuer.keys.providerDown()) reason = 'keys_unavailable';
      return fail(reason, iss, errorDetail(err));
    }
    return this.identity(issuer, result, trace);
  }

  /** No kid and several candidate keys (e.g. during rotation): jose lets us try each. */
  private async tryEachKey(
    token: string,
    keys: AsyncIterable<unknown>,
    options: Parameters<typeof jwtVerify>[2],
  ): Promise<{ ok: true; result: JWTVerifyResult } | { ok: false; reason: Reason }> {
    let reason: Reason = 'bad_signature';
    for await (const key of keys) {
      try {
        return { ok: true, result: await jwtVerify(token, key as Uint8Array, options) };
      } catch (err) {
        reason = reasonForJoseError(err);
        if (reason !== 'bad_signature') return { ok: false, reason };
      }
    }
    return { ok: false, reason };
  }

  private identity(issuer: CompiledIssuer, result: JWTVerifyResult, trace: string[] | null): VerifyOutcome {
    const payload: JWTPayload = result.payload;
    const sub = payload.sub;
    if (
      sub !== undefined &&
      (typeof sub !== 'string' || sub.length > MAX_SUB_LENGTH || hasControlCharacters(sub))
    ) {
      return fail('bad_claims', issuer.iss, 'sub must be a printable string of at most 512 characters');
    }
    const tol = issuer.toleranceSeconds;
    let expires = payload.exp as number;
    const maxAge = issuer.config.maxTokenAgeSeconds;
    if (maxAge !== undefined && typeof payload.iat === 'number')
      expires = Math.min(expires, payload.iat + maxAge);
    const header = result.protectedHeader;
    const identity: Identity = {
      issuerId: issuer.id,
      iss: issuer.iss,
      sub: sub ?? null,
      kid: typeof header.kid === 'string' ? header.kid : null,
      alg: header.alg,
      expiresAtMs: (expires + tol) * 1000,
      notBeforeMs: typeof payload.nbf === 'number' ? (payload.nbf - tol) * 1000 : Number.NEGATIVE_INFINITY,
      roles: issuer.roles.roles(payload),
      scopes: tokenScopes(payload),
      claims: Object.freeze(payload),
      forwarded: forwardClaims(payload, this.forward),
      maskGeneration: 0,
      directMask: 0,
      effectiveMask: 0,
    };
    if (trace) {
      trace.push(`signature: verified (alg ${identity.alg}, kid ${identity.kid ?? '(none)'})`);
      trace.push(
        `claims: iss, aud in [${issuer.config.audiences.join(', ')}], exp ${payload.exp}` +
          `${payload.nbf === undefined ? '' : `, nbf ${payload.nbf}`}` +
          `${issuer.config.typ ? `, typ ${issuer.config.typ}` : ''}, tolerance ${tol}s: ok`,
      );
      trace.push(`subject: ${identity.sub ?? '(none)'}`);
      trace.push(
        `roles from claims [${issuer.config.roles.claims.join(', ')}]: [${identity.roles.join(', ')}]`,
      );
      trace.push(`scopes: [${[...identity.scopes].join(', ')}]`);
    }
    return { ok: true, identity };
  }
}
