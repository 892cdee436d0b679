// iou_loss and pairwise_iou at their edges, on the float64 reference: Alpha-IoU on inverted boxes
// (each base raised as given, PyTorch's value and gradient, capped only where p^a leaves float32),
// Shape-IoU's weights at large scales, NaN and infinite inputs (ops.md, Conventions: non-finite input
// is never hidden), and the params' bounds.
import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import { REFUSAL_PRED, REFUSAL_TARGET, iouRefusal } from '../../helpers/iou-refusal';
import { aspectAngle, shapeWeights } from '../../../src/cpu/iou';
import { checkCentralDifferences } from '../../helpers/finite-differences';
import { detachedAt, moreLoss, type MoreParams } from '../../helpers/box-more';
import { ALL_IOU_CONFIGS, moreName } from '../../helpers/box-more-configs';

const F32_MAX = 3.4028234663852886e38;
const none = { reduction: 'none' } as const;

/** One row of iou_loss on the reference: its loss and its gradient. */
function row(p: number[], t: number[], params: object) {
  const r = cpu.run('iou_loss', { pred: Float64Array.from(p), target: Float64Array.from(t) }, { ...params, ...none } as never);
  return { loss: r.loss[0], grad: Array.from(r.grad.pred) };
}

describe('Alpha-IoU raises each base as given: inverted boxes keep their loss and gradient', () => {
  // pred [0, 0, -2, 1] (width -2) against [0, 0, 1, 1]: no overlap, union -2 + 1 = -1, enclosing box
  // 1 x 1, so GIoU's penalty is (1 + 1) / (1 + eps) = 2. With a = 3 the loss is 1 + 2^3 = 9; the
  // penalty's gradient is d/du = -1/(1 + eps) and d/dc = (u + eps)/(1 + eps)^2 ~ -1, with du = (-h,
  // -w, h, w) . d(x1, y1, x2, y2) = (-1, 2, 1, -2) and dc = (-1/2, -1/2, 0, 1/2) (ties of min/max
  // split evenly), times 3 * 2^2 = 12: (1.5, -1.5, -1, 1.5) * 12. The cap at 1 made it loss 2, gradient 0.
  it.each([
    [3, 9, [18, -18, -12, 18]],
    [2, 5, [6, -6, -4, 6]],
  ])('GIoU at power %d, worked by hand: loss %d and a gradient that widens the box back', (a, loss, grad) => {
    const r = row([0, 0, -2, 1], [0, 0, 1, 1], { variant: 'giou', power: a });
    expect(r.loss).toBeCloseTo(loss, 5);
    grad.forEach((g, k) => expect(r.grad[k], `grad[${k}]`).toBeCloseTo(g, 4));
    // Gradient descent moves x1 down and x2 up: the width -2 grows towards positive.
    expect(r.grad[0]).toBeGreaterThan(0);
    expect(r.grad[2]).toBeLessThan(0);
  });

  // Inverted pairs without ties of min or max (so that central differences apply). B has every
  // penalty above 1 (GIoU's 2.28, rho2/c2 1.32, CIoU's alpha*v 1.06), C GIoU's (2.73), F GIoU's and
  // rho2/c2 (3.23, 1.85), G rho2/c2 (2.82); D and E have GIoU penalties below 0 (max(g, 0) = 0).
  const PAIRS: [string, number[], number[]][] = [
    ['B: pred inverted in x', [4.1, 0.2, 1.3, 1.4], [0, 0.1, 1.2, 1.1]],
    ['C: pred inverted in y', [0.3, 3.9, 1.7, 0.4], [0.1, 0, 1.1, 1.3]],
    ['D: both inverted', [2.2, 1.9, 0.1, -0.4], [1.6, 1.2, -0.3, 0.2]],
    ['E: a proper pred against an inverted target', [0.2, 0.3, 1.9, 1.1], [3.1, 2.6, 0.7, 1.5]],
    ['F: pred inverted in y, far', [0.1, 4.3, 1.2, 1.1], [0, 0.2, 1.3, 0.9]],
    ['G: both inverted, apart', [2.9, 3.1, 1.2, 0.3], [0.1, 0.2, 0.8, 0.7]],
  ];
  const CASES = PAIRS.flatMap(([name, p, t]) =>
    (['iou', 'giou', 'diou', 'ciou'] as const).flatMap((variant) => [2, 3].map((a) => [`${name}, ${variant}, power ${a}`, p, t, { variant, power: a } as MoreParams] as const)),
  );

  it.each(CASES)('%s: value of the contract, gradient of its central differences', (_name, p, t, q) => {
    const r = row(p, t, q);
    expect(Math.abs(r.loss - moreLoss(p, t, q)), 'forward').toBeLessThanOrEqual(1e-12 * (1 + Math.abs(r.loss)));
    const x = Float64Array.from(p);
    const frozen = detachedAt(p, t, q);
    const checked = checkCentralDifferences(x, () => moreLoss(x, t, q, frozen), (k, central) => {
      expect(Math.abs(r.grad[k] - central), `coordinate ${k}: ${r.grad[k]} vs ${central}`).toBeLessThanOrEqual(1e-7 + 1e-5 * Math.abs(central));
    });
    expect(checked).toBe(4);
  });

  it('the penalties of pair B pass 1, so the cases above test the uncapped bases', () => {
    const [, p, t] = PAIRS[0];
    for (const variant of ['giou', 'diou', 'ciou'] as const) {
      const plain = moreLoss(p, t, { variant }) - 1; // iou = 0: the loss minus 1 is the penalty (sum)
      const third = moreLoss(p, t, { variant, power: 3 }) - 1;
      expect(plain, variant).toBeGreaterThan(1);
      expect(third, variant).toBeGreaterThan(plain);
    }
  });

  it('the IoU base of inverted boxes is 0 (never negative, never above 1): loss 1, gradient 0', () => {
    // An intersection needs both boxes of positive size on both axes; otherwise it is 0 and the IoU
    // is 0 (or -0 where union + eps < 0), whose power is 0 with gradient 0 at every a >= 1.
    for (const [, p, t] of PAIRS) {
      for (const a of [1.5, 2, 3]) {
        const r = row(p, t, { variant: 'iou', power: a });
        expect(r.loss).toBe(1);
        expect(r.grad.map((g) => g + 0)).toEqual([0, 0, 0, 0]);
      }
    }
  });

  it("a term whose p^a passes float32's largest value is that value, with no gradient", () => {
    // pred [0, 0, 1, 0] (height 0) against [0, 1, 1e6, 0] (height -1, width 1e6): the enclosing box has
    // height 0, so C = 0 and the penalty is (0 - union) / eps = 1e6 / 1e-7 = 1e13; its cube passes 3.4e38.
    const r = row([0, 0, 1, 0], [0, 1, 1e6, 0], { variant: 'giou', power: 3 });
    expect(r.loss).toBe(1 + F32_MAX);
    expect(r.grad.map((g) => g + 0)).toEqual([0, 0, 0, 0]);
    // At power 2 the value (1e26) is in range.
    expect(row([0, 0, 1, 0], [0, 1, 1e6, 0], { variant: 'giou', power: 2 }).loss / 1e26).toBeCloseTo(1, 6);
  });

  it("a term whose gradient passes float32's largest value passes none (its value stays)", () => {
    // pred cxcywh [4, 2, 4, 0] against [2, 2, 3, -1]: C = 0 and union -3, a penalty of 3e7; at power 5
    // its value (2.4e37) is in range but its gradient is about 1e46.
    const p = [4, 2, 4, 0];
    const t = [2, 2, 3, -1];
    const r = row(p, t, { variant: 'giou', format: 'cxcywh', power: 5 });
    expect(r.loss / (1 + (3 / 1e-7) ** 5)).toBeCloseTo(1, 6);
    expect(r.grad.map((g) => g + 0)).toEqual([0, 0, 0, 0]);
    // At power 2 the same penalty's gradient (about 2e22) is in range and passes.
    const two = row(p, t, { variant: 'giou', format: 'cxcywh', power: 2 });
    expect(Math.max(...two.grad.map(Math.abs))).toBeGreaterThan(1e20);
    expect(Math.max(...two.grad.map(Math.abs))).toBeLessThan(F32_MAX);
  });
});

