import { describe, expect, it } from 'vitest';
import {
  BasicCredential,
  compactShapeProblem,
  extractToken,
  TokenRejection,
  type TokenSources,
  tokenSourceOf,
} from '../../../src/auth/verify/token-source.js';

const all: TokenSources = { bearer: true, cookie: 'prefect_token', header: 'x-prefect-token', maxBytes: 64 };
const none = { authorization: null, cookie: null, tokenHeader: null };

describe('extractToken', () => {
  it.each([
    ['Bearer abc.def.ghi', 'abc.def.ghi'],
    ['bearer abc.def.ghi', 'abc.def.ghi'],
    ['BEARER abc.def.ghi', 'abc.def.ghi'],
    ['BeArEr   abc.def.ghi  ', 'abc.def.ghi'],
    ['Bearer\tabc.def.ghi', 'abc.def.ghi'],
    ['  Bearer abc.def.ghi', 'abc.def.ghi'],
  ])('Authorization %j', (authorization, token) => {
    expect(extractToken({ ...none, authorization }, all)).toBe(token);
  });

  it('ignores other schemes and lets the cookie speak (Prefect UI sends Basic)', () => {
    expect(extractToken({ ...none, authorization: 'Basic dXNlcjpwYXNz', cookie: 'c.o.k' }, all)).toBe(
      'c.o.k',
    );
    expect(extractToken({ ...none, authorization: 'Basic dXNlcjpwYXNz' }, all)).toBeNull();
    expect(extractToken({ ...none, authorization: 'Bearerabc.def.ghi' }, all)).toBeNull();
  });

  it('with a keys file (sources.basic), Basic is a credential of its own and decides alone', () => {
    const keys: TokenSources = { ...all, basic: true };
    const got = extractToken({ ...none, authorization: 'basic  dXNlcjpwYXNz ', cookie: 'c.o.k' }, keys);
    expect(got).toBeInstanceOf(BasicCredential);
    expect((got as BasicCredential).encoded).toBe('dXNlcjpwYXNz');
    expect(tokenSourceOf({ ...none, authorization: 'Basic dXNlcjpwYXNz' }, keys)).toBe('basic');
    expect(extractToken({ ...none, authorization: 'Basic' }, keys)).toBeInstanceOf(TokenRejection);
    expect(extractToken({ ...none, authorization: `Basic ${'A'.repeat(65)}` }, keys)).toBeInstanceOf(
      TokenRejection,
    );
    expect(extractToken({ ...none, authorization: 'Basicx' }, keys)).toBeNull();
    expect(extractToken({ ...none, authorization: 'Bearer a.a.a' }, keys)).toBe('a.a.a');
  });

  it('prefers Authorization, then the custom header, then the cookie', () => {
    const req = { authorization: 'Bearer a.a.a', tokenHeader: 'h.h.h', cookie: 'c.c.c' };
    expect(extractToken(req, all)).toBe('a.a.a');
    expect(tokenSourceOf(req, all)).toBe('bearer');
    expect(extractToken({ ...req, authorization: null }, all)).toBe('h.h.h');
    expect(tokenSourceOf({ ...req, authorization: null }, all)).toBe('header');
    expect(extractToken({ ...req, authorization: null, tokenHeader: null }, all)).toBe('c.c.c');
  });

  it('reads only enabled sources', () => {
    const req = { authorization: 'Bearer a.a.a', tokenHeader: 'h.h.h', cookie: 'c.c.c' };
    expect(extractToken(req, { bearer: false, cookie: null, header: null, maxBytes: 64 })).toBeNull();
    expect(extractToken(req, { bearer: false, cookie: 'x', header: null, maxBytes: 64 })).toBe('c.c.c');
  });

  it('accepts "Bearer <t>" in the custom header and a quoted cookie value', () => {
    expect(extractToken({ ...none, tokenHeader: 'Bearer h.h.h' }, all)).toBe('h.h.h');
    expect(extractToken({ ...none, cookie: '"c.c.c"' }, all)).toBe('c.c.c');
  });

  it('refuses an empty or oversized token before parsing', () => {
    expect(extractToken({ ...none, authorization: 'Bearer    ' }, all)).toBeInstanceOf(TokenRejection);
    expect(extractToken({ ...none, authorization: `Bearer ${'a'.repeat(64)}` }, all)).toBe('a'.repeat(64));
    const big = extractToken({ ...none, authorization: `Bearer ${'a'.repeat(65)}` }, all);
    expect(big).toBeInstanceOf(TokenRejection);
    expect((big as TokenRejection).why).toMatch(/larger/);
  });
});

describe('compactShapeProblem', () => {
  it.each([
    ['eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln', null],
    ['eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.', null],
    ['a-_b.cd.ef', null],
    ['abc.def', /three/],
    ['abc', /three/],
    ['ab.cd.ef.gh', /more than three/],
    ['.abc.def', /empty/],
    ['abc..def', /empty/],
    ['ab=c.def.ghi', /base64url/],
    ['ab+c.def.ghi', /base64url/],
    ['ab c.def.ghi', /base64url/],
    ['abcde.def.ghi', /base64url/],
    ['abcd.é.ghi', /base64url/],
  ])('%j', (token, problem) => {
    const result = compactShapeProblem(token);
    if (problem === null) expect(result).toBeNull();
    else expect(result).toMatch(problem);
  });
});
