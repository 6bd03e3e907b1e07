import { describe, expect, it } from 'vitest';
import {
  DECISION_VAR_FIELDS,
  decisionVarNames,
  MAX_CLAIM_NAME_BYTES,
  oversizedVarNames,
} from '../src/var-names.js';

describe('HAProxy variable names', () => {
  it('fit 63 bytes with txn. and an 8-character prefix', () => {
    expect(DECISION_VAR_FIELDS).toEqual([
      'allow',
      'status',
      'reason',
      'sub',
      'iss',
      'role',
      'tag',
      'rule',
      'cache',
      'path',
    ]);
    expect(MAX_CLAIM_NAME_BYTES).toBe(63 - 'txn.'.length - 8 - '.'.length - 'claim_'.length);
    const longest = 'c'.repeat(MAX_CLAIM_NAME_BYTES);
    expect(oversizedVarNames([longest])).toEqual([]);
    expect(`txn.${'p'.repeat(8)}.claim_${longest}`).toHaveLength(63);
    expect(oversizedVarNames([`${longest}x`])).toEqual([`txn.xxxxxxxx.claim_${longest}x`]);
  });

  it('checks against a given prefix', () => {
    // txn. + authz + . + claim_ = 16 bytes, leaving 47 for the name.
    expect(oversizedVarNames(['c'.repeat(47)], 'authz')).toEqual([]);
    expect(oversizedVarNames(['c'.repeat(48)], 'authz')).toEqual([`txn.authz.claim_${'c'.repeat(48)}`]);
  });

  it('lists the claim variables after the fixed ones', () => {
    expect(decisionVarNames(['email'])).toEqual([...DECISION_VAR_FIELDS, 'claim_email']);
  });
});