describe('Shape-IoU weights at large scales (605 x 385 target)', () => {
  const p = [10, 20, 300, 200];
  const t = [0, 0, 605, 385];
  it("scale 14: the contract's formula (605^14 = 8.7e38 passes float32, not float64)", () => {
    const q: MoreParams = { variant: 'shape', scale: 14 };
    const r = row(p, t, q);
    expect(Math.abs(r.loss - moreLoss(p, t, q))).toBeLessThan(1e-12);
  });
  it.each([1e10, 3e38])('scale %d: finite, and the limit of the weights (2, 0) (it was Inf / Inf = NaN)', (scale) => {
    const r = row(p, t, { variant: 'shape', scale });
    // At scale 100, (385/605)^100 = 2.6e-20: the weights are (2, 5e-20), the limit within 1e-19.
    const limit = moreLoss(p, t, { variant: 'shape', scale: 100 });
    expect(r.loss).toBeCloseTo(limit, 12);
    const x = Float64Array.from(p);
    checkCentralDifferences(x, () => moreLoss(x, t, { variant: 'shape', scale: 100 }), (k, central) => {
      expect(Math.abs(r.grad[k] - central), `coordinate ${k}`).toBeLessThanOrEqual(1e-8 + 1e-5 * Math.abs(central));
    });
  });
  it('a tall target weighs the other way', () => {
    const r = row([10, 20, 200, 300], [0, 0, 385, 605], { variant: 'shape', scale: 1e10 });
    expect(r.loss).toBeCloseTo(moreLoss([10, 20, 200, 300], [0, 0, 385, 605], { variant: 'shape', scale: 100 }), 12);
  });
});

