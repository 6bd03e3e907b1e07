/** `load`: drive an agent with SPOP traffic as HAProxy would, and report throughput and latency. */
import type { CliValues } from '../cli.js';
import { UsageError } from '../cli.js';
import {
  currentGc,
  formatReport,
  LoadUsageError,
  parseLoadOptions,
  runLoadTest,
  runWithSingleGc,
} from '../load/index.js';

/** `argv`: the CLI's arguments, to run them again under `--single-threaded-gc` (src/load/gc.ts). */
export async function runLoad(values: CliValues, argv: readonly string[]): Promise<number> {
  let options: ReturnType<typeof parseLoadOptions>;
  try {
    options = parseLoadOptions(values);
  } catch (err) {
    if (err instanceof LoadUsageError) throw new UsageError(err.message);
    throw err;
  }
  if (options.generatorGc === 'single' && currentGc() !== 'single') return runWithSingleGc(argv);
  let report: Awaited<ReturnType<typeof runLoadTest>>;
  try {
    report = await runLoadTest(options, {
      log: (line) => process.stderr.write(`${line}\n`),
      ...(options.agentPid === null ? {} : { agentPid: options.agentPid }),
    });
  } catch (err) {
    process.stderr.write(`load: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.errors.total === 0 ? 0 : 1;
}
