/**
 * The rotated ops' error model (test/fuzz/rotated.ts) with no GPU: the model evaluates the kernel's
 * own forms, so its float64 values must be the reference's; the reference itself, rounded to
 * float32, passes the rule; and two planted defects of the kind a kernel could have are flagged:
 * the theta partial with the wrong sign (where the angle matters: not squares, turned copies or
 * nearly identical pairs, whose theta partial is 0 or rounding noise), and ProbIoU's eps placed
 * outside the sqrt (`sqrt(1 - exp(-bd)) + eps` for `sqrt(1 - exp(-bd) + eps)`, where that moves the
 * value by 1e-3 of itself or more).
 */
import { describe, expect, it } from 'vitest';
import { cpu } from '../../src/cpu';
import { rotatedConfig } from '../../src/cpu/rotated';
import type { ResolvedParams } from '../../src/cpu/types';
import { generateCase, ROTATED_RECIPES, type FuzzCase } from './cases';
import { checkCase, hasNonFinite, referenceResult, type Surface } from './runner';
import { probiouPairTerms, rotatedRowTerms } from './rotated';
import { dataOf } from './tolerance';

type Res = Awaited<ReturnType<Surface['run']>>;
const surface = (res: Res): Surface => ({ name: 'pinned', run: async () => res });

/** Valid, finite cases of an op, every recipe in turn. */
function cases(op: string, count: number, seed = 31): FuzzCase[] {
  const out: FuzzCase[] = [];
  for (let i = 0; out.length < count && i < 20 * count; i++) {
    const c = generateCase(seed, i, { op, nonFinite: 0, big: false, rotated: ROTATED_RECIPES[i % ROTATED_RECIPES.length] });
    if (c.tags.includes('invalid') || hasNonFinite(c)) continue;
    try {
      cpu.run(c.op, c.inputs as never, c.options as never);
    } catch {
      continue;
    }
    out.push(c);
  }
  return out;
}

describe('the rotated error model', () => {
  it('evaluates what the reference evaluates (its float64 values are the reference values)', () => {
    let rows = 0;
    for (const c of cases('rotated_iou_loss', 300)) {
      if (c.options.grad === false) continue;
      const n = c.dims.n;
      const P = Float64Array.from(dataOf(c.inputs.pred)!);
      const T = Float64Array.from(dataOf(c.inputs.target)!);
      const pd = c.inputs.predDelta ? Float64Array.from(dataOf(c.inputs.predDelta)!) : undefined;
      const td = c.inputs.targetDelta ? Float64Array.from(dataOf(c.inputs.targetDelta)!) : undefined;
      const { weight: _w, gradOutput: _g, ...inputs } = c.inputs;
      const ref = cpu.run('rotated_iou_loss', inputs as never, { ...c.options, reduction: 'none', avgFactor: undefined } as never);
      const cfg = rotatedConfig({ ...c.options, variant: c.options.variant ?? 'probiou' } as unknown as ResolvedParams);
      for (let i = 0; i < Math.min(n, 64); i++) {
        const o = rotatedRowTerms(P, 5 * i, T, 5 * i, cfg, true, pd && td ? { pd, td, at: 2 * i } : undefined);
        const v = ref.loss[i];
        const what = `case ${c.index} row ${i} (${c.tags.join(', ')}; ${JSON.stringify(c.options)})`;
        // float64's own rounding of two algebraically equal forms: far below the value and the
        // model's own bound (S = e / 64, e the bound in units of u); and 1e-11, the reference's
        // float64 cancellation of O(1) terms (1 - exp(-bd), log of z near 1) through ProbIoU's
        // 1/(2 hd) <= 1/(2 sqrt(eps)) = 1.6e4 at eps = 1e-9: 2^-52 * 1.6e4 = 3.5e-12
        expect(Math.abs(o.value - v), `${what}: loss ${o.value} vs ${v}`).toBeLessThanOrEqual(1e-9 * Math.abs(v) + 1e-2 * 2 ** -24 * 64 * o.loss + 1e-11);
        const g = (ref.grad.pred as Float64Array).subarray(5 * i, 5 * i + 5);
        const gmax = Math.max(...Array.from(g, Math.abs));
        for (let k = 0; k < 5; k++) {
          // (at a tie float64 too may take either side: there the rule's own allowance)
          const slack = o.ties.length ? 512 * 2 ** -24 * o.grad[k] : 1e-2 * 2 ** -24 * 64 * o.grad[k];
          expect(Math.abs(o.g[k] - g[k]), `${what}: grad[${k}] ${o.g[k]} vs ${g[k]}`).toBeLessThanOrEqual(1e-9 * gmax + slack + 1e-300);
        }
        rows++;
      }
    }
    expect(rows).toBeGreaterThan(1000);
    for (const c of cases('pairwise_probiou', 60)) {
      const A = dataOf(c.inputs.a)!;
      const B = dataOf(c.inputs.b)!;
      const ref = cpu.run('pairwise_probiou', c.inputs as never, { ...c.options, reduction: 'none' } as never);
      for (let i = 0; i < Math.min(c.dims.n, 8); i++) {
        for (let j = 0; j < Math.min(c.dims.m, 8); j++) {
          const o = probiouPairTerms(A, i, B, j, (c.options.eps as number | undefined) ?? 1e-7);
          expect(Math.abs(o.value - ref.loss[i * c.dims.m + j])).toBeLessThanOrEqual(1e-9 + 1e-2 * 2 ** -24 * 64 * o.loss + 1e-11);
        }
      }
    }
  });

  it.each(['rotated_iou_loss', 'pairwise_probiou'])('%s: the reference rounded to float32 passes', async (op) => {
    for (const c of cases(op, 150)) expect(await checkCase(surface(referenceResult(c)), c), `case ${c.index} ${c.tags.join(', ')}`).toBeNull();
  });
});

