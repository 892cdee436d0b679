import { existsSync, readFileSync, rmSync } from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';
import { adapterLogOf } from './node-gpu-log.ts';

/**
 * Closes the run with the adapter(s) the Node tests ran on (noted by test/helpers/node-gpu.ts), the
 * notes of tests that skipped themselves, and a plain "N passed, M failed" line (plus ", K skipped"
 * when any were).
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const notes: string[] = [];
    for (const m of modules) {
      let tests = 0;
      for (const t of m.children.allTests()) {
        tests++;
        const r = t.result();
        if (r.state === 'passed') passed++;
        else if (r.state === 'failed') failed++;
        else {
          skipped++;
          // A test that skipped itself says why (ctx.skip(note)): name it, so no skip goes unseen.
          if (r.state === 'skipped' && r.note) notes.push(`skipped: ${t.fullName}: ${r.note}`);
        }
      }
      if (tests === 0 && m.state() === 'failed') failed++; // a file that failed to load
    }
    const runDir = process.env.DETLOSS_TEST_RUN_DIR;
    const log = runDir ? adapterLogOf(runDir) : undefined;
    if (log && existsSync(log)) {
      const adapters = [...new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean))];
      rmSync(log, { force: true }); // a watch-mode rerun notes its own
      console.log(`\nNode WebGPU adapter${adapters.length > 1 ? 's' : ''}: ${adapters.join('; ')}`);
    }
    if (notes.length) console.log(`\n${notes.join('\n')}`);
    console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  }
}
