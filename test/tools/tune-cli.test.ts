import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanRecord } from '../../src/runtime/public';
import { parseTuneOp } from '../../src/tools/tune';
import { choicesTable, planChanges, planText } from '../../src/tools/tune-report';
import { nodeContext } from '../helpers/node-gpu';

/**
 * `detloss tune --node` as a user meets it (dist/cli.js, built by pretest): its arguments, a short
 * run on Node's WebGPU (SwiftShader here) whose record loads into a context, and a run that adds
 * to an earlier record. Timings are never asserted beyond the budget.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
};

function detloss(args: string[], cwd = root, cli = join(root, 'dist/cli.js')) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, wallMs: performance.now() - t0 };
}

describe('detloss tune: usage and bad arguments', () => {
  it('tune --help: the usage on stdout, exit 0; detloss --help names the command', () => {
    const r = detloss(['tune', '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.startsWith('usage: detloss tune --node')).toBe(true);
    for (const o of ['--node', '--ops', '--sizes', '--budget', '--reps', '--out', '--plans']) expect(r.stdout).toContain(`  ${o} `);
    expect(r.stdout).toMatch(/Exit status: 0 /);
    expect(detloss(['--help']).stdout).toMatch(/^ {7}detloss tune --node /m);
  });

  const cases: [string[], RegExp][] = [
    [['tune'], /^detloss tune: tuning needs --node for now: it runs on Node's WebGPU/],
    [['tune', '--ops', 'smooth_l1'], /^detloss tune: tuning needs --node/],
    [['tune', '--node', '--sizes', 'abc'], /^detloss tune: --sizes takes positive integers \(1e4 is fine\), got "abc"$/],
    [['tune', '--node', '--sizes', '1e6,'], /^detloss tune: --sizes takes a comma-separated list/],
    [['tune', '--node', '--budget', 'soon'], /^detloss tune: --budget takes milliseconds/],
    [['tune', '--node', '--budget=-5'], /^detloss tune: --budget takes milliseconds/],
    [['tune', '--node', '--reps', '0'], /^detloss tune: --reps takes positive integers/],
    [['tune', '--node', '--reps', '101'], /^detloss tune: --reps takes one integer from 1 to 100/],
    [['tune', '--node', '--ops', 'not_an_op'], /^detloss tune: --ops: unknown op "not_an_op"$/],
    [['tune', '--node', '--ops', 'iou_loss:'], /^detloss tune: --ops takes op names, with a variant as iou_loss:ciou/],
    [['tune', '--node', '--plans', 'no/such/plans.json'], /^detloss tune: --plans .*no\/such\/plans\.json: no such file$/],
    [['tune', '--node', '--bogus'], /^detloss tune: Unknown option '--bogus'/],
  ];
  for (const [args, reason] of cases) {
    it(`detloss ${args.join(' ')}: exit 2, the reason and the usage on stderr`, () => {
      const r = detloss(args);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      const [line, blank, ...rest] = r.stderr.split('\n');
      expect(line).toMatch(reason);
      expect(blank).toBe('');
      expect(rest.join('\n').startsWith('usage: detloss tune')).toBe(true);
      expect(r.stdout).toBe('');
    });
  }

  it('--ops names a variant as op:variant or op{variant}', () => {
    expect(parseTuneOp('smooth_l1')).toBe('smooth_l1');
    expect(parseTuneOp('iou_loss:ciou')).toEqual({ op: 'iou_loss', options: { variant: 'ciou' } });
    expect(parseTuneOp('iou_loss{giou}')).toEqual({ op: 'iou_loss', options: { variant: 'giou' } });
  });

  it('a plan shows as one line, and a choice by what differs from the default it was timed against', () => {
    const p = { maxThreads: 16384, workgroupSize: 64, vectorWidth: 4, reduceLanes: 64, reducePer: 0, rows: 'thread' } as const;
    expect(planText(p)).toBe('16384 threads, wg 64, vec4, reduce 64×auto, rows thread');
    expect(planChanges({ ...p, maxThreads: 4096, vectorWidth: 1 }, p)).toBe('maxThreads 16384→4096, vectorWidth 4→1');
    expect(planChanges(p, p)).toBe('the default plan');
    const table = choicesTable([{ family: 'regression', size: '1e6', plan: { ...p, maxThreads: 4096 }, ms: 20, defaultMs: 30, op: 'smooth_l1', candidates: [{ plan: p, ms: 30 }] }]);
    expect(table[2]).toBe('| regression | 1e6 | smooth_l1 | maxThreads 16384→4096 | 20.0 | 30.0 | 1.50 | 1 |');
  });
});

describe('detloss tune --node on Node WebGPU (SwiftShader here)', () => {
  const dir = tmp('detloss-tune-');
  const out = join(dir, 'plans.json');
  let run: ReturnType<typeof detloss>;
  beforeAll(() => {
    run = detloss(['tune', '--node', '--ops', 'smooth_l1', '--sizes', '1e4', '--budget', '1500', '--out', out], dir);
  }, 150_000);
  const record = () => JSON.parse(readFileSync(out, 'utf8')) as PlanRecord;

  it('exits 0, with a progress line per measurement on stderr, the table and the tuning time on stdout', () => {
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^detloss tune: smooth_l1 at 1e\+4; a budget of 1\.5 s, 5 timed calls a candidate \(GPU timestamps\)$/m);
    expect(run.stdout).toMatch(/^adapter: google \/ swiftshader/m);
    const progress = run.stderr.split('\n').filter((l) => l.startsWith('  regression 1e4  #'));
    expect(progress.length).toBe(record().plans[0].candidates.length);
    expect(progress[0]).toMatch(/^ {2}regression 1e4 {2}#1 {2}\d+\.\d s of 1\.5 s {2}\d+ threads, wg \d+, (vec4|scalar), reduce \d+×(auto|\d+), rows \w+: [\d.]+ ms$/);
    expect(run.stdout).toContain('| family | size | op | chosen plan | ms | default ms | default / chosen | candidates |');
    expect(run.stdout).toMatch(/^\| regression \| 1e4 \| smooth_l1 \| /m);
    expect(run.stdout).toContain(`wrote ${out}: 1 plan (1 tuned now)`);
  });

  it('tunes within the budget: the time it prints, and the whole process but for its start', () => {
    const took = Number(/^tuning took (\d+\.\d) s of a 1\.5 s budget$/m.exec(run.stdout)?.[1]);
    // The tuner starts a measurement only when the calls it has timed say it fits; a pipeline it has
    // not compiled yet can pass the budget by one compile (a few hundred ms on SwiftShader).
    expect(took).toBeGreaterThan(0);
    expect(took).toBeLessThanOrEqual(1.5 + 1);
    expect(run.wallMs).toBeLessThan(1500 + 1000 + 10_000);
  });

  it('writes a record (pretty JSON, a newline at the end) with the plan of family regression at size 1e4', () => {
    const text = readFileSync(out, 'utf8');
    expect(text.endsWith('}\n')).toBe(true);
    expect(text).toContain('\n  "format": "detloss-plans",\n');
    const r = record();
    expect(r.format).toBe('detloss-plans');
    expect(r.timer).toBe('gpu');
    expect(r.adapter.vendor).toBe('google');
    expect(r.plans.map((c) => `${c.family} ${c.size} ${c.op}`)).toEqual(['regression 1e4 smooth_l1']);
    expect(r.plans[0].candidates.length).toBeGreaterThan(0);
  });

  it('the record loads into createDetloss({ gpu, plans }) with no warnings, and a smooth_l1 call of that size runs its plan', async () => {
    const dl = await nodeContext({ plans: record() });
    try {
      expect(dl.stats().plan.warnings).toEqual([]);
      expect(dl.stats().plan.tuned).toHaveLength(1);
      const n = 1e4;
      await dl.run('smooth_l1', { pred: new Float32Array(n).fill(1), target: new Float32Array(n) }, { reduction: 'mean' });
      expect(dl.stats().lastCall?.tunedPlan).toBe('regression 1e4');
    } finally {
      dl.destroy();
    }
  });

  it('--plans adds to an earlier record: its plans are kept beside the new ones', () => {
    const next = join(dir, 'more.json');
    const r = detloss(['tune', '--node', '--ops', 'iou_loss:ciou', '--sizes', '1e4', '--budget', '1500', '--plans', out, '--out', next], dir);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^loaded 1 plan from /m);
    expect(r.stdout).toMatch(/^kept from .*: regression 1e4$/m);
    const both = JSON.parse(readFileSync(next, 'utf8')) as PlanRecord;
    expect(both.plans.map((c) => `${c.family} ${c.size}`).sort()).toEqual(['iou 1e4', 'regression 1e4']);
    expect(both.plans.find((c) => c.family === 'regression')).toEqual(record().plans[0]);
  }, 150_000);

  it('a record for another adapter is ignored with a warning, and the run goes on', () => {
    const foreign = join(dir, 'foreign.json');
    writeFileSync(foreign, JSON.stringify({ ...record(), adapter: { vendor: 'acme', architecture: 'x', device: 'gpu-1', description: 'Acme GPU' } }));
    const r = detloss(['tune', '--node', '--ops', 'smooth_l1', '--sizes', '1e3', '--budget', '1500', '--plans', foreign, '--out', join(dir, 'mine.json')], dir);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^loaded 0 plans from /m);
    expect(r.stderr).toMatch(/^warning: a plan record for another adapter \(acme \/ x \/ gpu-1 \/ Acme GPU\) was ignored/m);
  }, 150_000);

  it('--plans of a malformed record exits 2 naming the field, before tuning starts', () => {
    const bad = join(dir, 'bad.json');
    const r0 = record();
    writeFileSync(bad, JSON.stringify({ ...r0, plans: [{ ...r0.plans[0], plan: { ...r0.plans[0].plan, maxThreads: -1 } }] }));
    const r = detloss(['tune', '--node', '--plans', bad, '--out', join(dir, 'never.json')], dir);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(/^detloss tune: --plans .*bad\.json: plans\.plans\[0\]\.plan\.maxThreads must be an integer from 1 to \d+, got -1$/);
    writeFileSync(bad, '{"format": "detloss-plans",');
    const notJson = detloss(['tune', '--node', '--plans', bad], dir);
    expect(notJson.code).toBe(2);
    expect(notJson.stderr.split('\n')[0]).toMatch(/^detloss tune: --plans .*bad\.json: not JSON /);
  });
});

describe('detloss tune from the built CLI where no node_modules can be found (an installed package without webgpu)', () => {
  it('exits 2 saying to install webgpu, with no stack trace', () => {
    const pkg = tmp('detloss-tune-installed-');
    cpSync(join(root, 'dist'), join(pkg, 'dist'), { recursive: true });
    const r = detloss(['tune', '--node', '--ops', 'smooth_l1'], tmp('detloss-tune-user-'), join(pkg, 'dist/cli.js'));
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^detloss tune: the optional package webgpu could not be loaded .*npm install webgpu/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
