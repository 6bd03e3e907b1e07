import { describe, expect, it } from 'vitest';
import { commandUsage, main, USAGE } from '../../src/cli.js';
import { capture } from '../helpers/capture.js';

describe('--help', () => {
  it('without a command prints the whole usage and exits 0', async () => {
    const { value: code, text } = await capture('stdout', () => main(['--help']));
    expect(code).toBe(0);
    expect(text).toBe(USAGE);
  });

  it.each(['serve', 'check', 'explain', 'token', 'load'])(
    '`%s --help` prints that command and the common options only',
    async (command) => {
      const { value: code, text } = await capture('stdout', () => main([command, '--help']));
      expect(code).toBe(0);
      expect(text).toBe(commandUsage(command));
      expect(text.startsWith(`usage: spoe-authz ${command} [options]\n\n${command}:\n`)).toBe(true);
      expect(text).toContain('common options:\n  -c, --config FILE');
      for (const other of ['serve', 'check', 'explain', 'token', 'load'].filter((c) => c !== command)) {
        expect(text).not.toContain(`\n${other}:\n`);
      }
    },
  );

  it('`load --help` lists every load flag the parser accepts', async () => {
    const text = commandUsage('load');
    for (const flag of [
      '--target',
      '--spawn-agent',
      '--connections',
      '--pipeline',
      '--rate',
      '--pacing',
      '--batch-us',
      '--generator-gc',
      '--duration',
      '--warmup',
      '--timeout',
      '--tokens',
      '--invalid-share',
      '--alg',
      '--token-file',
      '--ids',
      '--json',
    ]) {
      expect(text).toContain(flag);
    }
  });
});
