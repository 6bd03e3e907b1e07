import type { RequestReads } from '../decision-memo.js';
import { parseWith } from '../engine-config.js';
import { LiteralConfusion } from './path-confusion.js';
import { type PolicyConfig, type PolicyConfigInput, PolicySchema, RuleSchema } from './policy-config.js';
import { prefectPresetRules } from './prefect-preset.js';
import { type QueryNames, queryAmbiguity, queryNames } from './query.js';
import { RoleModel } from './role-model.js';
import { type CompiledRule, compileRule, type MatchContext, ruleConcerns, ruleMismatch } from './rule.js';
import { RuleIndex } from './rule-index.js';

let generations = 0;

/** A validated, compiled policy. Immutable; reloading builds a new one and swaps the reference. */
export class CompiledPolicy {
  /** Distinguishes policies so per-identity role masks can be memoised safely. */
  readonly generation: number;
  readonly roles: RoleModel;
  /** Custom rules first, then the preset's. */
  readonly rules: readonly CompiledRule[];
  readonly config: PolicyConfig;
  private readonly index: RuleIndex;
  private readonly requestReads: RequestReads;
  private readonly confusion: LiteralConfusion;
  /** Query parameters some rule reads. */
  private readonly queryNames: QueryNames;
  /**
   * The top-level claims some rule reads (scope conditions: `scope` and `scp`; claim
   * conditions: the path as one name and its first dotted part), sorted: what a cached
   * identity keeps of its claims set (Identity.keepOnly).
   */
  readonly claimsRead: readonly string[];

  private constructor(config: PolicyConfig) {
    this.generation = ++generations;
    this.config = config;
    this.roles = RoleModel.create(config.roles);
    const preset =
      config.preset === 'prefect'
        ? prefectPresetRules(config.prefect).map((r) => parseWith(RuleSchema, r, 'preset rule'))
        : [];
    const rules: CompiledRule[] = [];
    for (const rule of config.rules) rules.push(compileRule(rule, rules.length, 'custom', this.roles));
    for (const rule of preset) rules.push(compileRule(rule, rules.length, 'preset', this.roles));
    this.rules = rules;
    this.index = new RuleIndex(rules);
    this.confusion = new LiteralConfusion(rules.flatMap((r) => [r.pattern, ...r.pathNot]));
    this.queryNames = queryNames(rules.flatMap((r) => r.query.map((q) => q.name)));
    this.claimsRead = claimNamesRead(rules);
    this.requestReads = Object.freeze({
      query: rules.some((r) => r.query.length > 0),
      host: rules.some((r) => r.hosts !== null),
      src: rules.some((r) => r.sources !== null),
      prefectUi: rules.some((r) => r.prefectUi !== null),
      body: rules.some((r) => r.body !== null),
      cert: rules.some((r) => r.clientCert !== null),
    });
  }

  /** Request fields some rule reads besides method and path (DecisionMemo compares only these). */
  get reads(): RequestReads {
    return this.requestReads;
  }

  /** Validates (AuthError 'config_invalid' with zod paths) and compiles. */
  static compile(input: PolicyConfigInput | PolicyConfig): CompiledPolicy {
    return new CompiledPolicy(parseWith(PolicySchema, input, 'policy'));
  }

  /**
   * Why this request could be routed or read differently from the way the rules judge it
   * (a `bad_request`), or null: a method not in upper case (servers differ on case), a path
   * segment some server could read as one of the rules' literals (path-confusion.ts), a query
   * parameter some rule reads that a server could read differently (query.ts).
   */
  ambiguity(method: string, segments: readonly string[], query: string | null): string | null {
    for (let i = 0; i < method.length; i++) {
      const c = method.charCodeAt(i);
      if ((c >= 97 && c <= 122) || c > 127) return `method "${method}" is not in upper case`;
    }
    return this.confusion.check(segments) ?? queryAmbiguity(query, this.queryNames);
  }

  /** First matching rule, or null (default deny). Looks only at indexed candidates. */
  match(ctx: MatchContext): CompiledRule | null {
    const candidates = this.index.candidates(ctx.method, ctx.segments);
    for (let i = 0; i < candidates.length; i++) {
      const rule = candidates[i] as CompiledRule;
      if (ruleMismatch(rule, ctx) === null) return rule;
    }
    return null;
  }

  /**
   * Same answer as match(), trying every rule in order and saying why each did not match. Rules
   * whose method or path differ are only counted unless `verbose`.
   */
  matchTraced(ctx: MatchContext, trace: string[], verbose = false): CompiledRule | null {
    let skipped = 0;
    for (const rule of this.rules) {
      const why = ruleMismatch(rule, ctx);
      if (why === null) {
        if (skipped > 0) trace.push(`${skipped} rule(s) skipped: method or path differ`);
        trace.push(`rule ${rule.name} [${describeRule(rule)}]: match -> ${rule.effect}`);
        return rule;
      }
      if (verbose || ruleConcerns(rule, ctx)) {
        trace.push(`rule ${rule.name} [${describeRule(rule)}]: no match (${why})`);
      } else {
        skipped++;
      }
    }
    if (skipped > 0) trace.push(`${skipped} rule(s) skipped: method or path differ`);
    trace.push('no rule matched: default deny');
    return null;
  }
}

export function describeRule(rule: CompiledRule): string {
  const c = rule.config;
  const parts = [`${c.effect} ${c.methods === '*' ? '*' : c.methods.join(',')} ${c.path}`];
  if (c.pathNot.length > 0) parts.push(`not ${c.pathNot.join(',')}`);
  if (c.anonymous) parts.push('anonymous');
  if (c.roles) {
    parts.push(
      Array.isArray(c.roles)
        ? `roles any ${c.roles.join(',')}`
        : [
            c.roles.any && `roles any ${c.roles.any.join(',')}`,
            c.roles.all && `roles all ${c.roles.all.join(',')}`,
          ]
            .filter(Boolean)
            .join(' '),
    );
  }
  if (Object.keys(c.query).length > 0) parts.push(`query ${JSON.stringify(c.query)}`);
  if (c.hosts) parts.push(`hosts ${c.hosts.join(',')}`);
  if (c.sources) parts.push(`sources ${c.sources.join(',')}`);
  if (c.prefectUi !== undefined) parts.push(`prefectUi=${c.prefectUi}`);
  if (c.scopes) parts.push(`scopes ${c.scopes.join(',')}`);
  if (c.claims) parts.push(`claims ${JSON.stringify(c.claims)}`);
  if (c.body) parts.push(`body ${JSON.stringify(c.body)}`);
  return parts.join('; ');
}

function claimNamesRead(rules: readonly CompiledRule[]): readonly string[] {
  const names = new Set<string>();
  for (const rule of rules) {
    if (rule.scopes !== null) names.add('scope').add('scp');
    for (const cond of rule.claims ?? []) {
      // As claimAt() reads it: the whole path as one name, then a walk from its first part.
      names.add(cond.path);
      if (cond.path.includes('.')) names.add(cond.path.split('.')[0] as string);
    }
  }
  return Object.freeze([...names].sort());
}
