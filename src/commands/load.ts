/** `load`: drive an agent with SPOP traffic as HAProxy would, and report throughput and latency. */
import { constants } from 'node:os';
import {
  currentGc,
  formatReport,
  LoadInterrupted,
  parseLoadOptions,
  runLoadTest,
  runWithSingleGc,
} from '../load/index.js';
import type { CliValues } from './options.js';

/**
 * `argv`: the CLI's arguments, to run them again under `--single-threaded-gc` (src/load/gc.ts).
 * SIGINT or SIGTERM ends the run early: in-flight NOTIFYs are answered, the report covers the
 * run so far, a spawned agent is stopped; the exit code is then 128 + the signal's number. A
 * second signal ends the process at once.
 */
export async function runLoad(values: CliValues, argv: readonly string[]): Promise<number> {
  const options = parseLoadOptions(values);
  if (options.generatorGc === 'single' && currentGc() !== 'single') return runWithSingleGc(argv);
  const abort = new AbortController();
  let caught: NodeJS.Signals | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    caught = signal;
    abort.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const interruptedCode = () => (caught === null ? 0 : 128 + constants.signals[caught]);
  let report: Awaited<ReturnType<typeof runLoadTest>>;
  try {
    report = await runLoadTest(options, {
      log: (line) => process.stderr.write(`${line}\n`),
      ...(options.agentPid === null ? {} : { agentPid: options.agentPid }),
      signal: abort.signal,
    });
  } catch (err) {
    if (err instanceof LoadInterrupted) {
      process.stderr.write(`load: ${caught ?? 'signal'}: ${err.message}\n`);
      return interruptedCode();
    }
    process.stderr.write(`load: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  if (caught !== null) {
    process.stderr.write(`load: interrupted by ${caught}: the report covers the run until then\n`);
    return interruptedCode();
  }
  return report.errors.total === 0 ? 0 : 1;
}
