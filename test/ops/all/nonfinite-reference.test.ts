// The float64 reference under ops.md's rule "Non-finite input is never hidden": a NaN makes every
// 'none' element it reaches NaN, and the reduced loss; elements it does not reach keep their
// values (as in PyTorch, which reads only weight[y] in nll_loss and in cross_entropy without label
// smoothing, and only logProbs[i, y] in nll_loss). Infinities give the value PyTorch gives where
// it is defined (hand-derived below) and NaN where it is not.
import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { OPS } from '../../../src/ops/registry';
import { NONFINITE_OPS, problem, withValue, type T } from '../../fuzz/nonfinite';

const N = 8;
const C = 5;
type Opts = Record<string, unknown>;
const run = (op: string, inputs: Record<string, unknown>, options: Opts = {}) => cpu.run(op, inputs as never, options as never);
const f32 = (...v: number[]) => Float32Array.from(v);

/**
 * The 'none' elements a NaN at flat position k of `input` reaches, for the problems of
 * test/fuzz/nonfinite.ts (8 rows of 5; labels i % 5 with row 4 ignored, or background every
 * fourth row), or undefined where the host refuses a NaN there.
 */
function reached(op: string, input: string, k: number, options: Opts): number[] | undefined {
  const row = Math.floor(k / C);
  const label = (i: number) => (i % 5 === 4 ? -100 : i % C);
  const background = (i: number) => i % 4 === 3;
  const rows = (pred: (i: number) => boolean) => Array.from({ length: N }, (_, i) => i).filter(pred);
  if (input === 'weight') return [k];
  switch (op) {
    case 'l1': case 'mse': case 'smooth_l1': case 'huber': case 'balanced_l1': case 'sigmoid_focal':
    case 'hinge': case 'hinge_embedding': case 'margin_ranking': case 'exponential': case 'varifocal':
      // the targets of the margin losses are -1 or +1, and a NaN is refused
      return input === 'targets' && op !== 'sigmoid_focal' && op !== 'varifocal' ? undefined : [k];
    case 'bce_with_logits':
      // w t softplus(-x): a NaN pos_weight reaches its column even where t = 0 (NaN * 0)
      return input === 'posWeight' ? rows(() => true).map((i) => i * C + k) : [k];
    case 'class_balanced_focal':
      return input === 'logits' ? [k] : undefined;
    case 'quality_focal':
      // a row's score enters its label's column only: a background row has none
      return input === 'scores' ? (background(k) ? [] : [k]) : [row];
    case 'distribution_focal':
      return input === 'targets' ? undefined : [row];
    case 'kl_div': case 'dice':
      return [row];
    case 'cross_entropy': case 'softmax_focal': {
      if (input === 'logits') return label(row) === -100 ? [] : [row];
      // classWeight[k]: the rows labelled k, and with label smoothing every row not ignored
      const smoothing = op === 'cross_entropy' && ((options.labelSmoothing as number | undefined) ?? 0.1) > 0;
      return rows((i) => label(i) !== -100 && (smoothing || label(i) === k));
    }
    case 'nll':
      if (input === 'logProbs') return label(row) !== -100 && k % C === label(row) ? [row] : [];
      return rows((i) => label(i) === k);
  }
  throw new Error(op);
}

