import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { benchSvg, benchTable } from './report';
import type { ProbeReport } from './probe';
import type { TunedReport } from './tuned';
import { tunedTable } from './tuned-report';
import type { BenchResult } from './run';

/** Writes `text` to `file` whole: an interrupted write leaves the old file, never half of a new one. */
function writeWhole(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/**
 * Writes latest.json, latest.svg and latest.md under `outDir`; with `files` (from
 * {@link nodeBenchFiles}), the JSON and the table to those paths instead.
 */
export function writeBench(res: BenchResult, outDir: string, reps: number, files?: { json: string; md: string }): string[] {
  mkdirSync(outDir, { recursive: true });
  const json = { driver: res.driver ?? 'chromium', adapter: res.adapter, machine: res.machine, date: new Date().toISOString(), reps, rows: res.rows, cases: res.cases, failures: res.failures, skippedOps: res.skippedOps };
  if (files) {
    writeWhole(files.json, `${JSON.stringify(json, null, 1)}\n`);
    writeWhole(files.md, `${benchTable(res)}\n`);
    return [files.json, files.md];
  }
  const out = [join(outDir, 'latest.json'), join(outDir, 'latest.svg'), join(outDir, 'latest.md')];
  writeWhole(out[0], `${JSON.stringify(json, null, 1)}\n`);
  writeWhole(out[1], benchSvg(res));
  writeWhole(out[2], `${benchTable(res)}\n`);
  return out;
}

const slug = (x: unknown) =>
  String(x ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');

/**
 * The file stem for an adapter's Node results: `node-<vendor>-<device>` (the description where the
 * device is empty or a bare PCI id), the vendor not repeated, e.g. node-nvidia-h200,
 * node-google-swiftshader-device-subzero.
 */
export function adapterStem(a: Record<string, unknown>): string {
  const vendor = slug(a.vendor) || 'unknown';
  let dev = slug(a.device);
  if (!dev || /^(0x)?[0-9a-f]+$/.test(dev)) dev = slug(a.description) || slug(a.architecture) || 'adapter';
  if (dev === vendor || dev.startsWith(`${vendor}-`)) dev = dev.slice(vendor.length + 1) || dev;
  return `node-${vendor}-${dev}`;
}

/**
 * Whether git tracks `file`: true, false, or undefined when git cannot say (not installed, or no
 * repository: a copy of the tree carried without .git may hold committed results all the same).
 */
function gitTracks(file: string): boolean | undefined {
  const r = spawnSync('git', ['ls-files', '--error-unmatch', '--', basename(file)], { cwd: dirname(file), stdio: 'ignore' });
  if (r.error || (r.status !== 0 && r.status !== 1)) return undefined;
  return r.status === 0;
}

/**
 * Where `detloss bench --node` writes: `<out>/<stem>.json` and `.md` (`<stem><suffix>`: `-tuned`
 * for `--tuned`). A committed result is never overwritten: when either file exists and git tracks
 * it (or git cannot tell), both get a timestamp suffix instead (`<stem>-20260101T120000.json`).
 * Chosen once per run.
 */
export function nodeBenchFiles(outDir: string, adapter: Record<string, unknown>, now = new Date(), suffix = ''): { json: string; md: string } {
  const stem = join(outDir, adapterStem(adapter) + suffix);
  const taken = ['.json', '.md'].some((ext) => existsSync(stem + ext) && gitTracks(stem + ext) !== false);
  const base = taken ? `${stem}-${now.toISOString().slice(0, 19).replace(/[-:]/g, '')}` : stem;
  return { json: `${base}.json`, md: `${base}.md` };
}

/** Writes the plan probe's report to `<outDir>/plan-probe.json` (with the date); returns the path. */
export function writeProbe(report: ProbeReport, outDir: string): string {
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, 'plan-probe.json');
  writeWhole(file, `${JSON.stringify({ ...report, date: new Date().toISOString() }, null, 1)}\n`);
  return file;
}

/** Writes the tuned bench's report to `files` (from {@link nodeBenchFiles} with `-tuned`): the JSON with the date, and the table. */
export function writeTuned(report: TunedReport, files: { json: string; md: string }): string[] {
  mkdirSync(dirname(files.json), { recursive: true });
  const { driver, adapter, machine, reps, warmup, budgetMs, plan, tuning, cases, failures } = report;
  writeWhole(files.json, `${JSON.stringify({ driver, kind: 'tuned', adapter, machine, date: new Date().toISOString(), reps, warmup, budgetMs, plan, tuning, cases, failures }, null, 1)}\n`);
  writeWhole(files.md, `${tunedTable(report)}\n`);
  return [files.json, files.md];
}
