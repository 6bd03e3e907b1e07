import { type JWTVerifyOptions, type JWTVerifyResult, jwtVerify } from 'jose';
import type { ForwardClaimSpec } from '../claims.js';
import type { CompiledIssuer } from '../issuer.js';
import { describeProfile } from '../issuer-profiles.js';
import type { Reason } from '../reasons.js';
import { AlbVerifier } from './alb-token.js';
import { type ClaimRules, checkClaimsSet, compileClaimRules } from './claims-validation.js';
import { reasonForJoseError } from './jose-reasons.js';
import { type FastHeader, type FastKey, fastHeader } from './jws.js';
import { fail, type VerifyOutcome, verifiedIdentity } from './outcome.js';
import { jsonObject, parseClaimsSet } from './segments.js';
import { compactShapeProblem, decodeSegment } from './token-source.js';

export type { VerifyOutcome } from './outcome.js';

/** Which verifier checks signatures and claims (config `verifier`). */
export const VERIFIER_MODES = ['fast', 'jose'] as const;
export type VerifierMode = (typeof VERIFIER_MODES)[number];

/** Compact JWS (RFC 7515 7.1): three base64url parts, header and payload non-empty. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** A bug, not a token problem: fail closed with a 503-class reason (never cached). */
function internalError(issuer: CompiledIssuer, bug: unknown): VerifyOutcome {
  return fail('keys_unavailable', issuer.iss, `internal error: ${String(bug)}`);
}

function report(outcome: VerifyOutcome, done: ((outcome: VerifyOutcome) => void) | undefined): VerifyOutcome {
  done?.(outcome);
  return outcome;
}

function errorDetail(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  return typeof e?.code === 'string' ? `${e.code}: ${String(e.message)}` : String(err);
}

interface HeaderHint {
  readonly alg: unknown;
  readonly kid: unknown;
  /** The header as the fast path may use it, or null: jose only. */
  readonly fast: FastHeader | null;
  /** Why the header is not a well-formed JWS header (a malformed_token), or null. */
  readonly problem: string | null;
}

/** How many verifications each path has answered (tests, benchmarks, stats). */
export interface VerifyPathCounts {
  /** Signature checked with node:crypto, claims with claims-check.ts (jws.ts). */
  fast: number;
  /** Of `fast`, those whose signature check ran on libuv's pool (ECDSA, EdDSA: FastKey.offload). */
  pooled: number;
  /** Handed to jose's jwtVerify (anything the fast path does not take on). */
  jose: number;
}

/** Distinct headers remembered: in practice one per signing key; beyond this, parse each time. */
const MAX_HEADER_HINTS = 256;

/**
 * Token -> Identity. The issuer is picked by the token's unverified `iss` (authz-reference 2.7),
 * so an unknown issuer is refused before any key lookup and never causes a network call. jose
 * then checks, before resolving a key, the algorithm allow-list and `crit`, and after it the
 * signature and claims (iss included, so a wrong routing hint can only ever fail).
 *
 * Hot path, per token: one regex for the compact shape, one base64 decode of the payload for
 * `iss`, a remembered parse of the header (alg, kid). Then, when the header is an ordinary one
 * and the issuer's key index has a key for it, the fast path: the signature with node:crypto
 * (synchronously for RSA and HMAC, so the outcome comes back without a promise; on the thread
 * pool for ECDSA and EdDSA, see jws.ts) and the claims with a mirror of jose's checks
 * (claims-check.ts). Anything else (unknown kid, no kid and several keys, crit,
 * b64, jku/jwk/x5u, odd base64, keys not indexed yet) goes to jose's jwtVerify as before.
 */