describe('a NaN reaches exactly what it reaches: NaN there, the same numbers elsewhere', () => {
  const variants: Record<string, Opts[]> = { cross_entropy: [{}, { labelSmoothing: 0 }], softmax_focal: [{}, { gamma: 0 }] };
  it.each(NONFINITE_OPS.map((op) => [op]))('%s', (op) => {
    const found: string[] = [];
    for (const params of variants[op] ?? [{}]) {
      const base = problem(op, N, C, params);
      const clean = run(op, base.inputs, { ...base.options, reduction: 'none', grad: false });
      const weight: T = { data: new Float32Array(clean.loss.length).fill(1.5), shape: clean.shape };
      const floats = [...Object.keys(base.inputs).filter((k) => OPS[op].inputs[k].dtype === 'f32'), 'weight'];
      for (const input of floats) {
        const t = input === 'weight' ? weight : base.inputs[input];
        for (const k of [0, 3, t.data.length - 1].filter((x, i, a) => a.indexOf(x) === i && x < t.data.length)) {
          const inputs = { ...base.inputs, weight, [input]: withValue(t, NaN, [k]) };
          const want = reached(op, input, k, base.options);
          const tag = `${JSON.stringify(params)} ${input}[${k}]`;
          let none;
          try {
            none = run(op, inputs, { ...base.options, reduction: 'none', grad: false });
          } catch (e) {
            if (want !== undefined) found.push(`${tag}: refused (${(e as Error).message})`);
            continue;
          }
          if (want === undefined) {
            found.push(`${tag}: accepted, but the host refuses a NaN there`);
            continue;
          }
          for (let i = 0; i < none.loss.length; i++) {
            const w = input === 'weight' ? (i === k ? NaN : 1.5) : 1.5;
            const expected = want.includes(i) ? NaN : w * clean.loss[i];
            const ok = Number.isNaN(expected) ? Number.isNaN(none.loss[i]) : Math.abs(none.loss[i] - expected) <= 1e-12 * (1 + Math.abs(expected));
            if (!ok) found.push(`${tag}: loss[${i}] = ${none.loss[i]}, want ${expected}`);
          }
          for (const reduction of ['mean', 'sum']) {
            const r = run(op, inputs, { ...base.options, reduction });
            if (want.length > 0 !== Number.isNaN(r.loss[0])) found.push(`${tag}: ${reduction} ${r.loss[0]} (reaches ${want.length} elements)`);
          }
        }
      }
    }
    expect(found).toEqual([]);
  });
});

describe('hinges are clamp_min(z, 0), which keeps a NaN (PyTorch: clamp_min(nan, 0) is nan)', () => {
  it('hinge, hinge_embedding (target -1) and margin_ranking: NaN in, NaN out; infinities give 0 or Infinity', () => {
    const y = f32(1, -1, 1, -1);
    expect(Array.from(run('hinge', { logits: f32(NaN, NaN, Infinity, Infinity), targets: y }, { reduction: 'none' }).loss)).toEqual([NaN, NaN, 0, Infinity]);
    expect(Array.from(run('hinge_embedding', { pred: f32(NaN, NaN, -Infinity, -Infinity), targets: y }, { reduction: 'none' }).loss)).toEqual([NaN, NaN, -Infinity, Infinity]);
    const mr = run('margin_ranking', { input1: f32(NaN, 0, Infinity, Infinity), input2: f32(0, NaN, 0, 0), targets: y }, { reduction: 'none' }).loss;
    expect(Array.from(mr)).toEqual([NaN, NaN, 0, Infinity]);
    expect(run('hinge', { logits: f32(NaN, 3), targets: f32(1, 1) }, { reduction: 'sum' }).loss[0]).toBeNaN();
  });
});

