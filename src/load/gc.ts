/**
 * The generator's garbage collector. By default V8 scavenges in parallel and marks concurrently
 * on helper threads; on a small machine those threads take a CPU from the agent under test at
 * random moments, and the load script reports the stall as the agent's latency (p99 against the
 * null agent is several times lower with `--single-threaded-gc`; BENCHMARKS.md).
 *
 * V8 takes such flags at startup only (set at runtime, V8 aborts in its next GC), so `load`
 * runs itself again under the flag, unless it has it already or `--generator-gc parallel`.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { agentCommand } from './agent-process.js';

export type GeneratorGc = 'single' | 'parallel';

export const SINGLE_THREADED_GC = '--single-threaded-gc';

/** How this process collects garbage. */
export function currentGc(execArgv: readonly string[] = process.execArgv): GeneratorGc {
  return execArgv.includes(SINGLE_THREADED_GC) ? 'single' : 'parallel';
}

/** node's arguments to run the CLI again with `cliArgs` under single-threaded GC. */
export function singleGcArgs(cliArgs: readonly string[]): string[] {
  return [SINGLE_THREADED_GC, ...agentCommand().args, ...cliArgs];
}

/**
 * Runs the CLI again with `cliArgs` under single-threaded GC, on our stdio; SIGINT and SIGTERM
 * are passed on. Resolves with its exit code (128 + signal number when a signal ended it).
 */
export function runWithSingleGc(cliArgs: readonly string[]): Promise<number> {
  const child = spawn(process.execPath, singleGcArgs(cliArgs), { stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return new Promise((resolve) => {
    const done = (code: number) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code);
    };
    child.once('error', (err) => {
      process.stderr.write(`load: cannot run ${process.execPath}: ${err.message}\n`);
      done(1);
    });
    child.once('exit', (code, signal) => {
      if (code !== null) done(code);
      else done(128 + (signal === null ? 1 : constants.signals[signal]));
    });
  });
}
