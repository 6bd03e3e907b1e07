import { describe, expect, it } from 'vitest';
import { decisionAck, MAX_COMPILED_ACKS } from '../../src/agent/vars.js';
import { type Decision, makeDecision, NO_CLAIMS } from '../../src/auth/decision.js';

const hit = (sub: string): Decision =>
  makeDecision('ok', sub, 'https://idp', 'viewer', null, 'r', 'hit', NO_CLAIMS);

describe('decisionAck', () => {
  it('encodes a remembered decision once and answers it from then on', () => {
    const d = hit('alice');
    const first = decisionAck(d);
    expect(decisionAck(d)).toBe(first);
  });

  it('keeps at most MAX_COMPILED_ACKS encoded ACKs: the oldest is encoded again when it returns', () => {
    const oldest = hit('oldest');
    const first = decisionAck(oldest);
    for (let i = 0; i < MAX_COMPILED_ACKS - 1; i++) decisionAck(hit(`user-${i}`));
    expect(decisionAck(oldest)).toBe(first);
    decisionAck(hit('one-more'));
    const again = decisionAck(oldest);
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });

  it('builds fresh actions for decisions that are not remembered', () => {
    const miss = makeDecision('ok', 'bob', 'https://idp', 'viewer', null, 'r', 'miss', NO_CLAIMS);
    expect(decisionAck(miss)).not.toBe(decisionAck(miss));
  });
});
