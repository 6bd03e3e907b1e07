import { describe, expect, it } from 'vitest';
import { latencyMicros, OpenLoopSchedule, ShareSpreader } from '../../src/load/schedule.js';

describe('open-loop schedule', () => {
  it('places request i at start + i / rate', () => {
    const s = new OpenLoopSchedule(1_000, 4_000); // one every 0.25 ms
    expect(s.intendedMs(0)).toBe(1_000);
    expect(s.intendedMs(1)).toBe(1_000.25);
    expect(s.intendedMs(4_000)).toBe(2_000);
  });

  it('counts the requests due at a time, request 0 due at the start', () => {
    const s = new OpenLoopSchedule(1_000, 1_000); // one per ms
    expect(s.dueCount(999.9)).toBe(0);
    expect(s.dueCount(1_000)).toBe(1);
    expect(s.dueCount(1_000.99)).toBe(1);
    expect(s.dueCount(1_001)).toBe(2);
    expect(s.dueCount(2_000)).toBe(1_001);
  });

  it('does not let a stall delay the schedule: after a pause everything overdue is due at once', () => {
    const s = new OpenLoopSchedule(0, 10_000);
    // Nothing sent for 50 ms (generator or agent stalled): 500 requests are overdue, each
    // keeping its own intended time, so their latency includes the stall.
    const due = s.dueCount(50);
    expect(due).toBe(501);
    expect(s.intendedMs(10)).toBe(1);
    expect(latencyMicros(s.intendedMs(10), 50.3)).toBe(49_300);
    expect(latencyMicros(s.intendedMs(500), 50.3)).toBe(300);
  });

  it('says how long until the next request', () => {
    const s = new OpenLoopSchedule(100, 100); // every 10 ms
    expect(s.waitMs(3, 115)).toBe(15);
    expect(s.waitMs(1, 115)).toBe(-5);
  });

  it('refuses a rate that is not positive', () => {
    expect(() => new OpenLoopSchedule(0, 0)).toThrow(RangeError);
    expect(() => new OpenLoopSchedule(0, Number.NaN)).toThrow(RangeError);
  });

  it('records latency in whole microseconds, at least 1', () => {
    expect(latencyMicros(10, 10.0004)).toBe(1);
    expect(latencyMicros(10, 9)).toBe(1);
    expect(latencyMicros(10, 12.5)).toBe(2_500);
  });
});

describe('share spreader', () => {
  it.each([0, 0.1, 0.25, 1 / 3, 0.5, 0.9, 1])('gives round(share * n) hits for share %d', (share) => {
    const s = new ShareSpreader(share);
    for (const n of [1, 7, 10, 100, 1_000, 12_345]) {
      const t = new ShareSpreader(share);
      let hits = 0;
      for (let i = 0; i < n; i++) if (t.next()) hits++;
      expect(Math.abs(hits - share * n)).toBeLessThanOrEqual(1);
    }
    expect(typeof s.next()).toBe('boolean');
  });

  it('spaces the hits evenly', () => {
    const s = new ShareSpreader(0.25);
    const pattern = Array.from({ length: 8 }, () => (s.next() ? 1 : 0)).join('');
    expect(pattern.split('').filter((c) => c === '1')).toHaveLength(2);
    expect(pattern).not.toMatch(/11/);
  });
});
