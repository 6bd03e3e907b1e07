import type { BlockList } from 'node:net';
import { type Claims, claimAt, claimMatches, tokenScopes } from '../claims.js';
import type { ClientCertificate } from '../client-cert.js';
import type { ClaimValue } from '../decision.js';
import { type BodyCondition, type BodyFailure, bodyMatches, type JsonObject, parseJsonBody } from './body.js';
import { addressIn, blockListOf, parseCidr } from './cidr.js';
import { type CompiledPattern, capturePattern, compilePattern, matchPattern } from './pattern.js';
import type { RuleConfig } from './policy-config.js';
import { isTruthyValue, parseQuery, type QueryParams } from './query.js';
import type { RoleModel } from './role-model.js';

/** What a rule can look at. One per request, filled lazily (query, host) where it pays. */
export interface MatchContext {
  readonly method: string;
  readonly segments: readonly string[];
  readonly query: string | null;
  readonly host: string | null;
  readonly src: string | null;
  readonly prefectUi: boolean;
  /** The verified token's claims (read only by scope and claim conditions); null without a token. */
  readonly token: TokenClaims | null;
  /** Effective role mask (implied roles included); 0 without a token. */
  readonly roleMask: number;
  params: QueryParams | null;
  hostname: string | null | undefined;
  /** `scope` + `scp` of the token, computed when a rule first asks. */
  scopes: ReadonlySet<string> | null;
  /** The body as HAProxy sent it (null: none), its declared length, and the bound to judge it by. */
  readonly body: Uint8Array | null;
  readonly bodySize: number | null;
  readonly bodyMaxBytes: number;
  /** The parsed body or why it cannot be judged; undefined until a rule with `body` asks. */
  bodyState: JsonObject | BodyFailure | undefined;
  /**
   * Set when a rule that could have matched needed a body that cannot be judged; if no later
   * rule matches, the denial gives this as its reason instead of a plain default deny.
   */
  bodyFailure: BodyFailure | null;
  /** The verified client certificate of the connection, when some rule reads it; else null. */
  readonly cert: ClientCertificate | null;
}

/** A verified token as rules see it: its claims, which an Identity decodes when first asked. */
export interface TokenClaims {
  readonly claims: Claims;
}

/** Request fields beyond the common ones, for the few rules that read the body. */
export interface BodyInput {
  readonly body: Uint8Array | null;
  readonly bodySize: number | null;
  readonly maxBytes: number;
}

const NO_BODY: BodyInput = Object.freeze({ body: null, bodySize: null, maxBytes: 0 });

export function newMatchContext(
  method: string,
  segments: readonly string[],
  query: string | null,
  host: string | null,
  src: string | null,
  prefectUi: boolean,
  token: TokenClaims | null,
  roleMask: number,
  body: BodyInput = NO_BODY,
  cert: ClientCertificate | null = null,
): MatchContext {
  return {
    method,
    segments,
    query,
    host,
    src,
    prefectUi,
    token,
    roleMask,
    params: null,
    hostname: undefined,
    scopes: null,
    body: body.body,
    bodySize: body.bodySize,
    bodyMaxBytes: body.maxBytes,
    bodyState: undefined,
    bodyFailure: null,
    cert,
  };
}

interface QueryCondition {
  readonly name: string;
  readonly equals: readonly string[] | null;
  readonly present: boolean | null;
  readonly truthy: boolean | null;
}

interface ClaimCondition {
  readonly path: string;
  readonly values: readonly ClaimValue[] | null;
  readonly param: string | null;
}

export interface CompiledRule {
  readonly index: number;
  readonly name: string;
  readonly origin: 'custom' | 'preset';
  readonly effect: 'allow' | 'deny';
  readonly tag: string | null;
  readonly methods: ReadonlySet<string> | null;
  readonly pattern: CompiledPattern;
  readonly pathNot: readonly CompiledPattern[];
  readonly query: readonly QueryCondition[];
  readonly hosts: readonly string[] | null;
  readonly sources: BlockList | null;
  readonly prefectUi: boolean | null;
  readonly anonymous: boolean;
  readonly anyMask: number;
  readonly allMask: number;
  readonly scopes: readonly string[] | null;
  readonly claims: readonly ClaimCondition[] | null;
  readonly body: readonly BodyCondition[] | null;
  /** A verified client certificate is required (null: not tested); with subjects, one of them. */
  readonly clientCert: { readonly subjects: readonly string[] | null } | null;
  /** The rule as configured, for explain. */
  readonly config: RuleConfig;
}

export function compileRule(
  config: RuleConfig,
  index: number,
  origin: 'custom' | 'preset',
  roles: RoleModel,
): CompiledRule {
  let methods: Set<string> | null = null;
  if (config.methods !== '*') {
    methods = new Set(config.methods);
    if (methods.has('GET')) methods.add('HEAD');
  }
  const req = config.roles;
  const any = req === undefined ? [] : Array.isArray(req) ? req : (req.any ?? []);
  const all = req === undefined || Array.isArray(req) ? [] : (req.all ?? []);
  return {
    index,
    name: config.name ?? `rule-${index}`,
    origin,
    effect: config.effect,
    tag: config.tag ?? null,
    methods,
    pattern: compilePattern(config.path),
    pathNot: config.pathNot.map(compilePattern),
    query: Object.entries(config.query).map(([name, c]) =>
      typeof c === 'string'
        ? { name, equals: [c], present: null, truthy: null }
        : {
            name,
            equals: c.equals === undefined ? null : typeof c.equals === 'string' ? [c.equals] : c.equals,
            present: c.present ?? null,
            truthy: c.truthy ?? null,
          },
    ),
    hosts: config.hosts ?? null,
    sources: config.sources
      ? blockListOf(config.sources.map((s) => parseCidr(s)).filter((c) => c !== null))
      : null,
    prefectUi: config.prefectUi ?? null,
    anonymous: config.anonymous,
    anyMask: roles.directMask(any),
    allMask: roles.directMask(all),
    scopes: config.scopes ?? null,
    claims: config.claims
      ? Object.entries(config.claims).map(([path, c]) => {
          if (typeof c === 'object' && !Array.isArray(c)) return { path, values: null, param: c.param };
          return { path, values: Array.isArray(c) ? c : [c], param: null };
        })
      : null,
    body: config.body
      ? Object.entries(config.body).map(([name, c]) => ({
          name,
          present: c.present ?? null,
          truthy: c.truthy ?? null,
        }))
      : null,
    clientCert:
      config.clientCert === undefined || config.clientCert === false
        ? null
        : { subjects: config.clientCert === true ? null : config.clientCert.subjects },
    config,
  };
}