export class TokenVerifier {
  private readonly byIss: ReadonlyMap<string, CompiledIssuer>;
  /** Issuers with profile aws-alb: their tokens are not compact JWS (alb-token.ts). */
  private readonly alb: AlbVerifier | null;
  private readonly forward: readonly ForwardClaimSpec[];
  private readonly headers = new Map<string, HeaderHint>();
  /** Claim rules per jwtVerify options object (issuer.optionsAt makes one per second). */
  private readonly rules = new WeakMap<JWTVerifyOptions, ClaimRules | null>();
  private readonly fastPath: boolean;
  readonly paths: VerifyPathCounts = { fast: 0, pooled: 0, jose: 0 };

  /**
   * `verifier: 'jose'` (config `verifier`, env AUTHZ_VERIFIER) sends every verification to
   * jose's jwtVerify with jose's own key selection (KeySource.joseKeys): no node:crypto fast
   * path and no key index. The checks made before any key (structure, issuer) are the same.
   */
  constructor(
    issuers: readonly CompiledIssuer[],
    forward: readonly ForwardClaimSpec[],
    options: { readonly verifier?: VerifierMode } = {},
  ) {
    this.byIss = new Map(issuers.flatMap((i) => i.isses.map((iss) => [iss, i] as const)));
    const alb = new AlbVerifier(issuers, forward);
    this.alb = alb.empty ? null : alb;
    this.forward = forward;
    this.fastPath = (options.verifier ?? 'fast') === 'fast';
  }

  /**
   * Never rejects: every failure is an outcome. Failures found before any crypto, and every
   * outcome of the fast path, come back synchronously; the jose path returns a promise. `done`
   * sees each outcome once, before verify() returns it or the returned promise settles.
   */
  verify(
    token: string,
    nowMs: number,
    trace: string[] | null,
    done?: (outcome: VerifyOutcome) => void,
  ): VerifyOutcome | Promise<VerifyOutcome> {
    if (this.alb !== null) {
      // An ALB token is known by the `signer` in its header, padded or not (alb-token.ts).
      const outcome = this.alb.verify(token, nowMs, trace);
      if (outcome !== null) {
        this.paths.jose++;
        if (!(outcome instanceof Promise)) return report(outcome, done);
        return outcome.then(
          (o) => report(o, done),
          (bug: unknown) => report(fail('keys_unavailable', null, `internal error: ${String(bug)}`), done),
        );
      }
    }
    if (!COMPACT_JWS.test(token)) {
      return report(
        fail('malformed_token', null, `not a compact JWS: ${compactShapeProblem(token) ?? 'invalid'}`),
        done,
      );
    }
    const dot1 = token.indexOf('.');
    const dot2 = token.indexOf('.', dot1 + 1);
    // Structure first (README "Reasons"): every part base64url, the header a JWS header, the
    // payload a JSON object, before the issuer, the algorithm, the key or the signature.
    if (dot1 % 4 === 1 || (dot2 - dot1 - 1) % 4 === 1 || (token.length - dot2 - 1) % 4 === 1) {
      return report(fail('malformed_token', null, 'not a compact JWS: a part is not valid base64url'), done);
    }
    const headerSegment = token.slice(0, dot1);
    if (trace) this.traceHeader(headerSegment, trace);
    const hint = this.headerHint(headerSegment);
    if (hint.problem !== null) return report(fail('malformed_token', null, hint.problem), done);
    const payloadBytes = Buffer.from(token.slice(dot1 + 1, dot2), 'base64url');
    const claims = parseClaimsSet(payloadBytes);
    if (claims === null) {
      return report(fail('malformed_token', null, 'payload is not a JSON object (strict UTF-8)'), done);
    }
    const iss = claims.iss;
    const issuer = typeof iss === 'string' ? this.byIss.get(iss) : undefined;
    if (issuer === undefined) {
      const why =
        typeof iss === 'string'
          ? `no issuer configured for iss ${JSON.stringify(iss)}`
          : 'token has no iss claim';
      return report(fail('unknown_issuer', null, why), done);
    }
    trace?.push(`issuer: ${issuer.iss} -> ${issuer.id} (keys: ${issuer.keys.kind})`);
    if (trace && issuer.config.profile !== 'generic')
      trace.push(
        `profile ${issuer.config.profile} set: ${describeProfile(issuer.config).join(', ') || '(nothing)'}`,
      );
    const options = issuer.optionsAt(nowMs);
    if (this.fastPath && hint.fast) {
      let outcome: VerifyOutcome | Promise<VerifyOutcome> | null;
      try {
        outcome = this.verifyFast(token, dot2, claims, hint.fast, issuer, options, trace);
      } catch (bug) {
        outcome = internalError(issuer, bug);
      }
      if (outcome !== null) {
        this.paths.fast++;
        if (!(outcome instanceof Promise)) return report(outcome, done);
        this.paths.pooled++;
        return outcome.then(
          (o) => report(o, done),
          (bug: unknown) => report(internalError(issuer, bug), done),
        );
      }
    }
    this.paths.jose++;
    trace?.push('verifier: jose');
    const key = this.fastPath
      ? (issuer.keys.keyFor(hint.alg, hint.kid) ?? issuer.keys.getKey)
      : issuer.keys.joseKeys;
    return jwtVerify(token, key, options).then(
      (result) => {
        try {
          return report(this.identityOf(issuer, result, trace), done);
        } catch (bug) {
          return report(internalError(issuer, bug), done);
        }
      },
      (err: unknown) =>
        this.failure(err, headerSegment, token, issuer, options).then(
          (outcome) => report(outcome, done),
          (bug: unknown) => report(internalError(issuer, bug), done),
        ),
    );
  }

