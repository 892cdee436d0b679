import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';

/**
 * Bad input to the focal and classification losses on the CPU reference: each call throws a
 * DetlossError with the right `code`, naming the input or param at fault and, for bad data, the
 * first bad index. The GPU path shares this validation (test/ops/logits/gpu.test.ts).
 */

const z = (shape: number[]) => ({ data: new Float32Array(shape.reduce((a, b) => a * b, 1)), shape });
const lab = (...v: number[]) => ({ data: Int32Array.from(v), shape: [v.length] });
const vec = (...v: number[]) => ({ data: Float32Array.from(v), shape: [v.length] });

type Bad = [what: string, op: string, inputs: Record<string, unknown>, options: Record<string, unknown>, code: string, argument: string, message?: RegExp];

const BAD: Bad[] = [
  // data
  ['cross_entropy label = c', 'cross_entropy', { logits: z([4, 3]), labels: lab(0, 2, 3, 3) }, {}, 'invalid_value', 'labels', /labels\[2\] = 3/],
  ['cross_entropy negative label that is not ignoreIndex', 'cross_entropy', { logits: z([3, 3]), labels: lab(1, -1, 0) }, {}, 'invalid_value', 'labels', /labels\[1\] = -1/],
  ['cross_entropy default ignoreIndex once changed', 'cross_entropy', { logits: z([2, 3]), labels: lab(-100, 0) }, { ignoreIndex: -1 }, 'invalid_value', 'labels', /labels\[0\] = -100/],
  ['distribution_focal target = k - 1', 'distribution_focal', { logits: z([3, 5]), targets: vec(0.5, 3.99, 4) }, {}, 'invalid_value', 'targets', /targets\[2\] = 4/],
  ['distribution_focal negative target', 'distribution_focal', { logits: z([2, 5]), targets: vec(1, -1e-6) }, {}, 'invalid_value', 'targets', /targets\[1\]/],
  ['distribution_focal NaN target', 'distribution_focal', { logits: z([2, 5]), targets: vec(NaN, 1) }, {}, 'invalid_value', 'targets', /targets\[0\] = NaN/],
  ['distribution_focal with one bin', 'distribution_focal', { logits: z([1, 1]), targets: vec(0) }, {}, 'invalid_value', 'targets', /targets\[0\]/],
  ['a NaN logit with check: true', 'quality_focal', { logits: { data: Float32Array.of(0, NaN), shape: [1, 2] }, labels: lab(0), scores: vec(1) }, { check: true }, 'invalid_value', 'logits', /logits\[1\]/],
  // shapes
  ['logits not a multiple of c', 'cross_entropy', { logits: new Float32Array(10), labels: new Int32Array(3) }, {}, 'shape_mismatch', 'logits'],
  ['labels longer than the rows', 'quality_focal', { logits: z([2, 3]), labels: lab(0, 1, 2), scores: vec(1, 1) }, {}, 'shape_mismatch', 'labels'],
  ['scores shorter than the rows', 'quality_focal', { logits: z([2, 3]), labels: lab(0, 1), scores: vec(1) }, {}, 'shape_mismatch', 'scores'],
  ['labels of rank 2', 'cross_entropy', { logits: z([2, 3]), labels: { data: new Int32Array(2), shape: [2, 1] } }, {}, 'shape_mismatch', 'labels'],
  ['DFL targets per bin', 'distribution_focal', { logits: z([2, 3]), targets: z([2, 3]) }, {}, 'shape_mismatch', 'targets'],
  ['classWeight longer than c', 'cross_entropy', { logits: z([2, 3]), labels: lab(0, 1), classWeight: vec(1, 1, 1, 1) }, {}, 'shape_mismatch', 'classWeight'],
  ['posWeight shorter than c', 'bce_with_logits', { logits: z([2, 3]), targets: z([2, 3]), posWeight: vec(1, 1) }, {}, 'shape_mismatch', 'posWeight'],
  ['varifocal targets transposed', 'varifocal', { logits: z([2, 3]), targets: z([3, 2]) }, {}, 'shape_mismatch', 'targets'],
  ['dice targets wider than the logits', 'dice', { logits: z([2, 3]), targets: z([2, 4]) }, {}, 'shape_mismatch', 'targets'],
  ['kl_div teacher of another shape', 'kl_div', { student: z([2, 3]), teacher: z([3, 2]) }, {}, 'shape_mismatch', 'teacher'],
  ['sigmoid_focal targets of another length', 'sigmoid_focal', { logits: new Float32Array(6), targets: new Float32Array(5) }, {}, 'shape_mismatch', 'targets'],
  ['varifocal weight per row', 'varifocal', { logits: z([2, 3]), targets: z([2, 3]), weight: new Float32Array(2) }, { reduction: 'sum' }, 'shape_mismatch', 'weight'],
  ['a shape that disagrees with its data', 'kl_div', { student: { data: new Float32Array(5), shape: [2, 3] }, teacher: z([2, 3]) }, {}, 'shape_mismatch', 'student'],
  // dtypes
  ['Float32Array labels', 'cross_entropy', { logits: z([2, 3]), labels: Float32Array.of(0, 1) }, {}, 'wrong_dtype', 'labels', /Int32Array/],
  ['plain-array labels', 'quality_focal', { logits: z([1, 2]), labels: [0], scores: vec(1) }, {}, 'wrong_dtype', 'labels'],
  ['Int32Array logits', 'quality_focal', { logits: { data: new Int32Array(6), shape: [2, 3] }, labels: lab(0, 1), scores: vec(1, 1) }, {}, 'wrong_dtype', 'logits'],
  ['Int32Array targets', 'sigmoid_focal', { logits: new Float32Array(3), targets: Int32Array.of(0, 1, 0) }, {}, 'wrong_dtype', 'targets'],
  ['Int32Array classWeight', 'cross_entropy', { logits: z([2, 3]), labels: lab(0, 1), classWeight: Int32Array.of(1, 1, 1) }, {}, 'wrong_dtype', 'classWeight'],
  ['Int32Array teacher', 'kl_div', { student: z([1, 2]), teacher: { data: Int32Array.of(1, 2), shape: [1, 2] } }, {}, 'wrong_dtype', 'teacher'],
  // names and params
  ['a missing input', 'cross_entropy', { logits: z([2, 3]) }, {}, 'missing_input', 'labels'],
  ['an unknown input', 'bce_with_logits', { logits: z([1, 2]), targets: z([1, 2]), classWeight: vec(1, 1) }, {}, 'unknown_input', 'classWeight'],
  ['an unknown param', 'sigmoid_focal', { logits: new Float32Array(2), targets: new Float32Array(2) }, { gama: 2 }, 'unknown_param', 'gama'],
  ['negative gamma', 'varifocal', { logits: z([1, 2]), targets: z([1, 2]) }, { gamma: -1 }, 'invalid_param', 'gamma'],
  ['negative beta', 'quality_focal', { logits: z([1, 2]), labels: lab(0), scores: vec(1) }, { beta: -0.5 }, 'invalid_param', 'beta'],
  ['labelSmoothing above 1', 'cross_entropy', { logits: z([1, 2]), labels: lab(0) }, { labelSmoothing: 1.5 }, 'invalid_param', 'labelSmoothing'],
  ['a fractional ignoreIndex', 'cross_entropy', { logits: z([1, 2]), labels: lab(0) }, { ignoreIndex: 0.5 }, 'invalid_param', 'ignoreIndex'],
  ['temperature 0', 'kl_div', { student: z([1, 2]), teacher: z([1, 2]) }, { temperature: 0 }, 'invalid_param', 'temperature'],
  ['an unknown classReduction', 'kl_div', { student: z([1, 2]), teacher: z([1, 2]) }, { classReduction: 'max' }, 'invalid_param', 'classReduction'],
  ['negative dice eps', 'dice', { logits: z([1, 2]), targets: z([1, 2]) }, { eps: -1e-3 }, 'invalid_param', 'eps'],
  ['a non-boolean naive', 'dice', { logits: z([1, 2]), targets: z([1, 2]) }, { naive: 1 }, 'invalid_param', 'naive'],
  ['a non-boolean iouWeighted', 'varifocal', { logits: z([1, 2]), targets: z([1, 2]) }, { iouWeighted: 'yes' }, 'invalid_param', 'iouWeighted'],
];

