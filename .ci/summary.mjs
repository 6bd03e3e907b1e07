// Reads vitest's JSON reports (one per test step: `npm test`, `npm run test:systemd`) and prints
// the CI summary line over all of them: `N passed, M failed[, K skipped]`.
// A test file that failed without any failed test (an import error, a throw at module level such
// as a missing HAProxy under CI, a failing hook) counts as one failure, so that it cannot hide;
// so does a report that is missing or unreadable.
// Exit code: 0 only if nothing failed and at least one test passed.
import { readFileSync } from 'node:fs';

const files = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of files) {
  let report;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    console.error(`ci: no readable vitest JSON report at ${file}: ${err.message}`);
    failed++;
    continue;
  }
  let fileErrors = 0;
  for (const f of report.testResults ?? []) {
    const failedTests = (f.assertionResults ?? []).filter((t) => t.status === 'failed').length;
    if (f.status === 'failed' && failedTests === 0) {
      fileErrors++;
      console.error(`ci: ${f.name} failed outside any test: ${(f.message ?? '').split('\n')[0]}`);
    }
  }
  passed += report.numPassedTests ?? 0;
  failed += (report.numFailedTests ?? 0) + fileErrors;
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
}
if (files.length === 0) {
  console.error('ci: no report given');
  failed++;
}
if (passed === 0 && failed === 0) console.error('ci: no test ran');
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
