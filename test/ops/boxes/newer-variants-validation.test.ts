// The refusals of ops.md's "More box losses": params given to variants or modes they do not apply
// to, Alpha-IoU's exclusions, Focaler's d < u, MPDIoU's required imageSize. Each is an
// invalid_param DetlossError naming the param, from cpu.run (the GPU path validates the same way:
// test/runtime/call/misuse.test.ts holds the two together).
import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import { REFUSAL_PRED, REFUSAL_TARGET, iouRefusal } from '../../helpers/iou-refusal';

const pred = REFUSAL_PRED;
const target = REFUSAL_TARGET;
const refusal = iouRefusal;

const REFUSED: [string, Record<string, unknown>, string, RegExp][] = [
  ['power with eiou', { variant: 'eiou', power: 2 }, 'power', /applies only to variant 'iou' or 'giou' or 'diou' or 'ciou', not 'eiou'/],
  ['power with siou', { variant: 'siou', power: 2 }, 'power', /not 'siou'/],
  ['power with mpdiou', { variant: 'mpdiou', imageSize: [640, 480], power: 2 }, 'power', /not 'mpdiou'/],
  ['power with shape', { variant: 'shape', power: 3 }, 'power', /not 'shape'/],
  ['power with wiou', { variant: 'wiou', power: 3 }, 'power', /not 'wiou'/],
  ['power with mode square', { variant: 'iou', mode: 'square', power: 2 }, 'power', /mode 'square'/],
  ['power with mode log', { variant: 'iou', mode: 'log', power: 2 }, 'power', /mode 'log'/],
  ["power with ciouAlpha 'mmdet'", { variant: 'ciou', ciouAlpha: 'mmdet', power: 2 }, 'power', /ciouAlpha 'mmdet'/],
  ['power at its default with eiou (given: refused too)', { variant: 'eiou', power: 1 }, 'power', /not 'eiou'/],
  ['focaler with d = u', { focaler: [0.5, 0.5] }, 'focaler', /d < u, got \[0.5, 0.5\]/],
  ['focaler with d > u', { variant: 'ciou', focaler: [0.9, 0.1] }, 'focaler', /d < u/],
  ['focaler above 1', { focaler: [0, 1.2] }, 'focaler', /<= 1/],
  ['focaler of one number', { focaler: [0.1] }, 'focaler', /two finite numbers/],
  ['mpdiou without imageSize', { variant: 'mpdiou' }, 'imageSize', /needs imageSize/],
  ['imageSize with giou', { variant: 'giou', imageSize: [640, 480] }, 'imageSize', /only to variant 'mpdiou'/],
  ['imageSize of zero width', { variant: 'mpdiou', imageSize: [0, 480] }, 'imageSize', /> 0/],
  ['imageSize so small that 1 / (W^2 + H^2) overflows float32', { variant: 'mpdiou', imageSize: [1e-20, 1e-20] }, 'imageSize', /out of range/],
  ['ciouAlpha with diou', { variant: 'diou', ciouAlpha: 'mmdet' }, 'ciouAlpha', /only to variant 'ciou'/],
  ['scale with siou', { variant: 'siou', scale: 0.5 }, 'scale', /only to variant 'shape'/],
  ['iouMean with giou', { variant: 'giou', iouMean: 0.5 }, 'iouMean', /only to variant 'wiou'/],
  ['wiouVersion with ciou', { variant: 'ciou', wiouVersion: 1 }, 'wiouVersion', /only to variant 'wiou'/],
  ['wiouVersion 4', { variant: 'wiou', wiouVersion: 4 }, 'wiouVersion', /<= 3/],
  ['mode with wiou', { variant: 'wiou', mode: 'log' }, 'mode', /only to variant 'iou'/],
  ['wiouAlpha 0.5 with v3 (its factor grows without bound)', { variant: 'wiou', wiouAlpha: 0.5 }, 'wiouAlpha', /> 1 for Wise-IoU v3/],
  ['wiouAlpha 1 with v3', { variant: 'wiou', wiouAlpha: 1, iouMean: 1e-3 }, 'wiouAlpha', /> 1/],
  ['wiouAlpha^wiouDelta past float32', { variant: 'wiou', wiouAlpha: 1.9, wiouDelta: 200 }, 'wiouDelta', /2\^100/],
];

describe('iou_loss refuses the combinations ops.md refuses', () => {
  it.each(REFUSED)('%s', (_what, options, argument, message) => {
    const e = refusal(options);
    expect(e.code).toBe('invalid_param');
    expect(e.argument).toBe(argument);
    expect(e.message).toMatch(message);
  });
});

describe('and accepts the ones it allows', () => {
  const ACCEPTED: Record<string, unknown>[] = [
    { variant: 'iou', power: 3 },
    { variant: 'giou', power: 1.5 },
    { variant: 'ciou', power: 2, ciouAlpha: 'torchvision' },
    { variant: 'ciou', ciouAlpha: 'mmdet', innerRatio: 0.8, focaler: [0.1, 0.9] },
    { variant: 'iou', mode: 'log', innerRatio: 1.2 },
    { variant: 'eiou', focaler: [0, 0.95] },
    { variant: 'siou', innerRatio: 0.7 },
    { variant: 'mpdiou', imageSize: [640, 480], innerRatio: 0.9 },
    { variant: 'shape', scale: 0.7, focaler: [0.2, 1] },
    { variant: 'wiou', wiouVersion: 1, iouMean: 0.3, innerRatio: 1.1 },
    { variant: 'wiou', wiouVersion: 2, wiouAlpha: 0.5 },
    { variant: 'wiou', iouMean: 1e-3, wiouAlpha: 1.0001, wiouDelta: 50 },
  ];
  it.each(ACCEPTED.map((o) => [JSON.stringify(o), o] as const))('%s', (_name, options) => {
    const r = cpu.run('iou_loss', { pred, target }, { ...options, reduction: 'none' });
    expect(r.loss.every(Number.isFinite)).toBe(true);
    expect(r.grad.pred.every(Number.isFinite)).toBe(true);
  });
  it('defaults leave every old variant unchanged (the defaults given explicitly change no bit)', () => {
    for (const variant of ['iou', 'giou', 'diou', 'ciou', 'eiou', 'siou'] as const) {
      const plain = cpu.run('iou_loss', { pred, target }, { variant, reduction: 'none' });
      const explicit = cpu.run('iou_loss', { pred, target }, { variant, reduction: 'none', innerRatio: 1, focaler: [0, 1] });
      expect(explicit.loss).toEqual(plain.loss);
      expect(explicit.grad.pred).toEqual(plain.grad.pred);
    }
  });
});
