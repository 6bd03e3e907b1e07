import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli.js';
import { UsageError } from '../../src/errors.js';
import { LIMITS, parseLoadOptions, parseTokenMode } from '../../src/load/options.js';
import { isLoopback, parseTarget } from '../../src/load/target.js';
import { capture } from '../helpers/capture.js';

describe('load options', () => {
  it('has bounded defaults: 10 s, 4 x 20, closed loop, reused ES256 dev token, 3.1 ids', () => {
    const o = parseLoadOptions({});
    expect(o).toMatchObject({
      target: { kind: 'tcp', host: '127.0.0.1', port: 12345 },
      connections: 4,
      pipeline: 20,
      rate: null,
      pacing: 'sleep',
      generatorGc: 'single',
      durationS: 10,
      requests: null,
      warmupS: 1,
      timeoutMs: 1500,
      tokens: { kind: 'reuse' },
      invalidShare: 0,
      alg: 'ES256',
      ids: '3.1',
      spawnAgent: false,
    });
  });

  it("takes --generator-gc parallel for V8's default GC in the generator", () => {
    expect(parseLoadOptions({ 'generator-gc': 'parallel' }).generatorGc).toBe('parallel');
  });

  it('takes --batch-us (open loop; default 0: each NOTIFY as soon as due)', () => {
    expect(parseLoadOptions({}).batchUs).toBe(0);
    expect(parseLoadOptions({ rate: '1000', 'batch-us': '250' }).batchUs).toBe(250);
  });

  it('takes --pacing spin for exact send times', () => {
    expect(parseLoadOptions({ rate: '1000', pacing: 'spin' })).toMatchObject({ rate: 1000, pacing: 'spin' });
  });

  it('is bounded by --requests alone when given without --duration', () => {
    expect(parseLoadOptions({ requests: '5000' })).toMatchObject({ requests: 5000, durationS: null });
    expect(parseLoadOptions({ requests: '5000', duration: '2' })).toMatchObject({
      requests: 5000,
      durationS: 2,
    });
  });

  it.each([
    ['10.0.0.5:12345'],
    ['192.168.1.1:1'],
    ['agent.example.com:12345'],
    ['[2001:db8::1]:12345'],
    ['0.0.0.0:12345'],
  ])('refuses the non-loopback target %s unless --allow-remote', (target) => {
    expect(() => parseLoadOptions({ target })).toThrow(/not a loopback address.*--allow-remote/);
    expect(parseLoadOptions({ target, 'allow-remote': true }).target).toMatchObject({ kind: 'tcp' });
  });

  it.each([
    ['127.0.0.1:12345'],
    ['127.10.0.2:80'],
    ['localhost:12345'],
    ['[::1]:12345'],
    ['unix:/run/spoe-authz.sock'],
  ])('accepts the loopback target %s', (target) => {
    expect(isLoopback(parseTarget(target) as never)).toBe(true);
    expect(() => parseLoadOptions({ target })).not.toThrow();
  });

  it.each([
    [{ connections: '0' }, /--connections takes a whole number from 1/],
    [{ connections: String(LIMITS.connections + 1) }, /--connections/],
    [{ pipeline: '2.5' }, /--pipeline takes a whole number/],
    [{ duration: String(LIMITS.durationS + 1) }, /--duration takes a number from 0.1 to 3600/],
    [{ requests: String(LIMITS.requests + 1) }, /--requests/],
    [{ rate: '-5' }, /--rate/],
    [{ rate: 'fast' }, /--rate/],
    [{ 'invalid-share': '1.5' }, /--invalid-share takes a number from 0 to 1/],
    [{ tokens: 'pool:0' }, /--tokens takes reuse, pool:N/],
    [{ tokens: 'many' }, /--tokens/],
    [{ ids: '3.0' }, /--ids takes 3.1 or 2.6/],
    [{ pacing: 'busy' }, /--pacing takes sleep or spin/],
    [{ 'generator-gc': 'none' }, /--generator-gc takes single or parallel/],
    [{ rate: '10', 'batch-us': '-1' }, /--batch-us takes a whole number from 0 to 100000/],
    [{ rate: '10', 'batch-us': '1.5' }, /--batch-us takes a whole number/],
    [{ 'batch-us': '100' }, /--batch-us applies to an open loop/],
    [{ target: 'nohostport' }, /--target: expected host:port/],
    [{ target: '127.0.0.1:99999' }, /port out of range/],
    [{ alg: 'none' }, /--alg takes one of/],
    [{ alg: 'RS256' }, /signs ES256 only: --alg RS256 needs --spawn-agent/],
    [{ 'spawn-agent': true, target: '127.0.0.1:1' }, /exclude each other/],
    [{ 'agent-node-options': '--cpu-prof' }, /apply to --spawn-agent only/],
    [{ 'spawn-agent': true, 'agent-pid': '123' }, /--agent-pid names an agent started elsewhere/],
    [{ 'agent-pid': 'x' }, /--agent-pid takes a whole number/],
    [{ 'token-file': 'x', alg: 'ES256' }, /--alg does not apply to --token-file/],
    [{ 'spawn-agent': true, alg: 'RS256', config: 'agent.yaml' }, /cannot be combined with --config/],
  ])('rejects %o', (values, message) => {
    expect(() => parseLoadOptions(values)).toThrow(UsageError);
    expect(() => parseLoadOptions(values)).toThrow(message);
  });

  it('takes any algorithm with --spawn-agent (own issuer)', () => {
    expect(parseLoadOptions({ 'spawn-agent': true, alg: 'RS256' }).alg).toBe('RS256');
    expect(parseLoadOptions({ 'spawn-agent': true, alg: 'HS256' }).alg).toBe('HS256');
  });

  it('parses token modes', () => {
    expect(parseTokenMode('reuse')).toEqual({ kind: 'reuse' });
    expect(parseTokenMode('unique')).toEqual({ kind: 'unique' });
    expect(parseTokenMode('pool:250')).toEqual({ kind: 'pool', size: 250 });
  });

  it('the CLI exits 2 with the reason for a non-loopback target, before connecting anywhere', async () => {
    const { value: code, text: err } = await capture('stderr', () =>
      main(['load', '--target', '10.1.2.3:12345', '--duration', '1']),
    );
    expect(code).toBe(2);
    expect(err).toMatch(/10\.1\.2\.3:12345 is not a loopback address/);
  });
});
