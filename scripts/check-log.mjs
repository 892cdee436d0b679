#!/usr/bin/env node
// Reads a saved `npm test` log and lists the lines that read like failures: any line with "error",
// "lost" or "NaN" in it (case-insensitive), outside the final summary. A green run should have none:
// what the tests note about NaN inputs, lost devices and measured errors is printed only when a
// test fails or with DETLOSS_VERBOSE=1 (test/helpers/note.ts).
//
//   npm test > /tmp/test.log 2>&1; node scripts/check-log.mjs /tmp/test.log
//
// Left out of the check:
// - the final summary: from vitest's last "Test Files" line to the end (vitest's counts, then the
//   summary reporter's adapter line and "N passed, M failed");
// - vitest's own pass marks, lines that start with ✓: a passing file, or a passing test that was slow
//   enough to be named. A test's name may say what it checks ("a NaN weight makes the loss NaN");
//   next to a ✓ that reads as a pass, not as a failure. A failing test's ✗ or × line is checked.
// Each offending line is shown with its number and the test file whose output it is in, where
// vitest's "stdout | <file> > <test>" header names one. Exit 0 when clean, 1 when not, 2 on misuse.
import { readFileSync } from 'node:fs';

const WORDS = /error|lost|nan/i;

const file = process.argv[2];
if (!file || process.argv.length > 3) {
  console.error('usage: node scripts/check-log.mjs <saved npm test log>');
  process.exit(2);
}
// Colours and other escape sequences out (vitest colours its output when it thinks it may).
const lines = readFileSync(file, 'utf8').replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').split(/\r?\n/);

let summaryAt = -1;
for (let i = lines.length - 1; i >= 0; i--) if (/^\s*Test Files\s/.test(lines[i])) { summaryAt = i; break; }
const end = summaryAt === -1 ? lines.length : summaryAt;

const offending = [];
let passMarks = 0;
let source = '';
for (let i = 0; i < end; i++) {
  const line = lines[i];
  const header = /^(?:stdout|stderr) \| (\S+)/.exec(line);
  if (header) source = header[1];
  else if (line.trim() === '') source = ''; // vitest ends a test's block of output with a blank line
  if (!WORDS.test(line)) continue;
  if (/^\s*✓/.test(line)) {
    passMarks++;
    continue;
  }
  offending.push(`${i + 1}: ${line.trim()}${source && !header ? `   [${source}]` : ''}`);
}

console.log(`${file}: ${lines.length} lines; checked ${end}${summaryAt === -1 ? ' (no "Test Files" summary found: all of them)' : ', up to the final summary'}.`);
if (passMarks) console.log(`${passMarks} vitest pass mark(s) (✓) contain one of the words and are not counted.`);
if (offending.length) {
  console.log(`${offending.length} line(s) with "error", "lost" or "NaN" outside the summary:`);
  for (const o of offending) console.log(o);
  process.exit(1);
}
console.log('no line with "error", "lost" or "NaN" outside the summary.');
