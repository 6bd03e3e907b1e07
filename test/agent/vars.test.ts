import { describe, expect, it } from 'vitest';
import { DecisionVars, decisionAck, FAIL_CLOSED_ACTIONS, MAX_COMPILED_ACKS } from '../../src/agent/vars.js';
import { type Decision, makeDecision, NO_CLAIMS } from '../../src/auth/decision.js';
import { ActionList, type HandlerResult, VarScope } from '../../src/spop/index.js';
import { SELECTABLE_VARS, type SelectableVar } from '../../src/var-names.js';

const hit = (sub: string): Decision =>
  makeDecision('ok', sub, 'https://idp', 'viewer', null, 'r', 'hit', NO_CLAIMS);

describe('decisionAck', () => {
  it('compiles a remembered decision when it comes back and answers it from then on', () => {
    const d = hit('alice');
    const first = decisionAck(d);
    expect(first).not.toBeInstanceOf(ActionList);
    const compiled = decisionAck(d);
    expect(compiled).toBeInstanceOf(ActionList);
    expect(decisionAck(d)).toBe(compiled);
    expect(sent(compiled)).toEqual(sent(first));
  });

  it('keeps at most MAX_COMPILED_ACKS encoded ACKs: the oldest is encoded again when it returns', () => {
    const vars = new DecisionVars(SELECTABLE_VARS, MAX_COMPILED_ACKS);
    const oldest = hit('oldest');
    vars.ack(oldest);
    const first = vars.ack(oldest);
    expect(first).toBeInstanceOf(ActionList);
    for (let i = 0; i < MAX_COMPILED_ACKS - 1; i++) {
      const d = hit(`user-${i}`);
      vars.ack(d);
      vars.ack(d);
    }
    expect(vars.ack(oldest)).toBe(first);
    const more = hit('one-more');
    vars.ack(more);
    vars.ack(more);
    const again = vars.ack(oldest);
    expect(again).not.toBe(first);
    expect(sent(again)).toEqual(sent(first));
  });

  it('does not compile decisions that come back after more than MAX_COMPILED_ACKS others', () => {
    // More tokens taking turns than the ring holds: each would be evicted before its next use.
    const vars = new DecisionVars(['allow', 'status'], 4);
    const turns = Array.from({ length: 6 }, (_, i) => hit(`u${i}`));
    for (let round = 0; round < 5; round++)
      for (const d of turns) expect(vars.ack(d)).not.toBeInstanceOf(ActionList);
    // One of them used twice in a row is compiled.
    const d = turns[0] as Decision;
    expect(vars.ack(d)).not.toBeInstanceOf(ActionList);
    expect(vars.ack(d)).toBeInstanceOf(ActionList);
  });

  it('builds fresh actions for decisions that are not remembered', () => {
    const miss = makeDecision('ok', 'bob', 'https://idp', 'viewer', null, 'r', 'miss', NO_CLAIMS);
    expect(decisionAck(miss)).not.toBe(decisionAck(miss));
  });
});

/** Name → value of the SET-VARs, in the order sent. */
function sent(result: HandlerResult): [string, unknown][] {
  const actions = result instanceof ActionList ? result.actions : result;
  return actions.map((a) => {
    expect(a.op).toBe('set');
    expect(a.scope).toBe(VarScope.TXN);
    return [a.name, a.op === 'set' ? a.value : undefined];
  });
}

