import { describe, expect, it } from 'vitest';
import { claimAt, forwardClaims, tokenScopes } from '../../../src/auth/claims.js';
import {
  DEFAULT_ROLE_CLAIMS,
  DEFAULT_SPACE_DELIMITED,
  RoleMapper,
} from '../../../src/auth/policy/role-mapping.js';
import { RoleModel } from '../../../src/auth/policy/role-model.js';

const mapper = (spec: Partial<ConstructorParameters<typeof RoleMapper>[0]>) =>
  new RoleMapper({
    claims: [...DEFAULT_ROLE_CLAIMS],
    spaceDelimited: [...DEFAULT_SPACE_DELIMITED],
    map: {},
    passthrough: false,
    default: [],
    ...spec,
  });

describe('claims to roles', () => {
  const map = {
    'prefect-admins': 'admin',
    'prefect:read': 'viewer',
    ops: ['operator', 'worker'],
    'realm-dev': 'developer',
    'cognito-viewers': 'viewer',
    Viewers: 'viewer',
  };

  it.each([
    ['groups', { groups: ['prefect-admins', 'other'] }, ['admin']],
    ['roles', { roles: ['ops'] }, ['operator', 'worker']],
    ['realm_access.roles (Keycloak)', { realm_access: { roles: ['realm-dev'] } }, ['developer']],
    ['cognito:groups', { 'cognito:groups': ['cognito-viewers'] }, ['viewer']],
    ['scope, space-delimited', { scope: 'openid prefect:read email' }, ['viewer']],
    ['scp as an array', { scp: ['prefect:read'] }, ['viewer']],
    ['groups as a single string is one group', { groups: 'prefect-admins ops' }, []],
    ['values are case-sensitive', { groups: ['viewers'] }, []],
    ['non-string members are ignored', { groups: [1, null, { a: 1 }, 'ops'] }, ['operator', 'worker']],
    ['nothing mapped', { groups: ['x'] }, []],
  ])('%s', (_name, claims, roles) => {
    expect(mapper({ map }).roles(claims).sort()).toEqual([...roles].sort());
  });

  it('custom claim paths, including namespaced URL claims', () => {
    const m = mapper({
      claims: ['https://example.com/roles', 'app.perms.prefect'],
      map: { boss: 'admin', r: 'viewer' },
    });
    expect(m.roles({ 'https://example.com/roles': ['boss'] })).toEqual(['admin']);
    expect(m.roles({ app: { perms: { prefect: 'r' } } })).toEqual(['viewer']);
    expect(m.roles({ groups: ['boss'] })).toEqual([]);
  });

  it('passthrough takes values as role names; defaults are always granted', () => {
    expect(mapper({ passthrough: true }).roles({ roles: ['operator'] })).toEqual(['operator']);
    expect(mapper({ default: ['viewer'] }).roles({})).toEqual(['viewer']);
  });

  it('claimAt prefers a whole key over a dotted walk and never walks into arrays or prototypes', () => {
    expect(claimAt({ 'a.b': 1, a: { b: 2 } }, 'a.b')).toBe(1);
    expect(claimAt({ a: { b: 2 } }, 'a.b')).toBe(2);
    expect(claimAt({ a: [{ b: 2 }] }, 'a.0.b')).toBeUndefined();
    expect(claimAt({}, 'constructor')).toBeUndefined();
    expect(claimAt({ a: {} }, 'a.__proto__')).toBeUndefined();
  });

  it('scopes merge scope and scp', () => {
    expect([...tokenScopes({ scope: 'a  b', scp: ['c'] })].sort()).toEqual(['a', 'b', 'c']);
  });

  it('forwarded claims keep scalars only', () => {
    expect(
      forwardClaims({ a: 'x', b: 1.5, c: false, d: [1], e: { f: 1 }, g: Number.NaN, h: null }, [
        { name: 'a', claim: 'a', maxLength: 10 },
        { name: 'b', claim: 'b', maxLength: 10 },
        { name: 'c', claim: 'c', maxLength: 10 },
        { name: 'd', claim: 'd', maxLength: 10 },
        { name: 'e', claim: 'e', maxLength: 10 },
        { name: 'g', claim: 'g', maxLength: 10 },
        { name: 'h', claim: 'h', maxLength: 10 },
      ]),
    ).toEqual([
      ['a', 'x'],
      ['b', 1.5],
      ['c', false],
    ]);
  });
});

describe('role model', () => {
  const model = RoleModel.create({ auditor: { implies: ['viewer'] }, superuser: { implies: ['admin'] } });
  const effective = (...roles: string[]) => {
    const mask = model.effectiveMask(model.directMask(roles));
    return model.names.filter((_, i) => mask & (1 << i));
  };

  it('implies roles transitively, worker stays a machine role', () => {
    expect(effective('admin')).toEqual(['admin', 'developer', 'operator', 'worker', 'viewer']);
    expect(effective('developer')).toEqual(['developer', 'operator', 'worker', 'viewer']);
    expect(effective('operator')).toEqual(['operator', 'viewer']);
    expect(effective('worker')).toEqual(['worker']);
    expect(effective('superuser')).toEqual([
      'admin',
      'developer',
      'operator',
      'worker',
      'viewer',
      'superuser',
    ]);
    expect(effective('unknown')).toEqual([]);
  });

  it('names the granting role: the highest held role implying a required one', () => {
    const direct = model.directMask(['viewer', 'worker', 'auditor']);
    expect(model.grantingRole(direct, model.directMask(['viewer']))).toBe('viewer');
    expect(model.grantingRole(direct, model.directMask(['worker']))).toBe('worker');
    expect(model.grantingRole(model.directMask(['developer']), model.directMask(['viewer']))).toBe(
      'developer',
    );
    expect(model.highestRole(direct)).toBe('worker');
    expect(model.highestRole(0)).toBeNull();
  });

  it('refuses more than 31 roles', () => {
    const many = Object.fromEntries(Array.from({ length: 27 }, (_, i) => [`r${i}`, { implies: [] }]));
    expect(() => RoleModel.create(many)).toThrow(RangeError);
  });
});
