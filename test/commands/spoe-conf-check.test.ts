/** `check --spoe-conf`: the shipped SPOE file passes; each way of breaking the contract is named. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkHaproxyCfgVars, checkSpoeText } from '../../src/commands/spoe-conf-check.js';
import { SELECTABLE_VARS } from '../../src/var-names.js';

const SHIPPED = readFileSync(new URL('../../haproxy/spoe-agent.conf', import.meta.url), 'utf8');
const SHIPPED_CFG = readFileSync(new URL('../../haproxy/haproxy.cfg', import.meta.url), 'utf8');
const FIXTURE = readFileSync(
  new URL('../fixtures/spop/haproxy-2.6/authorize.spoe.conf', import.meta.url),
  'utf8',
);

describe('checkSpoeText', () => {
  it('accepts the shipped haproxy/spoe-agent.conf with its registered claim', () => {
    expect(checkSpoeText(SHIPPED, ['email'])).toEqual({ errors: [], warnings: [], prefix: 'auth' });
  });

  it('names what the body message (authorize-body) lacks', () => {
    const noBody = SHIPPED.replace(/ body=req\.body\S*/, '');
    expect(checkSpoeText(noBody, ['email']).errors).toEqual(['message authorize-body lacks arg body=']);
    const noSize = SHIPPED.replace(/ body_size=\S+/, '');
    expect(checkSpoeText(noSize, ['email']).errors).toEqual(['message authorize-body lacks arg body_size=']);
  });

  it('accepts the config HAProxy 2.6 was captured with (prefect_ui is optional)', () => {
    expect(checkSpoeText(FIXTURE, []).errors).toEqual([]);
  });

  it.each([
    ['no method arg', (s: string) => s.replace(/ method=method/, ''), 'lacks arg method='],
    ['no path arg', (s: string) => s.replace(/ path=path/, ''), 'lacks arg path='],
    [
      'no token arg',
      (s: string) => s.replace(/ authorization=\S+/, '').replace(/ cookie=\S+/, ''),
      'sends no token',
    ],
    [
      'another message name',
      (s: string) => s.replaceAll('authorize', 'authz'),
      'no "spoe-message authorize"',
    ],
    [
      'a prefix over 8 characters',
      (s: string) => s.replace(/var-prefix auth\b/, 'var-prefix authorizer'),
      'longer than 8 characters',
    ],
    [
      'a prefix that overflows 63 bytes',
      (s: string) => s.replace(/var-prefix auth\b/, `var-prefix ${'p'.repeat(56)}`),
      'txn.ppppp',
    ],
    [
      'a bad prefix',
      (s: string) => s.replace(/var-prefix auth\b/, 'var-prefix au-th'),
      'is not [a-zA-Z0-9_.]',
    ],
  ])('rejects %s', (_what, mutate, message) => {
    const { errors } = checkSpoeText(mutate(FIXTURE), []);
    expect(errors.join('\n')).toContain(message);
  });

  it('warns about a forwarded claim a register-var-names list leaves out (HAProxy 2.5+ sets it anyway)', () => {
    expect(checkSpoeText(SHIPPED, ['department'])).toEqual({
      prefix: 'auth',
      errors: [],
      warnings: [
        'register-var-names lacks claim_department (HAProxy 2.5+ sets it anyway; 2.4 and older drop it)',
      ],
    });
    // Claims the shipped list has: nothing to say.
    expect(checkSpoeText(SHIPPED, ['email', 'groups'])).toEqual({ errors: [], warnings: [], prefix: 'auth' });
    // No list at all: nothing to compare with.
    const unlisted = SHIPPED.replace(/^\s*register-var-names.*$/gm, '');
    expect(checkSpoeText(unlisted, ['department'])).toEqual({ errors: [], warnings: [], prefix: 'auth' });
  });

  it('warns when recommended args are missing', () => {
    const { errors, warnings } = checkSpoeText(FIXTURE.replace(/ id=unique-id/, ''), []);
    expect(errors).toEqual([]);
    expect(warnings).toEqual(['message authorize lacks arg id=']);
  });

  it.each([
    [
      'no timeout processing',
      (s: string) => s.replace(/^\s*timeout processing.*$/m, ''),
      'no "timeout processing": every HAProxy line waits for a dead or slow agent forever',
    ],
    [
      'no timeout hello/idle',
      (s: string) => s.replace(/^\s*timeout (hello|idle).*$/gm, ''),
      'no "timeout hello" or "timeout idle": HAProxy 2.6-3.0 warn at load (3.1+ ignores both; keep them for a file shared by all lines)',
    ],
    [
      'no option pipelining',
      (s: string) => s.replace(/^(\s*)use-backend/m, '$1no option pipelining\n$1use-backend'),
      '"no option pipelining": HAProxy 3.1+ then opens one agent connection per request in flight',
    ],
    [
      'a keyword only 2.x honours',
      (s: string) => s.replace(/^(\s*)use-backend/m, '$1max-waiting-frames 50\n$1use-backend'),
      '"max-waiting-frames" is honoured by HAProxy 2.x only (3.1+ ignores it)',
    ],
    [
      'option async',
      (s: string) => s.replace(/^(\s*)use-backend/m, '$1no option async\n$1use-backend'),
      '"option async" is honoured by HAProxy 2.x only (3.1+ ignores it)',
    ],
  ])('warns about what differs between HAProxy lines: %s', (_what, mutate, warning) => {
    const { errors, warnings } = checkSpoeText(mutate(SHIPPED), ['email']);
    expect(errors).toEqual([]);
    expect(warnings).toEqual([warning]);
  });
});

describe('checkHaproxyCfgVars: what haproxy.cfg reads against the `vars` setting', () => {
  it('has nothing to say about the shipped haproxy.cfg with every var', () => {
    expect(checkHaproxyCfgVars(SHIPPED_CFG, 'auth', SELECTABLE_VARS)).toEqual([]);
  });

  it('names each var the shipped haproxy.cfg reads that a reduced selection drops, once, with its line', () => {
    const warnings = checkHaproxyCfgVars(SHIPPED_CFG, 'auth', ['allow', 'status', 'reason', 'path']);
    const names = warnings.map((w) => /reads txn\.auth\.(\w+)/.exec(w)?.[1]);
    expect(new Set(names)).toEqual(new Set(['sub', 'role', 'tag', 'rule', 'cache', 'claim_email']));
    expect(names).toHaveLength(6);
    const line = SHIPPED_CFG.split('\n').findIndex((l) => l.includes('var(txn.auth.tag)')) + 1;
    expect(warnings).toContain(
      `line ${line} reads txn.auth.tag, which the agent does not send (add tag to vars)`,
    );
    expect(warnings.find((w) => w.includes('claim_email'))).toMatch(/\(add claims to vars\)$/);
  });

  it('reads the given prefix only, skips comments and the vars HAProxy sets itself', () => {
    const cfg = [
      '    acl ok var(txn.authz.allow) -m bool',
      '    # http-request set-header X %[var(txn.authz.sub)]',
      '    http-request set-header E %[var(txn.authz.error)] %[var(txn.authz.ptime)]',
      '    http-request set-header R %[var(txn.auth.role)] %[var(txn.authz.reason)] %[var(txn.authz.nope)]',
    ].join('\n');
    expect(checkHaproxyCfgVars(cfg, 'authz', ['allow', 'status'])).toEqual([
      'line 4 reads txn.authz.reason, which the agent does not send (add reason to vars)',
      'line 4 reads txn.authz.nope, which is not a var of the agent',
    ]);
  });
});
