import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import type { OpParams } from '../../../src/ops/op-types';
import { aspectAngle } from '../../../src/cpu/iou';
import { rand } from '../../helpers/counting';
import { LOSS_VARIANTS, boxIn } from '../../helpers/box-grid';
import { centralDifference, checkCentralDifferences } from '../../helpers/finite-differences';

type Format = 'xyxy' | 'cxcywh' | 'xywh';
type Variant = { variant: NonNullable<OpParams<'iou_loss'>['variant']>; mode?: OpParams<'iou_loss'>['mode'] };

/**
 * Random pairs in `format`: targets with centres in [-5, 5] and sides in [0.5, 3], preds moved
 * by up to 1.5 with their own sides, so that most pairs overlap partially and some are disjoint.
 */
function boxes(n: number, seed: number, format: Format): { pred: Float64Array; target: Float64Array } {
  const r = rand(8 * n, seed, 0, 1);
  const pred = new Float64Array(4 * n);
  const target = new Float64Array(4 * n);
  const put = (out: Float64Array, i: number, cx: number, cy: number, w: number, h: number) => out.set(boxIn(format, cx, cy, w, h), 4 * i);
  for (let i = 0; i < n; i++) {
    const [a, b, c, d, e, f, g, h] = Array.from(r.subarray(8 * i, 8 * i + 8));
    const cx = -5 + 10 * a;
    const cy = -5 + 10 * b;
    put(target, i, cx, cy, 0.5 + 2.5 * c, 0.5 + 2.5 * d);
    put(pred, i, cx + 3 * (e - 0.5), cy + 3 * (f - 0.5), 0.5 + 2.5 * g, 0.5 + 2.5 * h);
  }
  return { pred, target };
}

/** Per-row values of `variant` at `pred`, reduction 'none'. */
const rows = (pred: Float64Array, target: Float64Array, params: Record<string, unknown>) =>
  cpu.run('iou_loss', { pred, target }, { ...params, reduction: 'none', grad: false }).loss;

/** CIoU's v per row, for the format's width and height. */
function ciouV(pred: Float64Array, target: Float64Array, format: Format): Float64Array {
  const n = pred.length / 4;
  const v = new Float64Array(n);
  const wh = (b: Float64Array, i: number) =>
    format === 'xyxy' ? [b[4 * i + 2] - b[4 * i], b[4 * i + 3] - b[4 * i + 1]] : [b[4 * i + 2], b[4 * i + 3]];
  for (let i = 0; i < n; i++) {
    const [w, h] = wh(pred, i);
    const [wg, hg] = wh(target, i);
    const d = aspectAngle(wg, hg) - aspectAngle(w, h);
    v[i] = (4 / Math.PI ** 2) * d * d;
  }
  return v;
}

/**
 * Central differences of `sum(weight * loss)` against the analytic gradient, for every coordinate
 * of every pred. Coordinates within h of a kink (left and right slopes differ) are skipped and
 * counted; almost all must be checked. For CIoU the reference differentiates the loss with
 * alpha frozen at the base point, as ops.md defines the gradient.
 */
function checkGradient(params: Variant & { format: Format }, n = 40, seed = 7) {
  const { pred, target } = boxes(n, seed, params.format);
  const weight = Float64Array.from(rand(n, seed + 1, 0.5, 1.5));
  const g = cpu.run('iou_loss', { pred, target, weight }, { ...params, reduction: 'sum' }).grad.pred;

  let total: (p: Float64Array) => number;
  if (params.variant === 'ciou') {
    const eps = 1e-7;
    const iou0 = rows(pred, target, { variant: 'iou', format: params.format }).map((l) => 1 - l);
    const v0 = ciouV(pred, target, params.format);
    const alpha0 = v0.map((v, i) => v / (1 - iou0[i] + v + eps));
    total = (p) => {
      const diou = rows(p, target, { variant: 'diou', format: params.format });
      const v = ciouV(p, target, params.format);
      let s = 0;
      for (let i = 0; i < n; i++) s += weight[i] * (diou[i] + alpha0[i] * v[i]);
      return s;
    };
  } else {
    total = (p) => cpu.run('iou_loss', { pred: p, target, weight }, { ...params, reduction: 'sum', grad: false }).loss[0];
  }

  const checked = checkCentralDifferences(pred, () => total(pred), (k, central) => {
    expect(Math.abs(g[k] - central), `${JSON.stringify(params)} coordinate ${k}: ${g[k]} vs ${central}`).toBeLessThanOrEqual(
      1e-7 + 1e-5 * Math.abs(central),
    );
  });
  expect(checked).toBeGreaterThan(0.95 * 4 * n);
}

const VARIANTS: Variant[] = [...LOSS_VARIANTS];
const FORMATS: Format[] = ['xyxy', 'cxcywh', 'xywh'];

describe('iou_loss: CPU gradients equal central finite differences', () => {
  const cases = VARIANTS.flatMap((v) => FORMATS.map((format) => ({ ...v, format })));
  it.each(cases.map((c) => [`${c.variant}${c.mode ? `-${c.mode}` : ''}/${c.format}`, c] as const))('%s', (_name, c) => {
    checkGradient(c);
  });

  it('SIoU on both sides of the 45-degree switch', () => {
    // Centre offsets at angles just under and over 45 degrees, and far from it.
    const pred: number[] = [];
    const target: number[] = [];
    for (const deg of [10, 30, 44, 44.9, 45.1, 46, 60, 80]) {
      const t = (deg * Math.PI) / 180;
      target.push(0, 0, 2, 2);
      pred.push(0.7 * Math.cos(t), 0.7 * Math.sin(t), 2 + 0.7 * Math.cos(t), 2.3 + 0.7 * Math.sin(t));
    }
    const p = Float64Array.from(pred);
    const tg = Float64Array.from(target);
    const g = cpu.run('iou_loss', { pred: p, target: tg }, { variant: 'siou', reduction: 'sum' }).grad.pred;
    const f = () => cpu.run('iou_loss', { pred: p, target: tg }, { variant: 'siou', reduction: 'sum', grad: false }).loss[0];
    for (let k = 0; k < p.length; k++) {
      const central = centralDifference(p, k, f);
      expect(Math.abs(g[k] - central), `coordinate ${k}`).toBeLessThanOrEqual(1e-7 + 1e-5 * Math.abs(central));
    }
  });

  it('the checker fails on a wrong gradient (CIoU differentiated through alpha is not the CIoU gradient)', () => {
    const { pred, target } = boxes(8, 3, 'xyxy');
    const g = cpu.run('iou_loss', { pred, target }, { variant: 'ciou', reduction: 'sum' }).grad.pred;
    const f = () => cpu.run('iou_loss', { pred, target }, { variant: 'ciou', reduction: 'sum', grad: false }).loss[0];
    let worst = 0;
    for (let k = 0; k < pred.length; k++) worst = Math.max(worst, Math.abs(g[k] - centralDifference(pred, k, f)));
    expect(worst).toBeGreaterThan(1e-4);
  });
});
