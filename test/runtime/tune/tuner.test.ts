// Detloss.tune() as a caller sees it, on Node's WebGPU over SwiftShader: it ends within its budget,
// reports progress, never holds up a call made meanwhile, takes the ops warmed up or run when none
// are named, keeps one run at a time, and refuses what it cannot tune.
import { describe, expect, it } from 'vitest';
import { DetlossError } from '../../../src/errors';
import type { TuneProgress } from '../../../src/runtime/public';
import { contextPool } from './helpers';

const { open } = contextPool();
const floats = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 3);

describe('tune()', { timeout: 120_000 }, () => {
  for (const given of [2500, undefined]) {
    const budgetMs = given ?? 4000;
    it(`ends within its budget (${given === undefined ? 'the default, ' : ''}${budgetMs} ms for three families), reporting each measurement`, async () => {
      const dl = await open();
      const progress: TuneProgress[] = [];
      const t0 = performance.now();
      const record = await dl.tune({
        ops: ['smooth_l1', { op: 'iou_loss', options: { variant: 'ciou' } }, { op: 'cross_entropy', dims: { c: 80 } }],
        sizes: [20_000],
        ...(given === undefined ? {} : { budgetMs: given }),
        onProgress: (p) => progress.push(p),
      });
      const elapsed = performance.now() - t0;
      console.log(`budget ${budgetMs} ms: tuning took ${elapsed.toFixed(0)} ms, ${progress.length} measurements, ${record.plans.length} plans kept`);
      expect(elapsed).toBeLessThanOrEqual(budgetMs);
      expect(progress.length).toBeGreaterThan(0);
      progress.forEach((p, i) => {
        expect(p.measured).toBe(i + 1);
        expect(p.budgetMs).toBe(budgetMs);
        expect(p.elapsedMs).toBeLessThanOrEqual(budgetMs);
        if (i) expect(p.elapsedMs).toBeGreaterThanOrEqual(progress[i - 1].elapsedMs);
        expect(p.ms).toBeGreaterThan(0);
      });
      // Every plan kept lists the times it was chosen from, the chosen one's among them.
      for (const c of record.plans) {
        expect(c.candidates.map((x) => x.ms)).toContain(c.ms);
        expect(c.ms).toBeLessThanOrEqual(c.defaultMs);
      }
      expect(dl.stats().plan.tuned).toEqual(record.plans);
    });
  }

  it('never holds up a call made while it runs; the call runs the plans held when it was made', async () => {
    const dl = await open();
    const pred = floats(5000, 1);
    const target = floats(5000, 2);
    let tuned = false;
    const tuning = dl.tune({ ops: [{ op: 'iou_loss', options: { variant: 'giou' } }], sizes: [100_000], budgetMs: 2500 }).then((r) => {
      tuned = true;
      return r;
    });
    const r = await dl.run('smooth_l1', { pred, target }, { reduction: 'sum' });
    expect(tuned).toBe(false);
    expect(dl.stats().lastCall?.op).toBe('smooth_l1');
    expect(dl.stats().lastCall?.tunedPlan).toBeUndefined();
    expect(Number.isFinite(r.loss[0])).toBe(true);
    const record = await tuning;
    expect(record.plans.map((c) => `${c.family} ${c.size}`)).toEqual(['iou 1e5']);
    // The tuner's own calls are not the context's last call.
    expect(dl.stats().lastCall?.op).toBe('smooth_l1');
  });

  it('takes the ops warmed up or run when none are named, at the sizes run; a second run waits for the first', async () => {
    const dl = await open();
    await dl.warmup([{ op: 'sigmoid_focal' }]);
    await dl.run('smooth_l1', { pred: floats(3000, 1), target: floats(3000, 2) });
    await dl.run('cross_entropy', { logits: floats(300 * 10, 3), labels: new Int32Array(300) });
    const first = dl.tune({ budgetMs: 8000, reps: 2 });
    const second = dl.tune({ ops: ['smooth_l1'], sizes: [3000], budgetMs: 500, reps: 2 });
    const a = await first;
    expect(a.plans.map((c) => `${c.family} ${c.size}`).sort()).toEqual(['ce 1e2/1e1', 'focal 1e6', 'regression 1e3']);
    const b = await second;
    // The second record holds every plan the context holds.
    expect(b.plans.map((c) => `${c.family} ${c.size}`).sort()).toEqual(['ce 1e2/1e1', 'focal 1e6', 'regression 1e3']);
    await dl.run('cross_entropy', { logits: floats(300 * 10, 3), labels: new Int32Array(300) });
    expect(dl.stats().lastCall?.tunedPlan).toBe('ce 1e2/1e1');
  });

  it('refuses what it cannot tune, by name, and leaves the plans held as they were', async () => {
    const dl = await open();
    const refusals: [unknown, string, string][] = [
      [{}, 'ops', 'invalid_param'], // nothing warmed up or run yet
      [{ ops: ['ap_loss'] }, 'ops[0]', 'invalid_param'],
      [{ ops: ['no_such_op'] }, 'ops[0]', 'unknown_op'],
      [{ ops: [{ op: 'l1', foo: 1 }] }, 'ops[0].foo', 'unknown_param'],
      [{ ops: [] }, 'ops', 'invalid_param'],
      [{ ops: ['l1'], budgetMs: 0 }, 'budgetMs', 'invalid_param'],
      [{ ops: ['l1'], budgetMs: NaN }, 'budgetMs', 'invalid_param'],
      [{ ops: ['l1'], reps: 0 }, 'reps', 'invalid_param'],
      [{ ops: ['l1'], sizes: [0] }, 'sizes[0]', 'invalid_param'],
      [{ ops: ['l1'], sizes: ['1e6'] }, 'sizes[0]', 'invalid_param'],
      [{ ops: ['l1'], search: 'random' }, 'search', 'invalid_param'],
      [{ ops: ['l1'], candidates: { workgroupSize: [48] } }, 'candidates.workgroupSize', 'invalid_param'],
      [{ ops: ['l1'], candidates: { bogus: [1] } }, 'candidates.bogus', 'unknown_param'],
      [{ ops: ['l1'], candidates: { maxThreads: [] } }, 'candidates.maxThreads', 'invalid_param'],
      [{ ops: ['l1'], onProgress: 'yes' }, 'onProgress', 'invalid_param'],
      [{ ops: ['l1'], budget: 100 }, 'budget', 'unknown_param'],
      [{ ops: [{ op: 'cross_entropy', dims: { c: 0 } }] }, 'ops[0].dims.c', 'invalid_param'],
    ];
    for (const [o, argument, code] of refusals) {
      const e = await dl.tune(o as never).then(() => undefined, (x: unknown) => x);
      expect(e, argument).toBeInstanceOf(DetlossError);
      expect([(e as DetlossError).code, (e as DetlossError).argument], argument).toEqual([code, argument]);
    }
    expect(dl.stats().plan.tuned).toEqual([]);
    dl.destroy();
    const gone = await dl.tune({ ops: ['l1'] }).then(() => undefined, (x: unknown) => x);
    expect((gone as DetlossError).code).toBe('destroyed');
  });
});
