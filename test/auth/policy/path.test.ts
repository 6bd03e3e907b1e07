import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizePath, PathRejection } from '../../../src/auth/policy/path.js';

const ok: Array<[string, string]> = [
  ['/api/flows/filter', '/api/flows/filter'],
  ['/', '/'],
  ['/api/flows/', '/api/flows/'],
  ['//api//admin/settings', '/api/admin/settings'],
  ['/api/../api/admin/settings', '/api/admin/settings'],
  ['/api/./flows', '/api/flows'],
  ['/api/flows/..', '/api/'],
  ['/api/flows/.', '/api/flows/'],
  ['/api/%61dmin/settings', '/api/admin/settings'],
  ['/api/%7Euser/%2d%5F', '/api/~user/-_'],
  ['/api/a%20b', '/api/a%20b'],
  ['/api/a%3ab', '/api/a%3Ab'],
  ['/api/.well-known/x', '/api/.well-known/x'],
  ['/api/..foo/bar', '/api/..foo/bar'],
  ['/api/variables/name/caf%C3%A9', '/api/variables/name/caf%C3%A9'],
];

const refused: Array<[string, RegExp]> = [
  ['/api/%2e%2e/admin/settings', /encoded "\."/],
  ['/api/%2E%2E/admin/settings', /encoded "\."/],
  ['/api/%2e/admin', /encoded "\."/],
  ['/api/admin%2Fsettings', /encoded "\/"/],
  ['/api/admin%2fsettings', /encoded "\/"/],
  ['/api\\admin\\settings', /backslash/],
  ['/api/admin%5Csettings', /backslash/],
  ['/api/admin\u0000/settings', /NUL/],
  ['/api/admin%00/settings', /NUL/],
  ['/api/%25', /double encoding/],
  ['/api/%252e%252e/admin', /double encoding/],
  ['/api/%zz', /percent/],
  ['/api/%4', /percent/],
  ['/api/%', /percent/],
  ['/api/a b', /control/],
  ['/api/a\tb', /control/],
  ['/..', /above the root/],
  ['/api/../../admin', /above the root/],
  ['api/flows', /start with/],
  ['', /start with/],
  ['*', /start with/],
];

describe('normalizePath', () => {
  it.each(ok)('%j -> %j', (raw, expected) => {
    expect(normalizePath(raw)).toBe(expected);
  });

  it.each(refused)('refuses %j', (raw, why) => {
    const result = normalizePath(raw);
    expect(result).toBeInstanceOf(PathRejection);
    expect((result as PathRejection).why).toMatch(why);
  });

  const pathChars = fc.constantFrom(
    '/',
    '.',
    'a',
    'b',
    '%',
    '2',
    'e',
    'F',
    '5',
    'c',
    '-',
    '~',
    '_',
    '0',
    '1',
  );
  const paths = fc.array(pathChars, { maxLength: 30 }).map((cs) => `/${cs.join('')}`);

  it('is idempotent and leaves no dot segment, empty segment or encoded unreserved byte', () => {
    fc.assert(
      fc.property(paths, (raw) => {
        const once = normalizePath(raw);
        if (once instanceof PathRejection) return;
        expect(normalizePath(once)).toBe(once);
        const inner = once.split('/').slice(1, -1);
        expect(inner).not.toContain('');
        expect(inner).not.toContain('.');
        expect(inner).not.toContain('..');
        expect(once).not.toMatch(/%(?:[46][1-9A-Fa-f]|[57][0-9Aa]|3[0-9]|2[Dd]|5[Ff]|7[Ee])/);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses every path whose escapes decode to "/", "." or "\\"', () => {
    fc.assert(
      fc.property(paths, fc.constantFrom('%2f', '%2F', '%2e', '%2E', '%5c', '%5C'), paths, (a, bad, b) => {
        expect(normalizePath(`${a}${bad}${b.slice(1)}`)).toBeInstanceOf(PathRejection);
      }),
      { numRuns: 500 },
    );
  });
});