  /**
   * The fast path: null when it cannot decide (then jose does, from scratch). Decides only what
   * jose, handed the same key, would decide the same way: the order of checks is jose's
   * (algorithm allow-list, signature, then claims), failures carry jose's codes and map
   * through reasonForJoseError like jose's errors do. A promise only when the key's signature
   * check runs on the thread pool (FastKey.offload).
   */
  private verifyFast(
    token: string,
    dot2: number,
    claims: Record<string, unknown>,
    header: FastHeader,
    issuer: CompiledIssuer,
    options: JWTVerifyOptions,
    trace: string[] | null,
  ): VerifyOutcome | Promise<VerifyOutcome> | null {
    let rules = this.rules.get(options);
    if (rules === undefined) {
      rules = compileClaimRules(options);
      this.rules.set(options, rules);
    }
    if (rules === null) return null;
    const { alg, kid } = header;
    if (rules.algorithms !== undefined && !rules.algorithms.includes(alg)) return null;
    const key: FastKey | undefined = issuer.keys.fastKeyFor(alg, kid);
    if (key === undefined || key.alg !== alg) return null;
    trace?.push(`verifier: fast path (node:crypto${key.offload ? ', thread pool' : ''})`);
    // The token is ASCII (COMPACT_JWS), so latin1 gives the signing input's bytes.
    const signingInput = Buffer.from(token.slice(0, dot2), 'latin1');
    const signature = Buffer.from(token.slice(dot2 + 1), 'base64url');
    if (key.offload) {
      const checked = rules;
      return key
        .verifyAsync(signingInput, signature)
        .then((ok) => this.afterSignature(ok, checked, header, claims, issuer, trace));
    }
    return this.afterSignature(key.verify(signingInput, signature), rules, header, claims, issuer, trace);
  }

  private afterSignature(
    verified: boolean,
    rules: ClaimRules,
    header: FastHeader,
    claims: Record<string, unknown>,
    issuer: CompiledIssuer,
    trace: string[] | null,
  ): VerifyOutcome {
    if (!verified) {
      return fail(
        'bad_signature',
        issuer.iss,
        'ERR_JWS_SIGNATURE_VERIFICATION_FAILED: signature verification failed',
      );
    }
    const checked = checkClaimsSet(rules, header.typ, claims);
    if (!checked.ok)
      return fail(reasonForJoseError(checked), issuer.iss, `${checked.code}: ${checked.message}`);
    return verifiedIdentity(issuer, checked.payload, header.alg, header.kid, this.forward, trace);
  }

