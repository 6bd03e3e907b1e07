/** The handler-promise queue of a connection: arrival (= deadline) order, settle anywhere. */
import { describe, expect, it } from 'vitest';
import { PendingAck, PendingAcks } from '../../src/spop/pending-acks.js';

const rec = (sid: number, deadline: number) => new PendingAck(sid, 1, deadline, 0);

describe('PendingAcks', () => {
  it('says when a record is the only one (the timer must be armed)', () => {
    const q = new PendingAcks();
    expect(q.push(rec(1, 10))).toBe(true);
    expect(q.push(rec(3, 20))).toBe(false);
  });

  it('expires what is due, oldest first, skips settled records, and gives the next deadline', () => {
    const q = new PendingAcks();
    const [a, b, c, d] = [rec(1, 10), rec(3, 20), rec(5, 30), rec(7, 40)];
    for (const r of [a, b, c, d]) q.push(r);
    b.done = true; // settled by its handler
    const expired: number[] = [];
    expect(q.expire(30, (r) => expired.push(r.streamId as number))).toBe(40);
    expect(expired).toEqual([1, 5]);
    expect([a.done, c.done, d.done]).toEqual([true, true, false]);
    expect(q.expire(39, (r) => expired.push(r.streamId as number))).toBe(40);
    expect(q.expire(40, (r) => expired.push(r.streamId as number))).toBe(null);
    expect(expired).toEqual([1, 5, 7]);
    // Empty again: the next push is the only record.
    expect(q.push(rec(9, 50))).toBe(true);
  });

  it('prunes settled records at the head only; a settled record behind a waiting one stays until then', () => {
    const q = new PendingAcks();
    const [a, b, c] = [rec(1, 10), rec(3, 20), rec(5, 30)];
    for (const r of [a, b, c]) q.push(r);
    b.done = true;
    q.prune();
    expect(q.expire(15, () => {})).toBe(30); // a expired, b skipped (done), c waits
    c.done = true;
    q.prune();
    expect(q.push(rec(7, 40))).toBe(true);
  });

  it('clear marks everything done, so a late settle is ignored', () => {
    const q = new PendingAcks();
    const [a, b] = [rec(1, 10), rec(3, 20)];
    q.push(a);
    q.push(b);
    q.clear();
    expect([a.done, b.done]).toEqual([true, true]);
    expect(q.expire(100, () => expect.unreachable())).toBe(null);
  });
});
