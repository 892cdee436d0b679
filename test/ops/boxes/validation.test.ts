import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';

/** Runs `f` and returns the DetlossError it throws (failing the test when it throws nothing else). */
function thrown(f: () => unknown): DetlossError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DetlossError);
    return e as DetlossError;
  }
  throw new Error('expected a DetlossError, nothing was thrown');
}

const box = (n: number) => Float32Array.from({ length: 4 * n }, (_, k) => (k % 4 >= 2 ? 2 + k : k));

describe('iou_loss: bad input is refused with a named argument', () => {
  const cases: [string, () => unknown, string, string][] = [
    ['pred of 7 numbers', () => cpu.run('iou_loss', { pred: new Float32Array(7), target: new Float32Array(7) }), 'shape_mismatch', 'pred'],
    ['pred and target of different n', () => cpu.run('iou_loss', { pred: box(2), target: box(3) }), 'shape_mismatch', 'target'],
    [
      'pred with shape [2, 3]',
      () => cpu.run('iou_loss', { pred: { data: new Float32Array(6), shape: [2, 3] }, target: box(2) }),
      'shape_mismatch',
      'pred',
    ],
    [
      'pred with rank 1',
      () => cpu.run('iou_loss', { pred: { data: new Float32Array(8), shape: [8] }, target: box(2) }),
      'shape_mismatch',
      'pred',
    ],
    ['shape and data disagree', () => cpu.run('iou_loss', { pred: { data: box(2), shape: [3, 4] }, target: box(3) }), 'shape_mismatch', 'pred'],
    ['missing target', () => cpu.run('iou_loss' as string, { pred: box(2) }), 'missing_input', 'target'],
    ['an Int32Array pred', () => cpu.run('iou_loss' as string, { pred: new Int32Array(8), target: box(2) }), 'wrong_dtype', 'pred'],
    ['unknown input', () => cpu.run('iou_loss' as string, { pred: box(2), target: box(2), labels: box(2) }), 'unknown_input', 'labels'],
    ['unknown variant', () => cpu.run('iou_loss' as string, { pred: box(2), target: box(2) }, { variant: 'yolo' }), 'invalid_param', 'variant'],
    ['unknown format', () => cpu.run('iou_loss' as string, { pred: box(2), target: box(2) }, { format: 'yxyx' }), 'invalid_param', 'format'],
    ['unknown mode', () => cpu.run('iou_loss' as string, { pred: box(2), target: box(2) }, { mode: 'cube' }), 'invalid_param', 'mode'],
    ['mode with variant giou', () => cpu.run('iou_loss', { pred: box(2), target: box(2) }, { variant: 'giou', mode: 'linear' }), 'invalid_param', 'mode'],
    ['mode with variant siou', () => cpu.run('iou_loss', { pred: box(2), target: box(2) }, { variant: 'siou', mode: 'log' }), 'invalid_param', 'mode'],
    ['eps 0', () => cpu.run('iou_loss', { pred: box(2), target: box(2) }, { eps: 0 }), 'invalid_param', 'eps'],
    ['eps negative', () => cpu.run('iou_loss', { pred: box(2), target: box(2) }, { eps: -1e-7 }), 'invalid_param', 'eps'],
    ['eps NaN', () => cpu.run('iou_loss', { pred: box(2), target: box(2) }, { eps: Number.NaN }), 'invalid_param', 'eps'],
    ['unknown param', () => cpu.run('iou_loss' as string, { pred: box(2), target: box(2) }, { theta: 4 }), 'unknown_param', 'theta'],
    ['weight per coordinate', () => cpu.run('iou_loss', { pred: box(2), target: box(2), weight: new Float32Array(8) }), 'shape_mismatch', 'weight'],
    [
      "gradOutput per row with reduction 'mean'",
      () => cpu.run('iou_loss', { pred: box(2), target: box(2), gradOutput: new Float32Array(2) }),
      'shape_mismatch',
      'gradOutput',
    ],
    ['a NaN coordinate with check', () => cpu.run('iou_loss', { pred: Float32Array.of(0, 0, Number.NaN, 1), target: box(1) }, { check: true }), 'invalid_value', 'pred'],
  ];
  it.each(cases)('%s', (_name, f, code, argument) => {
    const e = thrown(f);
    expect(e.code).toBe(code);
    expect(e.argument).toBe(argument);
  });

  it('accepts mode with variant iou, and variant giou when mode is left out', () => {
    expect(cpu.run('iou_loss', { pred: box(2), target: box(2) }, { variant: 'iou', mode: 'log' }).loss.length).toBe(1);
    expect(cpu.run('iou_loss', { pred: box(2), target: box(2) }, { variant: 'giou' }).loss.length).toBe(1);
  });

  it('defaults: variant iou, mode linear, format xyxy', () => {
    const pred = Float32Array.of(0, 0, 2, 2);
    const target = Float32Array.of(1, 1, 3, 3);
    const r = cpu.run('iou_loss', { pred, target }, { reduction: 'none' });
    expect(r.loss[0]).toBeCloseTo(1 - 1 / (7 + 1e-7), 14);
    expect(r.shape).toEqual([1]);
  });
});