/** Configs of every variant and mode, and each "More box losses" param. */
const ALL_CONFIGS = ALL_IOU_CONFIGS;
const configName = (q: Record<string, unknown>) => moreName(q as unknown as MoreParams);
const BASE: Record<string, number[][]> = {
  xyxy: [[1, 2, 4, 6], [2, 1, 5, 4]],
  cxcywh: [[2, 3, 3, 4], [3, 2, 3, 3]],
  xywh: [[1, 2, 3, 4], [2, 1, 3, 3]],
};

describe('NaN and infinite inputs on the reference', () => {
  it.each(['xyxy', 'cxcywh', 'xywh'])('%s: a NaN in any coordinate of pred or target makes its element NaN, and only it; every reduction NaN', (format) => {
    const [p0, t0] = BASE[format];
    for (const q of ALL_CONFIGS) {
      for (let k = 0; k < 8; k++) {
        // Row 1 holds the NaN; rows 0 and 2 are the base pair.
        const pred = Float64Array.from([...p0, ...p0, ...p0]);
        const target = Float64Array.from([...t0, ...t0, ...t0]);
        if (k < 4) pred[4 + k] = NaN;
        else target[4 + k - 4] = NaN;
        const params = { ...q, format };
        const r = cpu.run('iou_loss', { pred, target }, { ...params, ...none } as never);
        const what = `${configName(q)} coordinate ${k}`;
        expect(Number.isNaN(r.loss[1]), what).toBe(true);
        expect(Number.isFinite(r.loss[0]) && Number.isFinite(r.loss[2]), what).toBe(true);
        for (const reduction of ['mean', 'sum'] as const) {
          expect(Number.isNaN(cpu.run('iou_loss', { pred, target }, { ...params, reduction } as never).loss[0]), `${what} ${reduction}`).toBe(true);
        }
        if (q.variant === 'wiou') expect(Number.isNaN(r.aux!.batchIouMean), `${what} batchIouMean`).toBe(true);
      }
    }
  });

  it('a NaN weight makes its element NaN, and the reductions', () => {
    const pred = Float64Array.from([1, 2, 4, 6, 1, 2, 4, 6]);
    const target = Float64Array.from([2, 1, 5, 4, 2, 1, 5, 4]);
    const weight = Float64Array.of(1, NaN);
    for (const q of ALL_CONFIGS) {
      const r = cpu.run('iou_loss', { pred, target, weight }, { ...q, ...none } as never);
      expect([Number.isFinite(r.loss[0]), Number.isNaN(r.loss[1])], configName(q)).toEqual([true, true]);
      expect(Number.isNaN(cpu.run('iou_loss', { pred, target, weight }, { ...q, reduction: 'sum' } as never).loss[0])).toBe(true);
    }
  });

  it('an infinite coordinate: the loss is the float64 value, the gradient row NaN', () => {
    // pred [1, 2, Inf, 6] against [2, 1, 5, 4]: intersection 3 x 2, union Inf, IoU 0: the IoU loss is 1.
    const iou = row([1, 2, Infinity, 6], [2, 1, 5, 4], { variant: 'iou' });
    expect(iou.loss).toBe(1);
    expect(iou.grad.every(Number.isNaN)).toBe(true);
    // GIoU with x1 = +Inf: width -Inf, union -Inf, IoU -0, enclosing box finite: the penalty is +Inf.
    expect(row([Infinity, 2, 4, 6], [2, 1, 5, 4], { variant: 'giou' }).loss).toBe(Infinity);
    // Its power passes float32's largest value: the term is that value (ops.md, power).
    expect(row([Infinity, 2, 4, 6], [2, 1, 5, 4], { variant: 'giou', power: 3 }).loss).toBe(1 + F32_MAX);
    // Inf - Inf: NaN.
    expect(Number.isNaN(row([1, 2, Infinity, 6], [2, 1, Infinity, 4], { variant: 'giou' }).loss)).toBe(true);
  });

  it('a NaN side gives NaN weights and aspect angles, not a number chosen by a comparison', () => {
    // Width NaN with height 0: the aspect angle was -pi/2, the Shape-IoU weights (for a target side) 0 and 2.
    expect(aspectAngle(NaN, 0)).toBeNaN();
    expect(aspectAngle(0, NaN)).toBeNaN();
    expect(shapeWeights(NaN, 3, 0.5).every(Number.isNaN)).toBe(true);
    expect(shapeWeights(3, NaN, 2).every(Number.isNaN)).toBe(true);
    // The loss, which the union makes NaN as well.
    for (const variant of ['ciou', 'shape'] as const) {
      const r = row([2, 3, NaN, 0], [3, 2, 3, 3], { variant, format: 'cxcywh', ...(variant === 'shape' ? { scale: 0.5 } : {}) });
      expect(Number.isNaN(r.loss), variant).toBe(true);
    }
  });

  it('pairwise_iou: a NaN box makes its row or column NaN; a NaN weight its entry', () => {
    const a = Float64Array.from([0, 0, 2, 2, NaN, 0, 2, 2]);
    const b = Float64Array.from([1, 1, 3, 3, 0, 0, 1, NaN, 0, 0, 2, 2]);
    for (const variant of ['iou', 'giou', 'diou', 'ciou'] as const) {
      const r = cpu.run('pairwise_iou', { a, b: { data: b, shape: [3, 4] } }, { variant }).loss;
      expect(Array.from(r, Number.isNaN), variant).toEqual([false, true, false, true, true, true]);
      const w = cpu.run('pairwise_iou', { a: a.subarray(0, 4), b: b.subarray(0, 4), weight: Float64Array.of(NaN) }, { variant }).loss;
      expect(Number.isNaN(w[0]), `${variant} weight`).toBe(true);
    }
  });
});