describe('bad input to the focal and classification losses', () => {
  it.each(BAD)('%s', (_what, op, inputs, options, code, argument, message) => {
    let err: unknown;
    try {
      cpu.run(op, inputs, options);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DetlossError);
    expect(err).toMatchObject({ code, argument });
    if (message) expect((err as Error).message).toMatch(message);
  });
});

describe('input that looks unusual but is valid', () => {
  it.each<[string, string, Record<string, unknown>, Record<string, unknown>]>([
    ['labels equal to ignoreIndex', 'cross_entropy', { logits: z([2, 3]), labels: lab(-100, 2) }, {}],
    ['an ignoreIndex that is a class', 'cross_entropy', { logits: z([2, 3]), labels: lab(1, 2) }, { ignoreIndex: 1 }],
    ['quality_focal labels far outside 0..c-1 (background)', 'quality_focal', { logits: z([3, 2]), labels: lab(-7, 2, 2 ** 31 - 1), scores: vec(0, 1, 0.5) }, {}],
    ['a DFL target just below k - 1', 'distribution_focal', { logits: z([2, 3]), targets: vec(0, 1.9999) }, {}],
    ['Float64Array floats (the CPU reference takes them)', 'kl_div', { student: { data: new Float64Array(6), shape: [2, 3] }, teacher: { data: new Float64Array(6), shape: [2, 3] } }, {}],
    ['labelSmoothing of exactly 1', 'cross_entropy', { logits: z([2, 3]), labels: lab(0, 1) }, { labelSmoothing: 1 }],
    ['beta 0', 'quality_focal', { logits: z([2, 3]), labels: lab(0, 5), scores: vec(0.5, 0.5) }, { beta: 0 }],
  ])('%s', (_what, op, inputs, options) => {
    const r = cpu.run(op, inputs, options);
    expect(Array.from(r.loss).every(Number.isFinite)).toBe(true);
  });
});