describe('pairwise_iou: bad input is refused with a named argument', () => {
  const none = { reduction: 'none' as const };
  const cases: [string, () => unknown, string, string][] = [
    ['a of 6 numbers', () => cpu.run('pairwise_iou', { a: new Float32Array(6), b: box(2) }, none), 'shape_mismatch', 'a'],
    ['b with shape [2, 5]', () => cpu.run('pairwise_iou', { a: box(2), b: { data: new Float32Array(10), shape: [2, 5] } }, none), 'shape_mismatch', 'b'],
    ['missing b', () => cpu.run('pairwise_iou' as string, { a: box(2) }, none), 'missing_input', 'b'],
    ['variant eiou (loss only)', () => cpu.run('pairwise_iou' as string, { a: box(2), b: box(2) }, { ...none, variant: 'eiou' }), 'invalid_param', 'variant'],
    ['variant siou (loss only)', () => cpu.run('pairwise_iou' as string, { a: box(2), b: box(2) }, { ...none, variant: 'siou' }), 'invalid_param', 'variant'],
    ['unknown format', () => cpu.run('pairwise_iou' as string, { a: box(2), b: box(2) }, { ...none, format: 'xyxyx' }), 'invalid_param', 'format'],
    ['mode (an iou_loss param)', () => cpu.run('pairwise_iou' as string, { a: box(2), b: box(2) }, { ...none, mode: 'log' }), 'unknown_param', 'mode'],
    ["reduction 'mean'", () => cpu.run('pairwise_iou' as string, { a: box(2), b: box(2) }, { reduction: 'mean' }), 'invalid_param', 'reduction'],
    ["reduction 'sum'", () => cpu.run('pairwise_iou' as string, { a: box(2), b: box(2) }, { reduction: 'sum' }), 'invalid_param', 'reduction'],
    ['a weight of n numbers, not n*m', () => cpu.run('pairwise_iou', { a: box(2), b: box(3), weight: new Float32Array(2) }, none), 'shape_mismatch', 'weight'],
  ];
  it.each(cases)('%s', (_name, f, code, argument) => {
    const e = thrown(f);
    expect(e.code).toBe(code);
    expect(e.argument).toBe(argument);
  });

  it('an [n, m] result for n != m, and for n = 0', () => {
    expect(cpu.run('pairwise_iou', { a: box(2), b: box(5) }, none).shape).toEqual([2, 5]);
    const empty = cpu.run('pairwise_iou', { a: new Float32Array(0), b: box(5) }, none);
    expect(empty.shape).toEqual([0, 5]);
    expect(empty.loss.length).toBe(0);
  });
});