/** Host header without port, lower-case; IPv6 literals keep their brackets. */
export function hostnameOf(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return (end === -1 ? host : host.slice(0, end + 1)).toLowerCase();
  }
  const colon = host.indexOf(':');
  return (colon === -1 ? host : host.slice(0, colon)).toLowerCase();
}

/** Path parameters stay percent-encoded after normalisation; claims hold the decoded text. */
function decodeParam(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function hostMatches(patterns: readonly string[], hostname: string): boolean {
  for (const p of patterns) {
    if (
      p.startsWith('*.') ? hostname.endsWith(p.slice(1)) && hostname.length > p.length - 1 : hostname === p
    ) {
      return true;
    }
  }
  return false;
}

function queryMatches(cond: QueryCondition, params: QueryParams): boolean {
  const values = params.get(cond.name);
  if (cond.present !== null && (values !== undefined) !== cond.present) return false;
  if (cond.truthy !== null) {
    const some = values?.some(isTruthyValue) === true;
    if (some !== cond.truthy) return false;
  }
  if (cond.equals !== null) {
    const expected = cond.equals;
    if (values === undefined || !values.some((v) => expected.includes(v))) return false;
  }
  return true;
}

/** Method and path alone (used by explain to list only rules that concern the request). */
export function ruleConcerns(rule: CompiledRule, ctx: MatchContext): boolean {
  if (rule.methods !== null && !rule.methods.has(ctx.method)) return false;
  if (!matchPattern(rule.pattern, ctx.segments)) return false;
  for (const not of rule.pathNot) if (matchPattern(not, ctx.segments)) return false;
  return true;
}

/**
 * Why `rule` does not match, or null when it does. Cheap checks first; the strings are
 * constants so the hot path allocates nothing.
 */
export function ruleMismatch(rule: CompiledRule, ctx: MatchContext): string | null {
  if (rule.methods !== null && !rule.methods.has(ctx.method)) return 'method';
  if (!rule.anonymous && ctx.token === null) return 'needs a token';
  if (rule.anyMask !== 0 && (ctx.roleMask & rule.anyMask) === 0) return 'roles (any)';
  if (rule.allMask !== 0 && (ctx.roleMask & rule.allMask) !== rule.allMask) return 'roles (all)';
  if (!matchPattern(rule.pattern, ctx.segments)) return 'path';
  for (const not of rule.pathNot) if (matchPattern(not, ctx.segments)) return 'pathNot';
  if (rule.prefectUi !== null && rule.prefectUi !== ctx.prefectUi) return 'prefectUi';
  if (rule.hosts !== null) {
    if (ctx.hostname === undefined) ctx.hostname = ctx.host === null ? null : hostnameOf(ctx.host);
    if (ctx.hostname === null || !hostMatches(rule.hosts, ctx.hostname)) return 'host';
  }
  if (rule.query.length > 0) {
    if (ctx.params === null) ctx.params = parseQuery(ctx.query);
    for (const cond of rule.query) if (!queryMatches(cond, ctx.params)) return 'query';
  }
  if (rule.sources !== null && (ctx.src === null || !addressIn(rule.sources, ctx.src))) return 'source';
  if (rule.clientCert !== null) {
    const cert = ctx.cert;
    if (cert === null || !cert.verified) return 'client certificate';
    const subjects = rule.clientCert.subjects;
    if (subjects !== null && (cert.subject === null || !subjects.includes(cert.subject)))
      return 'client certificate subject';
  }
  if (rule.scopes !== null) {
    if (ctx.token === null) return 'scopes';
    ctx.scopes ??= tokenScopes(ctx.token.claims);
    const scopes = ctx.scopes;
    if (!rule.scopes.every((s) => scopes.has(s))) return 'scopes';
  }
  if (rule.claims !== null) {
    if (ctx.token === null) return 'claims';
    const claims = ctx.token.claims;
    const params = rule.claims.some((c) => c.param !== null)
      ? capturePattern(rule.pattern, ctx.segments)
      : null;
    for (const cond of rule.claims) {
      const expected = cond.values ?? [decodeParam(params?.get(cond.param as string) ?? '')];
      if (!claimMatches(claimAt(claims, cond.path), expected)) return 'claims';
    }
  }
  // Last: the only check that parses anything, and only for the routes HAProxy sends a body for.
  if (rule.body !== null) {
    ctx.bodyState ??= parseJsonBody(ctx.body, ctx.bodySize, ctx.bodyMaxBytes);
    const body = ctx.bodyState;
    if (typeof body === 'string') {
      ctx.bodyFailure ??= body;
      return body;
    }
    for (const cond of rule.body) if (!bodyMatches(cond, body)) return 'body';
  }
  return null;
}
