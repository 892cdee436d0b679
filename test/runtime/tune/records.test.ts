// Tuned plan records: what tune() returns loads into another context (createDetloss({ plans }) or
// usePlans), whose calls then run the tuned plans with the same bits every time; a record for
// another version or another adapter is ignored with a warning; a malformed one is refused by the
// field's path. On Node's WebGPU over SwiftShader.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import type { PlanRecord } from '../../../src/runtime/public';
import { VERSION } from '../../../src/version';
import { contextPool } from './helpers';

const { contexts, open } = contextPool();

const n = 12_000;
const pred = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 3);
const target = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.7) * 3);
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

let record: PlanRecord;
beforeAll(async () => {
  const dl = await open();
  // Candidates without the software plan's values, so the plan chosen differs from the context's.
  record = await dl.tune({ ops: ['smooth_l1'], sizes: [n], budgetMs: 3000, reps: 2, search: 'exhaustive', candidates: { maxThreads: [256, 4096], workgroupSize: [32, 128], vectorWidth: [1], reduceLanes: [32], reducePer: [4] } });
}, 60_000);

describe('a plan record', { timeout: 60_000 }, () => {
  it("carries the package's version (src/version.ts equals package.json's)", () => {
    expect(VERSION).toBe(JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version);
  });

  it('is JSON, keyed by the adapter and the version, with the candidates and their times', () => {
    const dl = contexts[0];
    expect(JSON.parse(JSON.stringify(record))).toEqual(record);
    expect(record.format).toBe('detloss-plans');
    expect(record.detloss).toBe(VERSION);
    expect(record.adapter).toEqual({ vendor: dl.adapter.vendor, architecture: dl.adapter.architecture, device: dl.adapter.device, description: dl.adapter.description });
    expect(record.timer).toBe('gpu'); // SwiftShader has timestamp queries
    expect(record.plans).toHaveLength(1);
    const [c] = record.plans;
    expect([c.family, c.size, c.op]).toEqual(['regression', '1e4', 'smooth_l1']);
    expect(c.candidates.length).toBeGreaterThanOrEqual(2);
    expect(c.ms).toBe(Math.min(...c.candidates.filter((x) => x.plan.maxThreads !== dl.plan.maxThreads).map((x) => x.ms)));
    expect([32, 128]).toContain(c.plan.workgroupSize);
    // stats() shows the same choice, and why.
    expect(dl.stats().plan.tuned).toEqual(record.plans);
  });

  it('loads into a new context, whose calls run the tuned plan with the same bits every time and the reference numbers', async () => {
    const a = await open({ plans: JSON.parse(JSON.stringify(record)) });
    const b = await open();
    b.usePlans(record);
    expect(a.stats().plan.warnings).toEqual([]);
    expect(a.stats().plan.tuned.map((c) => c.plan)).toEqual([record.plans[0].plan]);
    const r1 = await a.run('smooth_l1', { pred, target }, { reduction: 'sum' });
    expect(a.stats().lastCall?.tunedPlan).toBe('regression 1e4');
    const r2 = await a.run('smooth_l1', { pred, target }, { reduction: 'sum' });
    const r3 = await b.run('smooth_l1', { pred, target }, { reduction: 'sum' });
    expect(b.stats().lastCall?.tunedPlan).toBe('regression 1e4');
    for (const r of [r2, r3]) {
      expect(bits(r.loss)).toEqual(bits(r1.loss));
      expect(bits(r.grad.pred)).toEqual(bits(r1.grad.pred));
    }
    const ref = cpu.run('smooth_l1', { pred, target }, { reduction: 'sum' });
    expect(Math.abs(r1.loss[0] - ref.loss[0]) / Math.abs(ref.loss[0])).toBeLessThan(1e-5);
    // A size class ten times larger takes the nearest tuned class; one a hundred times larger does not.
    const big = 10 * n;
    await a.run('smooth_l1', { pred: new Float32Array(big), target: new Float32Array(big) });
    expect(a.stats().lastCall?.tunedPlan).toBe('regression 1e4');
    await a.run('smooth_l1', { pred: new Float32Array(100 * n), target: new Float32Array(100 * n) });
    expect(a.stats().lastCall?.tunedPlan).toBeUndefined();
    // Another family runs the context's plan.
    await a.run('l1', { pred, target });
    expect(a.stats().lastCall?.tunedPlan).toBe('regression 1e4'); // l1 shares smooth_l1's kernel module
    await a.run('sigmoid_focal', { logits: pred, targets: new Float32Array(n) });
    expect(a.stats().lastCall?.tunedPlan).toBeUndefined();
  });

  it('from another version of detloss is ignored, with a warning in stats()', async () => {
    const dl = await open({ plans: { ...record, detloss: '0.0.1' } });
    expect(dl.stats().plan.tuned).toEqual([]);
    expect(dl.stats().plan.warnings).toHaveLength(1);
    expect(dl.stats().plan.warnings[0]).toMatch(/detloss 0\.0\.1 was ignored/);
    await dl.run('smooth_l1', { pred, target });
    expect(dl.stats().lastCall?.tunedPlan).toBeUndefined();
  });

  it('for another adapter is ignored, with a warning naming what differs; a list keeps the records that hold', async () => {
    const other = { ...record, adapter: { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H200' } };
    const dl = await open({ plans: [other, record] });
    expect(dl.stats().plan.warnings).toHaveLength(1);
    expect(dl.stats().plan.warnings[0]).toMatch(/another adapter \(nvidia \/ hopper \/ NVIDIA H200\) was ignored: its vendor, architecture(, device)?, description differ/);
    expect(dl.stats().plan.tuned).toHaveLength(1);
    const alone = await open();
    alone.usePlans(other);
    expect(alone.stats().plan.tuned).toEqual([]);
    expect(alone.stats().plan.warnings).toHaveLength(1);
  });

  it('that is malformed is refused, naming the field', async () => {
    const good = () => structuredClone(record) as unknown as Record<string, any>;
    const cases: [unknown, string, string][] = [
      ['plans.json', 'plans', 'invalid_param'],
      [{ ...good(), format: 'tuned' }, 'plans.format', 'invalid_param'],
      [{ ...good(), adapter: { vendor: 'x' } }, 'plans.adapter.architecture', 'invalid_param'],
      [{ ...good(), timer: 'cpu' }, 'plans.timer', 'invalid_param'],
      [{ ...good(), plans: {} }, 'plans.plans', 'invalid_param'],
      [(() => { const g = good(); g.plans[0].plan.workgroupSize = 48; return g; })(), 'plans.plans[0].plan.workgroupSize', 'invalid_param'],
      [(() => { const g = good(); g.plans[0].plan.vectorWidth = 2; return g; })(), 'plans.plans[0].plan.vectorWidth', 'invalid_param'],
      [(() => { const g = good(); g.plans[0].plan.rows = 'warp'; return g; })(), 'plans.plans[0].plan.rows', 'invalid_param'],
      [(() => { const g = good(); g.plans[0].plan.maxThreads = 0; return g; })(), 'plans.plans[0].plan.maxThreads', 'invalid_param'],
      [(() => { const g = good(); g.plans[0].plan.lanes = 4; return g; })(), 'plans.plans[0].plan.lanes', 'unknown_param'],
      [(() => { const g = good(); g.plans[0].size = '1e4x'; return g; })(), 'plans.plans[0].size', 'invalid_param'],
      [(() => { const g = good(); g.plans[0].ms = -1; return g; })(), 'plans.plans[0].ms', 'invalid_param'],
      [(() => { const g = good(); g.plans[0].candidates[0].plan.reducePer = 1e6; return g; })(), 'plans.plans[0].candidates[0].plan.reducePer', 'invalid_param'],
      [(() => { const g = good(); g.plans.push(structuredClone(g.plans[0])); return g; })(), 'plans.plans[1]', 'invalid_param'],
      [[record, { ...good(), detloss: 7 }], 'plans[1].detloss', 'invalid_param'],
    ];
    for (const [plans, argument, code] of cases) {
      const e1 = await open({ plans: plans as never }).then(() => undefined, (e: unknown) => e);
      expect(e1, argument).toBeInstanceOf(DetlossError);
      expect([(e1 as DetlossError).code, (e1 as DetlossError).argument], argument).toEqual([code, argument]);
      expect((e1 as DetlossError).message).toContain(argument);
      const dl = contexts[0];
      let e2: unknown;
      try {
        dl.usePlans(plans as never);
      } catch (e) {
        e2 = e;
      }
      expect([(e2 as DetlossError)?.code, (e2 as DetlossError)?.argument], argument).toEqual([code, argument]);
    }
    // A refused record leaves the context's plans as they were.
    expect(contexts[0].stats().plan.tuned).toEqual(record.plans);
  });

  it('a workgroup size the device does not hold is refused when the context is made', async () => {
    const e = await open({ plan: { workgroupSize: 512 } }).then(() => undefined, (x: unknown) => x);
    expect([(e as DetlossError).code, (e as DetlossError).argument]).toEqual(['invalid_param', 'plan.workgroupSize']);
    const f = await open({ plan: { workgroupSize: 48 } }).then(() => undefined, (x: unknown) => x);
    expect([(f as DetlossError).code, (f as DetlossError).argument]).toEqual(['invalid_param', 'plan.workgroupSize']);
  });
});
