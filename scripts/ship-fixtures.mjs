#!/usr/bin/env node
/**
 * Writes the fixtures that ship with the package (what `npx detloss parity` runs with no paths):
 * a subset of test/fixtures, each case copied unchanged. For every fixture file, the smallest case
 * of each op and variant, then the smallest case of each further parameter set while the file
 * stays under its share of the budget.
 *
 *   node scripts/ship-fixtures.mjs [--from test/fixtures] [--to dist/fixtures] [--budget 64000] [--verbose]
 *
 * Quiet (it runs inside the build) unless --verbose.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

/** A placeholder for -0 while the cases are written (JSON.stringify drops its sign). */
const NEG_ZERO = '@@detloss:negative-zero@@';

const { values } = parseArgs({ options: { from: { type: 'string', default: 'test/fixtures' }, to: { type: 'string', default: 'dist/fixtures' }, budget: { type: 'string', default: '64000' }, verbose: { type: 'boolean', default: false } } });
const budget = Number(values.budget);
const files = readdirSync(values.from).filter((f) => f.endsWith('.json')).sort();
rmSync(values.to, { recursive: true, force: true });
mkdirSync(values.to, { recursive: true });
let total = 0;
let kept = 0;
let all = 0;
for (const f of files) {
  const doc = JSON.parse(readFileSync(join(values.from, f), 'utf8'));
  const sized = doc.cases.map((c, i) => ({ c, i, text: JSON.stringify(c) })).sort((a, b) => a.text.length - b.text.length || a.i - b.i);
  const picked = new Set();
  const seen = new Set();
  let bytes = 0;
  const take = (key, force) => {
    for (const s of sized) {
      const k = key(s.c);
      if (picked.has(s.i) || seen.has(k) || (!force && bytes + s.text.length > budget)) continue;
      seen.add(k);
      picked.add(s.i);
      bytes += s.text.length;
    }
  };
  // Every op and variant once, whatever it weighs; then other parameter sets within the budget.
  take((c) => `${c.op}|${c.params.variant ?? ''}`, true);
  take((c) => `${c.op}|${JSON.stringify(c.params)}`, false);
  const cases = doc.cases.filter((_, i) => picked.has(i));
  // JSON.stringify writes -0 as 0; the cases must stay as they are, so -0 keeps its sign.
  const text = `${JSON.stringify({ ...doc, cases }, (_, v) => (Object.is(v, -0) ? NEG_ZERO : v)).replaceAll(`"${NEG_ZERO}"`, '-0')}\n`;
  writeFileSync(join(values.to, f), text);
  total += text.length;
  kept += cases.length;
  all += doc.cases.length;
}
writeFileSync(
  join(values.to, 'README.md'),
  `# Shipped fixtures\n\n${kept} of the ${all} cases of the repository's test/fixtures (format detloss-fixture/1), copied unchanged: for each file, the smallest case of each op and variant and of further parameter sets. \`npx detloss parity\` runs them when given no paths.\n`,
);
if (values.verbose) console.log(`ship-fixtures: ${kept} of ${all} cases, ${(total / 1024).toFixed(0)} KiB in ${values.to}`);
