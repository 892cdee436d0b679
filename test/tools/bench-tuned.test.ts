import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adapterStem, nodeBenchFiles, TUNED_RATIO_LEGEND, tunedCases, type TunedReport } from '../../src/tools/bench';

/**
 * `detloss bench --node --tuned`: the default launch plan against the plans tune() chose, on one
 * device, interleaved. A small run end to end on Node's WebGPU (SwiftShader here): its files, its
 * table, and that the tuned context's calls ran the tuned plans. Timings are never asserted, only
 * that they are there and finite.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
};
const detloss = (args: string[]) => spawnSync(process.execPath, [join(root, 'dist/cli.js'), ...args], { cwd: root, encoding: 'utf8', timeout: 170_000 });

const LABELS = ['iou_loss{ciou}', 'smooth_l1', 'sigmoid_focal', 'cross_entropy c=80'];

describe('the cases and files of --tuned', () => {
  it('four cases, one op of each family the quick preset times, each with the op as tune() takes it', () => {
    const cases = tunedCases([1e4]);
    expect(cases.map((c) => c.op)).toEqual(['iou_loss', 'smooth_l1', 'sigmoid_focal', 'cross_entropy']);
    expect(cases.every((c) => c.n === 1e4)).toBe(true);
    expect(cases.find((c) => c.op === 'cross_entropy')).toMatchObject({ width: 80, tune: { op: 'cross_entropy', dims: { c: 80 } } });
    expect(cases.find((c) => c.op === 'sigmoid_focal')!.width).toBeUndefined();
    expect(tunedCases().map((c) => c.n)).toEqual([1e6, 1e6, 1e6, 1e6]);
  });

  it('the files are named after the adapter with -tuned, and a committed one is never overwritten', () => {
    const out = tmp('detloss-tuned-names-');
    expect(nodeBenchFiles(out, { vendor: 'acme', device: 'gpu-1' }, new Date(), '-tuned').json).toBe(join(out, 'node-acme-gpu-1-tuned.json'));
  });
});

describe('bad arguments of --tuned: exit 2 with the reason', () => {
  const cases: [string[], RegExp][] = [
    [['bench', '--tuned'], /^detloss bench: --tuned runs on Node's WebGPU: add --node$/],
    [['bench', '--node', '--tuned', '--ops', 'smooth_l1'], /^detloss bench: --tuned times its own four cases .*leave out --ops$/],
    [['bench', '--node', '--tuned', '--budget', 'x'], /^detloss bench: --budget takes milliseconds/],
    [['bench', '--node', '--budget', '100'], /^detloss bench: --budget is the tuning budget of --tuned/],
    [['bench', '--tuned', '--probe-plans'], /^detloss bench: give --probe-plans or --tuned, not both$/],
  ];
  for (const [args, reason] of cases) {
    it(`detloss ${args.join(' ')}`, () => {
      const r = detloss(args);
      expect(r.status, r.stdout + r.stderr).toBe(2);
      expect(r.stderr.split('\n')[0]).toMatch(reason);
      expect(r.stdout).toBe('');
    });
  }
});

describe('detloss bench --node --tuned, end to end on Node WebGPU (SwiftShader here)', () => {
  const out = tmp('detloss-bench-tuned-');
  let run: { code: number | null; out: string };
  beforeAll(() => {
    // The Node entry only (bench/dist-node); dist/ is built by pretest.
    const build = spawnSync(process.execPath, [join(root, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'bench/vite.node.config.ts'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    expect(build.status, `${build.stdout}${build.stderr}`).toBe(0);
    const r = detloss(['bench', '--node', '--tuned', '--n', '1e4', '--budget', '12000', '--reps', '2', '--out', out]);
    run = { code: r.status, out: `${r.stdout}${r.stderr}` };
  }, 300_000);

  const files = () => {
    const json = readdirSync(out).filter((f) => f.endsWith('.json'));
    expect(json).toHaveLength(1);
    const report = JSON.parse(readFileSync(join(out, json[0]), 'utf8')) as TunedReport & { kind: string; date: string };
    return { name: json[0], report, md: readFileSync(join(out, json[0].replace(/\.json$/, '.md')), 'utf8') };
  };

  it('exits 0, logging each measurement of the tuning, its choices and time, and a line per case', () => {
    expect(run.code, run.out).toBe(0);
    expect(run.out).toMatch(/^adapter: google \/ swiftshader.*; load average [\d.]+, [\d.]+, [\d.]+$/m);
    expect(run.out).toMatch(/^ {2}iou 1e4 {2}#1 {2}\d+\.\d s of 12\.0 s {2}/m);
    expect(run.out).toMatch(/^tuning took \d+\.\d s of a 12\.0 s budget \(after \d+\.\d s compiling the default plan's pipelines\)$/m);
    for (const [i, label] of LABELS.entries()) expect(run.out).toContain(`[${i + 1}/4] ${label} n=1e+4: default and tuned plans, interleaved`);
    expect(run.out).not.toMatch(/FAILED/);
  });

  it('writes <stem>-tuned.json and .md named after the adapter', () => {
    const { name, report } = files();
    expect(name).toBe(`${adapterStem(report.adapter)}-tuned.json`);
    expect(existsSync(join(out, name.replace(/\.json$/, '.md')))).toBe(true);
    expect(report.kind).toBe('tuned');
    expect(report.failures).toEqual([]);
    expect(report.reps).toBe(2);
    expect(report.machine.load.before).toHaveLength(3);
    expect(report.machine.load.after).toHaveLength(3);
    expect(report.tuning!.ms).toBeGreaterThan(0);
    expect(report.tuning!.record.format).toBe('detloss-plans');
    // The tuner starts a family's first measurement only where it fits the budget left: on a busy
    // machine cross-entropy (40 ms a call here) can miss it. The small families always fit.
    expect(report.tuning!.record.plans.map((c) => c.family)).toEqual(expect.arrayContaining(['focal', 'iou', 'regression']));
  });

  it('the .md names the four cases with both columns and their ratio', () => {
    const { md, report } = files();
    const head = md.split('\n').find((l) => l.startsWith('| case | N |'))!.split('|').map((x) => x.trim());
    for (const column of ['default ms', 'tuned ms', 'default / tuned', 'default wall ms', 'tuned wall ms', 'calls on it']) expect(head, column).toContain(column);
    for (const label of LABELS) {
      const cells = md.split('\n').find((l) => l.startsWith(`| ${label} | 1e+4 |`))?.split('|').map((x) => x.trim());
      expect(cells, label).toBeDefined();
      for (const column of ['default ms', 'tuned ms', 'default / tuned']) expect(cells![head.indexOf(column)], `${label} ${column}`).toMatch(/^\d+(\.\d+)?$/);
    }
    expect(md).toContain(TUNED_RATIO_LEGEND);
    expect(md).toContain('| family | size | op | chosen plan | ms | default ms | default / chosen | candidates |');
    for (const r of report.cases) expect(Number.isFinite(r.ratio) && r.ratio > 0, r.label).toBe(true);
  });

  it("every call of the tuned context ran its family's tuned plan, and no call of the default context did", () => {
    const { report } = files();
    const names = new Map([['iou_loss', 'iou 1e4'], ['smooth_l1', 'regression 1e4'], ['sigmoid_focal', 'focal 1e4'], ['cross_entropy', 'ce 1e4/1e2']]);
    const tuned = new Set(report.tuning!.record.plans.map((c) => `${c.family} ${c.size}`));
    expect(report.cases).toHaveLength(4);
    for (const r of report.cases) {
      // A family the budget left out has no plan to run: its calls run the context's.
      const expected = tuned.has(names.get(r.op)!) ? [names.get(r.op)] : [];
      expect(r.tuned.tunedPlans, r.label).toEqual(expected);
      expect(r.tuned.calls).toBe(4);
      expect(r.tuned.tunedCalls, r.label).toBe(expected.length ? r.tuned.calls : 0);
      expect(r.default.tunedPlans, r.label).toEqual([]);
      expect(r.default.tunedCalls).toBe(0);
      expect(r.timer).toBe('gpu');
      for (const side of [r.default, r.tuned]) {
        expect(side.gpuTimesMs).toHaveLength(2);
        for (const t of [...side.timesMs, ...side.gpuTimesMs]) expect(Number.isFinite(t) && t >= 0).toBe(true);
      }
    }
  });
});
