import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// scripts/check-log.mjs, on logs written here: what it counts, what it leaves out, its exit codes.
const script = fileURLToPath(new URL('../../scripts/check-log.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'detloss-check-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function check(name: string, text: string) {
  const file = join(dir, name);
  writeFileSync(file, text);
  const r = spawnSync(process.execPath, [script, file], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

const summary = ['', ' Test Files  2 passed (2)', '      Tests  9 passed (9)', '', 'Node WebGPU adapter: google / swiftshader (software fallback)', '', '9 passed, 0 failed', ''];

describe('scripts/check-log.mjs', () => {
  it('a clean log passes (exit 0); a slow test named beside its pass mark is not counted, even in colour', () => {
    const r = check('clean.log', ['', ' RUN  v4', '', ' \x1b[32m✓\x1b[39m test/a.test.ts (3 tests) 900ms', '     \x1b[33m\x1b[2m✓\x1b[22m\x1b[39m a device lost during a call rejects that call \x1b[33m 492\x1b[2mms\x1b[22m\x1b[39m', ...summary].join('\n'));
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('1 vitest pass mark(s) (✓) contain one of the words and are not counted.');
    expect(r.out).toContain('no line with "error", "lost" or "NaN" outside the summary.');
  });

  it('lists each line with error, lost or NaN in any case, with its number and the test file it came from (exit 1)', () => {
    const lines = ['', 'stdout | test/ops/x.test.ts > x > measures', 'max abs error vs fixtures: 1e-7', 'fine line', '', 'stderr | test/y.test.ts', 'GPU device LOST', 'loss nan', '', 'a stray Error', ...summary];
    const r = check('noisy.log', lines.join('\n'));
    expect(r.code, r.out).toBe(1);
    expect(r.out).toContain('4 line(s) with "error", "lost" or "NaN" outside the summary:');
    expect(r.out).toContain('3: max abs error vs fixtures: 1e-7   [test/ops/x.test.ts]');
    expect(r.out).toContain('7: GPU device LOST   [test/y.test.ts]');
    expect(r.out).toContain('8: loss nan   [test/y.test.ts]');
    expect(r.out).toMatch(/^10: a stray Error$/m);
    expect(r.out).not.toContain('fine line');
  });

  it('the final summary is left out, a failing test\'s mark is not; without a summary every line is checked', () => {
    const failing = check('failing.log', [' ❯ test/a.test.ts (2 tests | 1 failed)', '   × a NaN weight makes the loss NaN', ...summary.slice(0, 3), ' FAIL  test/a.test.ts > an error', ''].join('\n'));
    expect(failing.code).toBe(1);
    expect(failing.out).toContain('2: × a NaN weight makes the loss NaN');
    expect(failing.out).not.toContain('FAIL  test/a.test.ts > an error');
    const cut = check('cut.log', 'loss NaN\n');
    expect(cut.code).toBe(1);
    expect(cut.out).toContain('no "Test Files" summary found: all of them');
  });

  it('with no file, or two, prints its usage and exits 2', () => {
    for (const args of [[], ['a', 'b']]) {
      const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('usage: node scripts/check-log.mjs <saved npm test log>');
    }
  });
});