  /** alg and kid of a header segment, its fast-path form and its problem, parsed once per distinct header. */
  private headerHint(segment: string): HeaderHint {
    let hint = this.headers.get(segment);
    if (hint === undefined) {
      hint = parseHeaderHint(segment);
      if (this.headers.size < MAX_HEADER_HINTS) this.headers.set(segment, hint);
    }
    return hint;
  }

  private async failure(
    err: unknown,
    headerSegment: string,
    token: string,
    issuer: CompiledIssuer,
    options: Parameters<typeof jwtVerify>[2],
  ): Promise<VerifyOutcome> {
    const code = (err as { code?: unknown }).code;
    let reason = reasonForJoseError(err);
    // jose reports an unrecognised `crit` parameter as "not supported"; it is a malformed token.
    if (code === 'ERR_JOSE_NOT_SUPPORTED' && decodeSegment(headerSegment)?.crit !== undefined) {
      reason = 'malformed_token';
    }
    if (code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') {
      const tried = await tryEachKey(token, err as AsyncIterable<unknown>, options);
      if (tried.ok) return this.identityOf(issuer, tried.result, null);
      reason = tried.reason;
    }
    // An unknown kid while the provider is unreachable may be a rotation we cannot see yet.
    if (reason === 'unknown_key' && issuer.keys.providerDown()) reason = 'keys_unavailable';
    return fail(reason, issuer.iss, errorDetail(err));
  }

  private traceHeader(segment: string, trace: string[]): void {
    const header = decodeSegment(segment);
    if (header === undefined) {
      trace.push('token header: not a JSON object');
      return;
    }
    trace.push(
      `token header: alg=${String(header.alg ?? '(none)')} kid=${String(header.kid ?? '(none)')} typ=${String(header.typ ?? '(none)')}`,
    );
  }

  private identityOf(issuer: CompiledIssuer, result: JWTVerifyResult, trace: string[] | null): VerifyOutcome {
    const header = result.protectedHeader;
    return verifiedIdentity(issuer, result.payload, header.alg, header.kid, this.forward, trace);
  }
}

/**
 * The header's structure, judged before anything else (RFC 7515 4.1, as jose's compact
 * verify reads it): a JSON object, `alg` a non-empty string, `crit` (when present) a non-empty
 * array of non-empty strings each naming a member of the header, and no `b64: false`
 * under `crit` (a JWT payload is always base64url, RFC 7797 7). Whether the issuer recognises
 * a `crit` extension is judged after the issuer is known.
 */
function parseHeaderHint(segment: string): HeaderHint {
  const header = jsonObject(Buffer.from(segment, 'base64url'));
  const malformed = (problem: string): HeaderHint => ({
    alg: header?.alg,
    kid: header?.kid,
    fast: null,
    problem: `header: ${problem}`,
  });
  if (header === null) return malformed('not a JSON object (strict UTF-8)');
  const { alg, kid, crit } = header;
  if (crit !== undefined) {
    if (
      !Array.isArray(crit) ||
      crit.length === 0 ||
      crit.some((c) => typeof c !== 'string' || c.length === 0)
    )
      return malformed('"crit" must be a non-empty array of non-empty strings');
    for (const name of crit as string[]) {
      if (!Object.hasOwn(header, name)) return malformed(`"crit" names "${name}", which is missing`);
    }
    if ((crit as string[]).includes('b64') && header.b64 !== true)
      return malformed('"b64" must be true for a JWT');
  }
  if (typeof alg !== 'string' || alg.length === 0) return malformed('"alg" missing or not a string');
  return { alg, kid, fast: fastHeader(segment), problem: null };
}

/** No kid and several candidate keys (e.g. during rotation): jose lets us try each. */
async function tryEachKey(
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
