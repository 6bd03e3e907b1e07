import type { JWTPayload } from 'jose';
import type { ForwardClaimSpec } from '../claims.js';
import type { CompiledIssuer } from '../issuer.js';
import { describeProfile } from '../issuer-profiles.js';
import { KidRejection, PemKeySource } from '../keys/pem-key-source.js';
import { fail, type VerifyOutcome, verifiedIdentity } from './outcome.js';

/**
 * The AWS Application Load Balancer's `x-amzn-oidc-data` (ELB guide, "User claims encoding and
 * signature verification"): an ES256 JWS whose parts are base64url WITH `=` padding and whose
 * signature covers the parts as sent, padding included (awsdocs/elb-application-load-balancers-
 * user-guide#42), so no standard JWS parser takes it. Its protected header carries what the
 * payload (the IdP's userinfo claims) does not: `iss` (the IdP), `client` (the ALB's client id),
 * `exp`, and `signer`, the ARN of the load balancer that signed. The keys are per region and
 * shared by every load balancer in it, so `signer` is what binds the token to ours.
 *
 * Order of checks: shape, header, issuer (by the header's iss), algorithm, signer and client
 * (cheap refusals before any fetch), key by kid, signature, then times; every answer is an
 * outcome with a reason, never an exception.
 */
const PART = /^[A-Za-z0-9_-]+={0,2}$/;

function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export class AlbVerifier {
  private readonly byIss: ReadonlyMap<string, CompiledIssuer>;
  private readonly forward: readonly ForwardClaimSpec[];

  constructor(issuers: readonly CompiledIssuer[], forward: readonly ForwardClaimSpec[]) {
    const byIss = new Map<string, CompiledIssuer>();
    for (const issuer of issuers) {
      if (issuer.config.profile !== 'aws-alb') continue;
      for (const iss of issuer.isses) byIss.set(iss, issuer);
    }
    this.byIss = byIss;
    this.forward = forward;
  }

  get empty(): boolean {
    return this.byIss.size === 0;
  }

  /**
   * The outcome for an ALB token, or null when `token` is not one (no `signer` in a
   * parseable header): the caller then treats it as any other token.
   */
  verify(
    token: string,
    nowMs: number,
    trace: string[] | null,
  ): VerifyOutcome | Promise<VerifyOutcome> | null {
    const parts = token.split('.');
    if (parts.length !== 3) return null;
    const [h, p, s] = parts as [string, string, string];
    if (!PART.test(h) || !PART.test(p) || !PART.test(s)) return null;
    const header = decodeJson(h);
    if (header === undefined || typeof header.signer !== 'string') return null;
    trace?.push(`token: AWS ALB user claims (signer ${header.signer})`);
    const issuer = typeof header.iss === 'string' ? this.byIss.get(header.iss) : undefined;
    if (issuer === undefined)
      return fail(
        'unknown_issuer',
        null,
        `no aws-alb issuer configured for iss ${JSON.stringify(header.iss ?? null)}`,
      );
    trace?.push(`issuer: ${issuer.iss} -> ${issuer.id} (keys: ${issuer.keys.kind})`);
    trace?.push(
      `profile ${issuer.config.profile} set: ${describeProfile(issuer.config).join(', ') || '(nothing)'}`,
    );
    const payload = decodeJson(p);
    if (payload === undefined) return fail('malformed_token', issuer.iss, 'payload is not a JSON object');
    const alg = header.alg;
    if (typeof alg !== 'string' || !issuer.config.algorithms.includes(alg as never))
      return fail('bad_algorithm', issuer.iss, `alg ${JSON.stringify(alg ?? null)} not allowed`);
    const signers = issuer.config.alb?.signers ?? [];
    if (!signers.includes(header.signer))
      return fail('bad_claims', issuer.iss, `signer ${header.signer} is not a configured load balancer`);
    if (typeof header.client !== 'string' || !issuer.config.audiences.includes(header.client))
      return fail(
        'bad_audience',
        issuer.iss,
        `client ${JSON.stringify(header.client ?? null)} is not an accepted audience`,
      );
    if (!(issuer.keys instanceof PemKeySource))
      return fail('keys_unavailable', issuer.iss, 'aws-alb needs keys.type pem-url');
    const key = issuer.keys.resolve(alg, header.kid);
    const signingInput = Buffer.from(`${h}.${p}`, 'latin1');
    const signature = Buffer.from(s, 'base64url');
    const afterKey = (found: Awaited<typeof key>): VerifyOutcome | Promise<VerifyOutcome> => {
      if (found instanceof KidRejection) return fail(found.reason, issuer.iss, found.detail);
      return found.fast
        .verifyAsync(signingInput, signature)
        .then((ok) => this.afterSignature(ok, issuer, header, payload, alg, nowMs, trace));
    };
    return key instanceof Promise ? key.then(afterKey) : afterKey(key);
  }

  private afterSignature(
    ok: boolean,
    issuer: CompiledIssuer,
    header: Record<string, unknown>,
    payload: Record<string, unknown>,
    alg: string,
    nowMs: number,
    trace: string[] | null,
  ): VerifyOutcome {
    if (!ok) return fail('bad_signature', issuer.iss, 'ALB signature verification failed');
    const now = Math.floor(nowMs / 1000);
    const tol = issuer.toleranceSeconds;
    const exps = [header.exp, payload.exp].filter((e) => e !== undefined);
    if (exps.length === 0 || exps.some((e) => typeof e !== 'number'))
      return fail('expired', issuer.iss, 'exp missing or not a number');
    const exp = Math.min(...(exps as number[]));
    if (now >= exp + tol) return fail('expired', issuer.iss, `exp ${exp} has passed`);
    if (payload.iss !== undefined && payload.iss !== header.iss)
      return fail('bad_claims', issuer.iss, 'payload iss differs from the header iss');
    trace?.push(`alb: signer, client ${String(header.client)}, exp ${exp}: ok`);
    const claims: JWTPayload = { ...payload, iss: header.iss as string, exp };
    return verifiedIdentity(issuer, claims, alg, header.kid, this.forward, trace);
  }
}