describe('planted rotated defects are flagged', () => {
  it("the theta partial's sign flipped", async () => {
    let tried = 0;
    let flagged = 0;
    for (const c of cases('rotated_iou_loss', 500)) {
      // (squares, turned copies and near-identical pairs have a theta partial of 0 or of rounding
      // noise: the angle has no effect there, or a cone's direction, so its sign is no defect)
      if (c.options.grad === false || ['square', 'turned', 'identical', 'near', 'mixed'].some((t) => c.tags.includes(t))) continue;
      const ref = referenceResult(c);
      const g = ref.grad.pred as Float32Array;
      // only rows whose theta partial is not 0 (a square, a clamp, or a zero upstream)
      if (!g.some((v, k) => k % 5 === 4 && v !== 0)) continue;
      tried++;
      const bad = Float32Array.from(g, (v, k) => (k % 5 === 4 ? -v : v));
      if (await checkCase(surface({ ...ref, grad: { ...ref.grad, pred: bad } }), c)) flagged++;
      else if (process.env.SHOW) console.log('missed', c.index, c.tags.join(','), JSON.stringify(c.options), Array.from(g).filter((_, k) => k % 5 === 4).slice(0, 4), Array.from(dataOf(c.inputs.pred)!).slice(0, 5), Array.from(dataOf(c.inputs.target)!).slice(0, 5));
    }
    expect(tried).toBeGreaterThan(50);
    // every case: a sign flip of a non-zero partial is an error of 2|g|, the rule allows a few hundred u of it
    expect(flagged / tried).toBeGreaterThanOrEqual(0.95);
  });

  it("ProbIoU's eps outside the sqrt: sqrt(1 - exp(-bd)) + eps", async () => {
    // Where eps sets the value: identical and nearly identical pairs (hd ~ sqrt(bd + eps)), as
    // rotated_iou_loss's 'none' loss (hd itself; pairwise_probiou's 1 - hd is near 1, where K u of
    // it, 3e-5, is as large as the defect). Turned copies are left out: there D - 4r cancels
    // (sd^2 (P1 - Q1)(P2 - Q2) against the squared differences) and float32 cannot tell hd from
    // sqrt(2 eps) to better than ~1e-3, whatever the rule.
    let tried = 0;
    let flagged = 0;
    for (const c of cases('rotated_iou_loss', 1500)) {
      if (!['identical', 'near'].some((t) => c.tags.includes(t))) continue;
      if (c.options.variant !== 'probiou' || c.options.ciou === true || c.options.reduction !== 'none') continue;
      const ref = referenceResult(c);
      const eps = (c.options.eps as number | undefined) ?? 1e-7;
      // hd = sqrt(1 - e + eps) -> sqrt(1 - e) + eps
      const moved = (hd: number) => Math.sqrt(Math.max(0, hd * hd - eps)) + eps;
      const w = dataOf(c.inputs.weight);
      const loss = Float32Array.from(ref.loss, (v, i) => (w ? w[i] : 1) * moved(v / (w ? w[i] : 1) || 0));
      // (some value moved by 1e-3 of itself or more)
      if (!Array.from(ref.loss).some((v, i) => Math.abs(loss[i] - v) > 1e-3 * Math.abs(v))) continue;
      tried++;
      if (await checkCase(surface({ ...ref, loss }), c)) flagged++;
      else if (process.env.SHOW) console.log('missed', c.index, c.tags.join(','), JSON.stringify(c.options), c.dims, Array.from(ref.loss).slice(0, 3), Array.from(loss).slice(0, 3));
    }
    expect(tried).toBeGreaterThan(20);
    expect(flagged / tried).toBeGreaterThanOrEqual(0.95);
  });
});
