// The counts the README and docs/ state equal the code's: fixture cases (counted as `npm run parity`
// counts them), cases shipped in the package (as the build picks them), and ops (the registry).
import { mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { opNames } from '../../src/ops/registry';
import { fixtureFiles, readCases } from '../../src/tools/parity';
import { markdownFiles, prose, readDoc, rootPath } from '../helpers/markdown';

/** Every number written before `what` (e.g. 'fixture cases') in the page's prose, as numbers. */
export function statedCounts(text: string, what: string): number[] {
  const re = new RegExp(`(\\d[\\d,]*) ${what.replace(/ /g, '\\s+')}\\b`, 'g');
  return [...prose(text).matchAll(re)].map((m) => Number(m[1].replace(/,/g, '')));
}

const pages = markdownFiles().filter((f) => f !== 'docs/ops.md'); // the contract is a copy, checked by docs-sync
const fixtureCases = readCases(fixtureFiles([rootPath('test/fixtures')])).length;

const shipDir = mkdtempSync(join(tmpdir(), 'detloss-shipped-'));
afterAll(() => rmSync(shipDir, { recursive: true, force: true }));
function shippedCases(): number {
  execFileSync(process.execPath, ['scripts/ship-fixtures.mjs', '--to', shipDir], { cwd: rootPath('.') });
  return readCases(fixtureFiles([shipDir])).length;
}

describe('counts in README.md and docs/', () => {
  it('reads a count with or without a thousands comma', () => {
    expect(statedCounts('all 1,032 fixture cases; 24 ops, `9 ops` in code; 198 shipped\ncases', 'fixture cases')).toEqual([1032]);
    expect(statedCounts('24 ops, `9 ops` in code', 'ops')).toEqual([24]);
    expect(statedCounts('198 shipped\ncases', 'shipped cases')).toEqual([198]);
  });

  it(`fixture cases: the README states the number npm run parity checks (${fixtureCases})`, () => {
    expect(statedCounts(readDoc('README.md'), 'fixture cases').length, 'README.md states no count of fixture cases').toBeGreaterThan(0);
    for (const page of pages) {
      for (const n of statedCounts(readDoc(page), 'fixture cases')) expect(n, `${page}: "${n} fixture cases"`).toBe(fixtureCases);
      // A run's closing line quoted in prose: `1032 passed, 0 failed`.
      for (const m of readDoc(page).matchAll(/`(\d+) passed, 0 failed`/g)) expect(Number(m[1]), `${page}: "${m[0]}"`).toBe(fixtureCases);
    }
  });

  it('ops: the README states the number of ops in the registry and names each', () => {
    const readme = readDoc('README.md');
    const stated = statedCounts(readme, 'ops');
    expect(stated.length, 'README.md states no count of ops').toBeGreaterThan(0);
    for (const n of stated) expect(n, `README.md: "${n} ops"`).toBe(opNames().length);
    const missing = opNames().filter((op) => !readme.includes(`\`${op}\``));
    expect(missing, 'ops the README does not name').toEqual([]);
  });

  it('shipped cases: the docs state the number the build ships', () => {
    const shipped = shippedCases();
    const stated = pages.flatMap((page) => statedCounts(readDoc(page), 'shipped cases').map((n) => [page, n] as const));
    expect(stated.length, 'no page states how many cases ship').toBeGreaterThan(0);
    for (const [page, n] of stated) expect(n, `${page}: "${n} shipped cases"`).toBe(shipped);
  });
});
