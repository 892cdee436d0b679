#!/usr/bin/env node
// The long differential fuzz run: `npm run fuzz -- --minutes 30 --seed 7 [--case i] [--ops a,b] [--report out.json]`;
// `--ops` runs only those ops (case i is of ops[i % ops.length]; replay a case with the same --ops);
// `npm run fuzz -- --audit [--report out.md]` measures the tolerance rule instead (test/fuzz/audit.fuzz.ts).
// Runs test/fuzz/long-run.fuzz.ts under vitest (which brings the ?raw WGSL imports and the Vulkan
// environment of vite.config.ts); exits 1 on any failure.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log('usage: npm run fuzz -- [--minutes 30] [--seed S] [--case i] [--ops op1,op2] [--report file.json]\n       npm run fuzz -- --audit [--report file.md]\n\nRuns random cases of every op on the GPU (Dawn) against the float64 reference for the given time;\nexits 1 on any failure, printing each failing case with the seed and index that replay it (--case i).\n--audit prints how much the tolerance rule excuses: the share of values whose allowed error is at\nleast the value, and the share of small planted defects it flags, per op and output.');
  process.exit(0);
}
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : def;
};
const minutes = Number(opt('minutes', '30'));
const seed = Number(opt('seed', String(Date.now() % 1e6)));
if (!Number.isFinite(minutes) || minutes <= 0 || !Number.isInteger(seed)) {
  console.error('usage: npm run fuzz -- [--minutes 30] [--seed S] [--case i] [--report file.json]');
  process.exit(2);
}
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const audit = args.includes('--audit');
console.log(audit ? 'detloss fuzz: tolerance audit' : `detloss fuzz: seed ${seed}, ${minutes} min`);
const env = { ...process.env, FUZZ_SEED: String(seed), FUZZ_MINUTES: String(minutes) };
if (audit) env.FUZZ_AUDIT = '1';
if (opt('case')) env.FUZZ_CASE = opt('case');
if (opt('ops')) env.FUZZ_OPS = opt('ops');
if (opt('report')) env[audit ? 'AUDIT_REPORT' : 'FUZZ_REPORT'] = opt('report');
const r = spawnSync(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/fuzz/vitest.config.ts'], {
  cwd: root,
  env,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
