import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetlossContext } from '../../../src/api';
import { cpu } from '../../../src/cpu';
import type { F32Tensor, I32Tensor, OpInputs } from '../../../src/ops/op-types';
import { countDevice, maxRelErr, rand, reset, type Counts } from '../../helpers/counting';
import { LOGIT_OP_NAMES, logitInputs, type Tensor } from '../../helpers/logit-inputs';
import { nodeContext } from '../../helpers/node-gpu';

let dl: DetlossContext;
let counts: Counts;
beforeAll(async () => {
  dl = await nodeContext();
  counts = countDevice(dl.device);
});
afterAll(() => dl?.destroy());

const host = (inputs: Record<string, Tensor>) =>
  Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { data: t.dtype === 'i32' ? Int32Array.from(t.data) : Float32Array.from(t.data), shape: t.shape }]));

describe('typed wrappers equal cpu.run', () => {
  it.each(LOGIT_OP_NAMES)('%s', async (op) => {
    const { inputs, params } = logitInputs(op, 17, 6, 3, op === 'cross_entropy' || op === 'bce_with_logits' ? 'weighted' : 'plain');
    const h = host(inputs);
    // The fixture's dtypes are the op's: float32 for these names, int32 for labels.
    const f = (name: string) => h[name] as F32Tensor;
    const labels = h.labels as I32Tensor;
    const o = { ...params, reduction: 'sum' as const };
    const call: Record<string, () => ReturnType<DetlossContext['run']>> = {
      sigmoid_focal: () => dl.sigmoidFocalLoss(f('logits'), f('targets'), o),
      varifocal: () => dl.varifocalLoss(f('logits'), f('targets'), o),
      bce_with_logits: () => dl.bceWithLogits(f('logits'), f('targets'), { ...o, posWeight: f('posWeight') }),
      quality_focal: () => dl.qualityFocalLoss(f('logits'), labels, f('scores'), o),
      distribution_focal: () => dl.distributionFocalLoss(f('logits'), f('targets'), o),
      cross_entropy: () => dl.crossEntropy(f('logits'), labels, { ...o, classWeight: f('classWeight') }),
      kl_div: () => dl.klDiv(f('student'), f('teacher'), o),
      dice: () => dl.diceLoss(f('logits'), f('targets'), o),
    };
    const r = await call[op]();
    const ref = cpu.run(op, h, o);
    const g = Object.keys(ref.grad)[0];
    expect(maxRelErr(r.loss, ref.loss)).toBeLessThan(1e-4);
    expect(maxRelErr(r.grad[g], ref.grad[g])).toBeLessThan(1e-4);
  });
});

describe("cross-entropy 'mean' is PyTorch's: divided by the summed weights of the rows not ignored", () => {
  it('with class weights, row weights, ignored rows and label smoothing', async () => {
    const { inputs, params } = logitInputs('cross_entropy', 40, 7, 9, 'weighted');
    const h: OpInputs<'cross_entropy'> & { weight: Float32Array } = { ...(host(inputs) as OpInputs<'cross_entropy'>), weight: rand(40, 4, 0.5, 1.5) };
    const r = await dl.run('cross_entropy', h, { ...params, reduction: 'mean' });
    const none = cpu.run('cross_entropy', h, { ...params, reduction: 'none' }).loss;
    const labels = (h.labels as { data: Int32Array }).data;
    const cw = (h.classWeight as { data: Float32Array }).data;
    let num = 0;
    let den = 0;
    for (let i = 0; i < 40; i++) {
      num += none[i];
      if (labels[i] !== -1) den += h.weight[i] * cw[labels[i]];
    }
    expect(labels.includes(-1)).toBe(true);
    expect(r.loss[0]).toBeCloseTo(num / den, 5);
  });
});

