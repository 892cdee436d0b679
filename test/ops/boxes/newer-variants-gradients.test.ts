import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { rand } from '../../helpers/counting';
import { boxIn } from '../../helpers/box-grid';
import { checkCentralDifferences } from '../../helpers/finite-differences';
import { detachedAt, moreLoss, xyxyOf, type Detached, type MoreParams } from '../../helpers/box-more';

// Issue 14: the gradient of every new iou_loss variant and param against central differences of a
// second float64 forward written from ops.md ("More box losses"), with CIoU's alpha and Wise-IoU's
// c2 and focusing factor frozen at the base point (they are detached), in every format.

type Format = 'xyxy' | 'cxcywh' | 'xywh';
const FORMATS: Format[] = ['xyxy', 'cxcywh', 'xywh'];

/**
 * Random pairs in `format`, positive sides: half as in iou-gradients.test.ts (centres in [-5, 5],
 * sides in [0.5, 3], offsets up to 1.5: partial overlaps and disjoint pairs), half close (offsets up
 * to 0.3, sides within 20%: IoU above 0.5, where mmdetection's alpha is not 0).
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
    const wg = 0.5 + 2.5 * c;
    const hg = 0.5 + 2.5 * d;
    put(target, i, cx, cy, wg, hg);
    if (i % 2 === 0) put(pred, i, cx + 3 * (e - 0.5), cy + 3 * (f - 0.5), 0.5 + 2.5 * g, 0.5 + 2.5 * h);
    else put(pred, i, cx + 0.6 * (e - 0.5), cy + 0.6 * (f - 0.5), wg * (0.8 + 0.4 * g), hg * (0.8 + 0.4 * h));
  }
  return { pred, target };
}

/** The loss of row i without innerRatio and focaler, minus 1 - iou: EIoU's and SIoU's penalty, from the CPU reference (its own gradient tests cover it). */
function penalties(pred: Float64Array, target: Float64Array, variant: string, format: Format): Float64Array {
  const plain = cpu.run('iou_loss', { pred, target }, { variant: variant as 'eiou', format, reduction: 'none', grad: false }).loss;
  const iou = cpu.run('iou_loss', { pred, target }, { variant: 'iou', format, reduction: 'none', grad: false }).loss;
  return plain.map((l, i) => l - iou[i]);
}

const CONFIGS: MoreParams[] = [
  { variant: 'ciou', ciouAlpha: 'mmdet' },
  { variant: 'iou', power: 3 },
  { variant: 'giou', power: 3 },
  { variant: 'giou', power: 1.5 },
  { variant: 'diou', power: 3 },
  { variant: 'ciou', power: 3 },
  { variant: 'ciou', power: 2.5 },
  { variant: 'iou', innerRatio: 0.7 },
  { variant: 'iou', innerRatio: 1.3 },
  { variant: 'giou', innerRatio: 0.8 },
  { variant: 'ciou', innerRatio: 1.2 },
  { variant: 'eiou', innerRatio: 0.75 },
  { variant: 'siou', innerRatio: 1.25 },
  { variant: 'iou', focaler: [0.1, 0.9] },
  { variant: 'diou', focaler: [0, 0.95] },
  { variant: 'siou', focaler: [0.2, 0.7] },
  { variant: 'iou', innerRatio: 0.75, focaler: [0.05, 0.8] },
  { variant: 'ciou', innerRatio: 1.2, focaler: [0.1, 0.9] },
  { variant: 'ciou', ciouAlpha: 'mmdet', innerRatio: 0.8, focaler: [0, 0.9] },
  { variant: 'diou', power: 2, innerRatio: 0.8, focaler: [0.05, 0.95] },
  { variant: 'mpdiou', imageSize: [8, 6] },
  { variant: 'mpdiou', imageSize: [8, 6], innerRatio: 0.8, focaler: [0, 0.9] },
  { variant: 'shape', scale: 0 },
  { variant: 'shape', scale: 0.7 },
  { variant: 'shape', scale: 0.7, innerRatio: 1.2 },
  { variant: 'wiou', wiouVersion: 1 },
  { variant: 'wiou', wiouVersion: 2, iouMean: 0.6 },
  { variant: 'wiou', wiouVersion: 3, iouMean: 0.6 },
  { variant: 'wiou', wiouVersion: 3, iouMean: 0.4, wiouAlpha: 2.5, wiouDelta: 2 },
  { variant: 'wiou', wiouVersion: 3, innerRatio: 0.8, focaler: [0, 0.9] },
];

const configName = (q: MoreParams) =>
  Object.entries(q)
    .map(([k, v]) => (k === 'variant' ? String(v) : `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`))
    .join(' ');

function checkGradient(q: MoreParams, format: Format, n = 40, seed = 11) {
  const { pred, target } = boxes(n, seed, format);
  const weight = Float64Array.from(rand(n, seed + 1, 0.5, 1.5));
  const params = { ...q, format, reduction: 'sum' } as const;
  const run = cpu.run('iou_loss', { pred, target, weight }, params);
  const g = run.grad.pred;
  const tb = Array.from({ length: n }, (_, i) => xyxyOf(target, i, format));
  const frozen: Detached[] = Array.from({ length: n }, (_, i) => detachedAt(xyxyOf(pred, i, format), tb[i], q));
  const pen = q.variant === 'eiou' || q.variant === 'siou';
  const total = () => {
    const extra = pen ? penalties(pred, target, q.variant, format) : undefined;
    let s = 0;
    for (let i = 0; i < n; i++) s += weight[i] * moreLoss(xyxyOf(pred, i, format), tb[i], q, frozen[i], extra?.[i]);
    return s;
  };
  // The forward is the contract's, independently of the detached values.
  const extra = pen ? penalties(pred, target, q.variant, format) : undefined;
  let want = 0;
  for (let i = 0; i < n; i++) want += weight[i] * moreLoss(xyxyOf(pred, i, format), tb[i], q, undefined, extra?.[i]);
  expect(Math.abs(run.loss[0] - want), 'forward').toBeLessThanOrEqual(1e-10 * (1 + Math.abs(want)));

  const checked = checkCentralDifferences(pred, total, (k, central) => {
    expect(Math.abs(g[k] - central), `coordinate ${k} (row ${k >> 2}): ${g[k]} vs ${central}`).toBeLessThanOrEqual(1e-7 + 1e-5 * Math.abs(central));
  });
  expect(checked).toBeGreaterThan(0.9 * 4 * n);
}

describe('iou_loss, ops.md "More box losses": CPU gradients equal central differences of the contract', () => {
  const cases = CONFIGS.flatMap((q) => FORMATS.map((format) => [`${configName(q)} / ${format}`, q, format] as const));
  it.each(cases)('%s', (_name, q, format) => {
    checkGradient(q, format);
  });

  it('the checker fails on a wrong gradient (Wise-IoU differentiated through its c2 and factor)', () => {
    const q: MoreParams = { variant: 'wiou', wiouVersion: 3, iouMean: 0.6 };
    const { pred, target } = boxes(8, 3, 'xyxy');
    const g = cpu.run('iou_loss', { pred, target }, { ...q, reduction: 'sum' }).grad.pred;
    const tb = Array.from({ length: 8 }, (_, i) => xyxyOf(target, i, 'xyxy'));
    const live = () => tb.reduce((s, t, i) => s + moreLoss(xyxyOf(pred, i, 'xyxy'), t, q), 0);
    let worst = 0;
    checkCentralDifferences(pred, live, (k, central) => {
      worst = Math.max(worst, Math.abs(g[k] - central));
    });
    expect(worst).toBeGreaterThan(1e-3);
  });
});
