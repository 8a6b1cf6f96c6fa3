/**
 * Ends a test run with the ten slowest files (where the wall time of
 * `npm test` goes) and one plain line, "N passed, N failed[, N skipped]",
 * that any CI can read regardless of vitest's own formatting.
 */
import type { Reporter, TestModule } from 'vitest/node';

const SLOWEST = 10;

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      if (module.state() === 'failed' && [...module.children.allTests()].length === 0) failed++;
    }
    process.stdout.write(slowest(testModules));
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  }
}

/** The slowest files by the time their tests and hooks took, longest first, with seconds. */
function slowest(testModules: ReadonlyArray<TestModule>): string {
  const timed = testModules
    .map((module) => ({ file: module.relativeModuleId, ms: module.diagnostic().duration }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, SLOWEST);
  if (timed.length < 2) return '';
  const width = Math.max(...timed.map((t) => t.file.length));
  const rows = timed.map((t) => `  ${t.file.padEnd(width)}  ${(t.ms / 1000).toFixed(1).padStart(6)} s`);
  return `\nSlowest ${timed.length} files (tests and hooks):\n${rows.join('\n')}\n`;
}