describe('bad input is refused before any GPU work, naming the input and the first bad index', () => {
  const x = (n: number, c: number) => ({ data: rand(n * c, 1), shape: [n, c] });
  const cases: [string, string, Record<string, unknown>, Record<string, unknown>, string, string, RegExp?][] = [
    ['a label outside 0..c-1 that is not ignoreIndex', 'cross_entropy', { logits: x(4, 3), labels: Int32Array.of(0, 2, 3, 1) }, {}, 'invalid_value', 'labels', /labels\[2\] = 3/],
    ['a negative label', 'cross_entropy', { logits: x(4, 3), labels: Int32Array.of(0, -5, 1, 1) }, {}, 'invalid_value', 'labels', /labels\[1\] = -5/],
    ['a DFL target at k-1', 'distribution_focal', { logits: x(3, 5), targets: Float32Array.of(0.5, 4, 1) }, {}, 'invalid_value', 'targets', /targets\[1\] = 4/],
    ['a negative DFL target', 'distribution_focal', { logits: x(3, 5), targets: Float32Array.of(-0.1, 1, 1) }, {}, 'invalid_value', 'targets', /targets\[0\]/],
    ['logits that disagree with c', 'cross_entropy', { logits: rand(10, 1), labels: Int32Array.of(0, 1, 2) }, {}, 'shape_mismatch', 'logits'],
    ['classWeight of the wrong length', 'cross_entropy', { logits: x(4, 3), labels: Int32Array.of(0, 1, 2, 0), classWeight: rand(4, 2) }, {}, 'shape_mismatch', 'classWeight'],
    ['posWeight of the wrong length', 'bce_with_logits', { logits: x(2, 3), targets: x(2, 3), posWeight: rand(2, 2) }, {}, 'shape_mismatch', 'posWeight'],
    ['targets shaped unlike the logits', 'varifocal', { logits: x(2, 3), targets: x(3, 2) }, {}, 'shape_mismatch', 'targets'],
    ['Float32Array labels', 'cross_entropy', { logits: x(2, 3), labels: Float32Array.of(0, 1) }, {}, 'wrong_dtype', 'labels'],
    ['Int32Array logits', 'quality_focal', { logits: { data: new Int32Array(6), shape: [2, 3] }, labels: Int32Array.of(0, 1), scores: rand(2, 3) }, {}, 'wrong_dtype', 'logits'],
    ['Int32Array targets', 'sigmoid_focal', { logits: rand(3, 1), targets: Int32Array.of(0, 1, 0) }, {}, 'wrong_dtype', 'targets'],
    ['labelSmoothing above 1', 'cross_entropy', { logits: x(2, 3), labels: Int32Array.of(0, 1) }, { labelSmoothing: 1.5 }, 'invalid_param', 'labelSmoothing'],
    ['temperature 0', 'kl_div', { student: x(2, 3), teacher: x(2, 3) }, { temperature: 0 }, 'invalid_param', 'temperature'],
    ['unknown classReduction', 'kl_div', { student: x(2, 3), teacher: x(2, 3) }, { classReduction: 'max' }, 'invalid_param', 'classReduction'],
  ];
  it.each(cases)('%s', async (_what, op, inputs, options, code, argument, message) => {
    reset(counts);
    const err = await dl.run(op, inputs as never, options).catch((e) => e);
    expect(err).toMatchObject({ code, argument });
    if (message) expect(err.message).toMatch(message);
    expect(counts.submits).toBe(0);
    expect(() => cpu.run(op, inputs, options)).toThrow(expect.objectContaining({ code, argument }));
  });
});

describe('empty batches', () => {
  it.each(LOGIT_OP_NAMES)('%s with n = 0', async (op) => {
    const { inputs, params } = logitInputs(op, 0, 4, 1);
    for (const reduction of ['none', 'mean', 'sum'] as const) {
      const r = await dl.run(op, host(inputs), { ...params, reduction });
      expect(Array.from(r.loss)).toEqual(reduction === 'none' ? [] : [0]);
      expect(Object.values(r.grad).every((g) => g.length === 0)).toBe(true);
    }
  });
});

describe('zero-sized rows: 0 / 0 is read as 0 on the GPU and the CPU alike, never NaN', () => {
  const f32 = (shape: number[], data: number[] = []) => ({ data: Float32Array.from(data), shape });
  it("kl_div with c = 0 and classReduction 'mean'", async () => {
    const inputs = { student: f32([3, 0]), teacher: f32([3, 0]) };
    for (const reduction of ['none', 'sum'] as const) {
      const o = { reduction, classReduction: 'mean' as const, temperature: 2 };
      const r = await dl.run('kl_div', inputs, o);
      const ref = cpu.run('kl_div', inputs, o);
      expect(Array.from(r.loss)).toEqual(reduction === 'none' ? [0, 0, 0] : [0]);
      expect(Array.from(ref.loss)).toEqual(Array.from(r.loss));
      expect(r.grad.student.length).toBe(0);
    }
  });
  it('dice with eps = 0: an empty row and a row of certain negatives against zero targets', async () => {
    for (const naive of [false, true]) {
      const empty = { logits: f32([2, 0]), targets: f32([2, 0]) };
      const o = { reduction: 'none' as const, eps: 0, naive };
      const r = await dl.run('dice', empty, o);
      const ref = cpu.run('dice', empty, o);
      expect(Array.from(r.loss)).toEqual([1, 1]);
      expect(Array.from(ref.loss)).toEqual([1, 1]);
      // sigmoid(-1e4) is 0 in f32 and in f64, so every sum is 0 and the coefficient is 0 / 0.
      const zero = { logits: f32([1, 3], [-1e4, -1e4, -1e4]), targets: f32([1, 3], [0, 0, 0]) };
      const rz = await dl.run('dice', zero, o);
      const refz = cpu.run('dice', zero, o);
      expect(Array.from(rz.loss)).toEqual([1]);
      expect(Array.from(refz.loss)).toEqual([1]);
      expect(Array.from(rz.grad.logits).map((v) => v + 0)).toEqual([0, 0, 0]);
      expect(Array.from(refz.grad.logits).map((v) => v + 0)).toEqual([0, 0, 0]);
    }
  });
});
