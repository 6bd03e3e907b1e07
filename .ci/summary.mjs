// Reads vitest's JSON report and prints the CI summary line: `N passed, M failed[, K skipped]`.
// A test file that failed without any failed test (an import error, a throw at module level such
// as a missing HAProxy under CI, a failing hook) counts as one failure, so that it cannot hide.
// Exit code: 0 only if nothing failed and at least one test passed.
import { readFileSync } from 'node:fs';

const file = process.argv[2];
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.error(`ci: no readable vitest JSON report at ${file}: ${err.message}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}

let fileErrors = 0;
for (const f of report.testResults ?? []) {
  const failedTests = (f.assertionResults ?? []).filter((t) => t.status === 'failed').length;
  if (f.status === 'failed' && failedTests === 0) {
    fileErrors++;
    console.error(`ci: ${f.name} failed outside any test: ${(f.message ?? '').split('\n')[0]}`);
  }
}
const passed = report.numPassedTests ?? 0;
const failed = (report.numFailedTests ?? 0) + fileErrors;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
if (passed === 0 && failed === 0) console.error('ci: no test ran');
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