describe('DecisionVars: the `vars` selection', () => {
  const allow = makeDecision('ok', 'alice', 'https://idp', 'viewer', 'ui', 'prefect.viewer', 'hit', [
    ['email', 'a@example.com'],
    ['level', 3],
  ]);
  const deny = makeDecision('forbidden', 'bob', 'https://idp', 'viewer', null, null, 'miss', NO_CLAIMS);
  const missing = makeDecision('missing_token', null, null, null, null, null, null, NO_CLAIMS);

  const ALL_ALLOW: [string, unknown][] = [
    ['allow', true],
    ['status', 200],
    ['reason', 'ok'],
    ['sub', 'alice'],
    ['iss', 'https://idp'],
    ['role', 'viewer'],
    ['tag', 'ui'],
    ['rule', 'prefect.viewer'],
    ['cache', 'hit'],
    ['claim_email', 'a@example.com'],
    ['claim_level', 3],
  ];
  const table: { selection: SelectableVar[] | undefined; d: Decision; want: [string, unknown][] }[] = [
    { selection: undefined, d: allow, want: ALL_ALLOW },
    { selection: [...SELECTABLE_VARS], d: allow, want: ALL_ALLOW },
    {
      selection: ['allow', 'status'],
      d: allow,
      want: [
        ['allow', true],
        ['status', 200],
      ],
    },
    {
      selection: ['status', 'allow'],
      d: deny,
      want: [
        ['allow', false],
        ['status', 403],
      ],
    },
    {
      selection: ['allow', 'status', 'reason'],
      d: deny,
      want: [
        ['allow', false],
        ['status', 403],
        ['reason', 'forbidden'],
      ],
    },
    {
      selection: ['allow', 'status', 'sub', 'role', 'claims'],
      d: allow,
      want: [
        ['allow', true],
        ['status', 200],
        ['sub', 'alice'],
        ['role', 'viewer'],
        ['claim_email', 'a@example.com'],
        ['claim_level', 3],
      ],
    },
    {
      // Selected but null: still not sent.
      selection: ['allow', 'status', 'sub', 'cache', 'tag'],
      d: missing,
      want: [
        ['allow', false],
        ['status', 401],
      ],
    },
    {
      selection: ['allow', 'status', 'iss', 'tag', 'rule', 'cache', 'path'],
      d: allow,
      want: [
        ['allow', true],
        ['status', 200],
        ['iss', 'https://idp'],
        ['tag', 'ui'],
        ['rule', 'prefect.viewer'],
        ['cache', 'hit'],
      ],
    },
  ];

  it.each(table)('$selection → exactly the selected, non-null vars', ({ selection, d, want }) => {
    const vars = new DecisionVars(selection);
    expect(sent(vars.actions(d))).toEqual(want);
    expect(sent(vars.ack(d))).toEqual(want);
  });

  it('always sends allow and status, and keeps the selection in contract order', () => {
    const vars = new DecisionVars(['claims', 'reason']);
    expect(vars.selection).toEqual(['allow', 'status', 'reason', 'claims']);
    expect(sent(vars.actions(missing))).toEqual([
      ['allow', false],
      ['status', 401],
      ['reason', 'missing_token'],
    ]);
  });

  it('sends the normalised path only when `path` is selected', () => {
    expect(new DecisionVars(['allow', 'status']).pathAction('/api/x')).toBeNull();
    expect(new DecisionVars(['allow', 'status', 'path']).pathAction('/api/x')).toEqual({
      op: 'set',
      scope: VarScope.TXN,
      name: 'path',
      value: '/api/x',
    });
  });

  it('compiles ACKs per selection: one remembered decision, two selections, two answers', () => {
    const d = hit('carol');
    const full = new DecisionVars();
    const lean = new DecisionVars(['allow', 'status']);
    full.ack(d);
    lean.ack(d);
    const a = full.ack(d);
    const b = lean.ack(d);
    expect(a).toBeInstanceOf(ActionList);
    expect(b).toBeInstanceOf(ActionList);
    expect(full.ack(d)).toBe(a);
    expect(lean.ack(d)).toBe(b);
    expect(sent(b)).toEqual([
      ['allow', true],
      ['status', 200],
    ]);
    expect(sent(a).map(([n]) => n)).toEqual([
      'allow',
      'status',
      'reason',
      'sub',
      'iss',
      'role',
      'rule',
      'cache',
    ]);
  });

  it('bounds each selection’s compiled ACKs by its own ring', () => {
    const vars = new DecisionVars(['allow', 'status'], 2);
    const [x, y, z] = [hit('x'), hit('y'), hit('z')];
    vars.ack(x);
    const first = vars.ack(x);
    expect(first).toBeInstanceOf(ActionList);
    vars.ack(y);
    vars.ack(y);
    expect(vars.ack(x)).toBe(first);
    vars.ack(z);
    vars.ack(z); // compiled: evicts x
    expect(vars.ack(x)).not.toBe(first);
  });

  it('leaves the fail-closed answer at allow=false, status=503', () => {
    expect(sent([...FAIL_CLOSED_ACTIONS])).toEqual([
      ['allow', false],
      ['status', 503],
    ]);
  });
});