describe('params: accepted where float32 holds, refused past it', () => {
  const pred = REFUSAL_PRED;
  const target = REFUSAL_TARGET;
  const refusal = iouRefusal;
  it.each([
    ['power above 20', { variant: 'giou', power: 20.5 }, 'power', /power must be <= 20/],
    ['imageSize with W^2 + H^2 below 1e-12 (the MPDIoU term overflowed float32)', { variant: 'mpdiou', imageSize: [1e-7, 1e-7] }, 'imageSize', /between 1e-12 and 2\^126/],
    ['imageSize [1e-19, 1e-19]', { variant: 'mpdiou', imageSize: [1e-19, 1e-19] }, 'imageSize', /out of range/],
    ['focaler narrower than 0.01', { focaler: [0.5, 0.505] }, 'focaler', /u - d >= 0.01/],
    ['focaler whose ends meet in float32', { focaler: [0.5, 0.50000001] }, 'focaler', /u - d >= 0.01/],
    ["Wise-IoU v3 whose factor peaks past 2^100 (tiny delta, alpha near 1)", { variant: 'wiou', wiouAlpha: 1.0001, wiouDelta: 1e-30 }, 'wiouDelta', /peaks at .* below 2\^100/],
  ])('%s', (_what, options, argument, message) => {
    const e = refusal(options);
    expect(e.code).toBe('invalid_param');
    expect(e.argument).toBe(argument);
    expect(e.message).toMatch(message);
  });

  it.each([
    { variant: 'giou', power: 20 },
    { variant: 'iou', innerRatio: 3.4e38 },
    { variant: 'ciou', innerRatio: 1e-30 },
    { variant: 'shape', scale: 3.4e38 },
    { variant: 'giou', eps: 3.4e38 },
    { variant: 'iou', mode: 'log', eps: 3.4e38 },
    { variant: 'mpdiou', imageSize: [1e-6, 1e-6] },
    { variant: 'mpdiou', imageSize: [9e18, 1] },
    { focaler: [0.1, 0.11] },
    { variant: 'wiou', iouMean: 2 ** -126 },
    { variant: 'wiou', wiouVersion: 2, iouMean: 2 ** -126 },
    { variant: 'wiou', wiouAlpha: 1.9, wiouDelta: 1e-20 },
  ].map((o) => [JSON.stringify(o), o] as const))('accepts %s, with a finite loss and gradient', (_name, options) => {
    const r = cpu.run('iou_loss', { pred, target }, { ...options, ...none } as never);
    expect(r.loss.every(Number.isFinite)).toBe(true);
    expect(r.grad.pred.every(Number.isFinite)).toBe(true);
  });
});