describe('cross_entropy without label smoothing reads only the label class, as F.cross_entropy (nll_loss) does', () => {
  // logits [0, ln 3, 0]: log_softmax at class 0 is -ln 5; at class 1, ln 3 - ln 5.
  const logits = { data: f32(0, Math.log(3), 0), shape: [1, 3] };
  const labels = Int32Array.of(0);
  it.each([NaN, Infinity, -Infinity])('classWeight[2] = %s: -w[0] log p_0 = 2 ln 5, gradient finite', (v) => {
    const r = run('cross_entropy', { logits, labels, classWeight: f32(2, 1, v) }, { reduction: 'none' });
    expect(r.loss[0]).toBeCloseTo(2 * Math.log(5), 6);
    expect(Array.from(r.grad.logits).every(Number.isFinite)).toBe(true);
    // softmax_focal at gamma 0 is cross_entropy
    expect(run('softmax_focal', { logits, labels, classWeight: f32(2, 1, v) }, { gamma: 0, reduction: 'none' }).loss[0]).toBeCloseTo(2 * Math.log(5), 6);
  });
  it('a logit of -Infinity off the label is a probability of 0: the loss is finite without smoothing, Infinity with it', () => {
    // F.cross_entropy([[0, -inf]], [0]) = 0; with label smoothing the -inf enters sum_j q_j
    const x = { data: f32(0, -Infinity), shape: [1, 2] };
    expect(run('cross_entropy', { logits: x, labels: Int32Array.of(0) }, { reduction: 'none' }).loss[0]).toBeCloseTo(0, 12);
    expect(run('cross_entropy', { logits: x, labels: Int32Array.of(0) }, { reduction: 'none', labelSmoothing: 0.2 }).loss[0]).toBe(Infinity);
    expect(run('cross_entropy', { logits: x, labels: Int32Array.of(1) }, { reduction: 'none' }).loss[0]).toBe(Infinity);
  });
  it('with label smoothing every class weight enters: a NaN one makes the row NaN', () => {
    expect(run('cross_entropy', { logits, labels, classWeight: f32(2, 1, NaN) }, { reduction: 'none', labelSmoothing: 0.1 }).loss[0]).toBeNaN();
  });
});

describe("kl_div with infinite logits: F.kl_div's xlogy(p, p) - p log q, term by term", () => {
  const kl = (student: number[], teacher: number[], options: Opts = {}) => run('kl_div', { student: { data: f32(...student), shape: [1, student.length] }, teacher: { data: f32(...teacher), shape: [1, teacher.length] } }, { reduction: 'none', ...options }).loss[0];
  it('a student logit of -Infinity where the teacher has mass: Infinity, wherever the class is', () => {
    expect(kl([-Infinity, 0], [0, 0])).toBe(Infinity);
    expect(kl([0, -Infinity], [0, 0])).toBe(Infinity);
    expect(kl([-Infinity, 0, 1], [1, 0, 0], { temperature: 2, classReduction: 'mean' })).toBe(Infinity);
  });
  it('a teacher logit of -Infinity is p = 0, which adds nothing: KL([0, 1] || [1/2, 1/2]) = ln 2', () => {
    expect(kl([0, 0], [-Infinity, 0])).toBeCloseTo(Math.LN2, 12);
    // T = 2, classReduction 'mean': T^2 ln 2 / 2
    expect(kl([0, 0], [-Infinity, 0], { temperature: 2, classReduction: 'mean' })).toBeCloseTo(2 * Math.LN2, 12);
  });
  it('undefined: p = q = 0 (0 * -inf), a NaN, a +Infinity, a row of -Infinity', () => {
    expect(kl([-Infinity, 0], [-Infinity, 0])).toBeNaN();
    expect(kl([NaN, 0], [0, 0])).toBeNaN();
    expect(kl([0, 0], [0, NaN])).toBeNaN();
    expect(kl([Infinity, 0], [0, 0])).toBeNaN();
    expect(kl([0, 0], [0, Infinity])).toBeNaN();
    expect(kl([-Infinity, -Infinity], [0, 0])).toBeNaN();
  });
  it('finite rows are untouched, and a NaN row leaves its neighbours alone', () => {
    const s = { data: f32(0.3, -1, NaN, 2), shape: [2, 2] };
    const t = { data: f32(1, 0.5, 0, 0), shape: [2, 2] };
    const r = run('kl_div', { student: s, teacher: t }, { reduction: 'none' }).loss;
    const one = run('kl_div', { student: { data: f32(0.3, -1), shape: [1, 2] }, teacher: { data: f32(1, 0.5), shape: [1, 2] } }, { reduction: 'none' }).loss[0];
    expect(r[0]).toBe(one);
    expect(r[1]).toBeNaN();
  });
});
