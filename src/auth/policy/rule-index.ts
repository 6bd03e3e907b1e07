import type { PatternSegment } from './pattern.js';
import type { CompiledRule } from './rule.js';

/**
 * Candidate rules per (method, first path segments), built once per policy. Each list keeps rule
 * order, so "first match wins" over a candidate list equals first match over all rules: a rule
 * is left out of a list only when its method or its first DEPTH segments cannot match.
 */
const DEPTH = 3;

interface IndexNode {
  /** Children for literal segment values some rule names at this depth. */
  readonly lit: ReadonlyMap<string, IndexNode>;
  /** Child for any other segment value. */
  readonly other: IndexNode | null;
  /** Rules that can match a path ending here (fewer than DEPTH segments). */
  readonly end: readonly CompiledRule[];
  /** At DEPTH: every rule still possible. */
  readonly rules: readonly CompiledRule[];
}

type SegAt = PatternSegment | { readonly kind: 'none' };

function segAt(rule: CompiledRule, depth: number): SegAt {
  const segs = rule.pattern.segments;
  if (rule.pattern.rest && depth >= segs.length - 1) return { kind: 'rest' };
  return segs[depth] ?? { kind: 'none' };
}

function build(rules: readonly CompiledRule[], depth: number): IndexNode {
  if (depth === DEPTH) return { lit: new Map(), other: null, end: [], rules };
  const keys = new Set<string>();
  for (const rule of rules) {
    const seg = segAt(rule, depth);
    if (seg.kind === 'lit') for (const v of seg.values) keys.add(v);
  }
  const lit = new Map<string, IndexNode>();
  for (const key of keys) {
    const sub = rules.filter((rule) => {
      const seg = segAt(rule, depth);
      return seg.kind === 'any' || seg.kind === 'rest' || (seg.kind === 'lit' && seg.values.has(key));
    });
    lit.set(key, build(sub, depth + 1));
  }
  const wild = rules.filter((rule) => {
    const kind = segAt(rule, depth).kind;
    return kind === 'any' || kind === 'rest';
  });
  const end = rules.filter((rule) => {
    const kind = segAt(rule, depth).kind;
    return kind === 'none' || kind === 'rest';
  });
  return { lit, other: wild.length > 0 ? build(wild, depth + 1) : null, end, rules: [] };
}

const NONE: readonly CompiledRule[] = [];

export class RuleIndex {
  private readonly byMethod: ReadonlyMap<string, IndexNode>;
  private readonly anyMethod: IndexNode;

  constructor(rules: readonly CompiledRule[]) {
    const methods = new Set<string>();
    for (const rule of rules) if (rule.methods) for (const m of rule.methods) methods.add(m);
    const byMethod = new Map<string, IndexNode>();
    for (const method of methods) {
      byMethod.set(
        method,
        build(
          rules.filter((r) => r.methods === null || r.methods.has(method)),
          0,
        ),
      );
    }
    this.byMethod = byMethod;
    this.anyMethod = build(
      rules.filter((r) => r.methods === null),
      0,
    );
  }

  candidates(method: string, segments: readonly string[]): readonly CompiledRule[] {
    let node: IndexNode | null = this.byMethod.get(method) ?? this.anyMethod;
    for (let depth = 0; depth < DEPTH; depth++) {
      if (depth === segments.length) return node.end;
      node = node.lit.get(segments[depth] as string) ?? node.other;
      if (node === null) return NONE;
    }
    return node.rules;
  }
}
