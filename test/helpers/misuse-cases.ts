/**
 * The misuse suite's tables (test/runtime/call/misuse.test.ts, and the adapters' suite in
 * test/frameworks/misuse-adapters.test.ts): a valid call of every op with a GPU kernel, and bad
 * calls of every kind built from each op's descriptor, each with the refusal it must get.
 */
import { cpu } from '../../src/cpu';
import type { DetlossError } from '../../src/errors';
import { OPS } from '../../src/ops/registry';
import type { PlanRecord, TunedPlan } from '../../src/runtime/public';
import { recordOf } from './plan-records';
import { maxRelErr, rand } from './counting';

export type Arr = Float32Array | Int32Array;
export type T = { data: Arr; shape: number[] };
export type Inputs = Record<string, unknown>;
export type Opts = Record<string, unknown>;
export interface Good {
  inputs: Record<string, T>;
  options: Opts;
}
export type Code = DetlossError['code'];
export interface Refusal {
  what: string;
  inputs: unknown;
  options: unknown;
  code: Code;
  argument: string;
  /** The CPU reference accepts it (Float64Array floats). */
  cpuAccepts?: boolean;
  /** A pattern the message must match (besides naming the argument). */
  message?: RegExp;
}

export const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
export const f = (shape: number[], seed: number, lo = -2, hi = 2): T => ({ data: rand(prod(shape), seed, lo, hi), shape });
export const i32 = (shape: number[], v: number[]): T => ({ data: Int32Array.from(v), shape });
/** Three pairs of boxes, each pair overlapping with IoU about 0.6, the pairs apart. */
export function nmsBoxes(): T {
  const data = new Float32Array(24);
  for (let k = 0; k < 6; k++) {
    const x = 20 * Math.floor(k / 2) + (k % 2);
    data.set([x, x, x + 4, x + 4], 4 * k);
  }
  return { data, shape: [6, 4] };
}

export function boxes(n: number, seed: number): T {
  const r = rand(4 * n, seed, 0, 1);
  const data = new Float32Array(4 * n);
  for (let k = 0; k < n; k++) {
    const [x, y, w, h] = [r[4 * k] * 10, r[4 * k + 1] * 10, 1 + r[4 * k + 2] * 4, 1 + r[4 * k + 3] * 4];
    data.set([x, y, x + w, y + h], 4 * k);
  }
  return { data, shape: [n, 4] };
}

/** n rotated boxes (cx, cy, w, h, theta), sides 1 to 5, angles in [-1.5, 1.5]. */
export function rotatedBoxes(n: number, seed: number): T {
  const r = rand(5 * n, seed, 0, 1);
  return { data: Float32Array.from(r, (v, i) => [10 * v, 10 * v, 1 + 4 * v, 1 + 4 * v, 3 * v - 1.5][i % 5]), shape: [n, 5] };
}

/**
 * The head of the assigner's good calls: a 32 x 16 image at strides 8 (4 x 2 cells) and 16 (2 x 1),
 * A = 10 anchors (ultralytics' make_anchors order), C = 3 classes, M = 3 gt rows per image (B = 1).
 */
export const TAL = {
  a: 10,
  c: 3,
  m: 3,
  /** Centres in grid units of their level. */
  anchors: () => Float32Array.of(0.5, 0.5, 1.5, 0.5, 2.5, 0.5, 3.5, 0.5, 0.5, 1.5, 1.5, 1.5, 2.5, 1.5, 3.5, 1.5, 0.5, 0.5, 1.5, 0.5),
  strides: () => Float32Array.of(8, 8, 8, 8, 8, 8, 8, 8, 16, 16),
  /** Centres in pixels (`tal_assign`'s anchors). */
  anchorsPx: () => Float32Array.from(TAL.anchors(), (v, i) => v * TAL.strides()[i >> 1]),
};
/**
 * Two real gts (classes 1 and 2, five anchor centres inside each) and a padding row last (label 0,
 * a box of its own: padding rows are read for background anchors, never selected).
 */
export const talGts = (): Record<'gtLabels' | 'gtBoxes' | 'gtMask', T> => ({
  gtLabels: i32([1, TAL.m], [1, 2, 0]),
  gtBoxes: { data: Float32Array.of(1, 1, 15, 15, 17, 1, 31, 15, 3, 3, 9, 9), shape: [1, TAL.m, 4] },
  gtMask: i32([1, TAL.m], [1, 1, 0]),
});
/** A predicted box about each anchor centre (pixels), half-sizes 3 to 8. */
export function talPredBoxes(seed: number): T {
  const r = rand(4 * TAL.a, seed, 3, 8);
  const c = TAL.anchorsPx();
  const data = new Float32Array(4 * TAL.a);
  for (let a = 0; a < TAL.a; a++) data.set([c[2 * a] - r[4 * a], c[2 * a + 1] - r[4 * a + 1], c[2 * a] + r[4 * a + 2], c[2 * a + 1] + r[4 * a + 3]], 4 * a);
  return { data, shape: [1, TAL.a, 4] };
}

/** A valid call of every op with a GPU kernel, 3 rows (the assigner's: one image of 10 anchors). */
export const GOOD: Record<string, () => Good> = {
  l1: () => ({ inputs: { pred: f([3], 1), target: f([3], 2) }, options: {} }),
  mse: () => ({ inputs: { pred: f([3], 1), target: f([3], 2) }, options: {} }),
  smooth_l1: () => ({ inputs: { pred: f([3], 1), target: f([3], 2) }, options: { beta: 0.5 } }),
  huber: () => ({ inputs: { pred: f([3], 1), target: f([3], 2) }, options: { delta: 0.5 } }),
  balanced_l1: () => ({ inputs: { pred: f([3], 1), target: f([3], 2) }, options: {} }),
  iou_loss: () => ({ inputs: { pred: boxes(3, 1), target: boxes(3, 2) }, options: { variant: 'giou' } }),
  pairwise_iou: () => ({ inputs: { a: boxes(3, 1), b: boxes(2, 2) }, options: { variant: 'diou' } }),
  // KFIoU with its deltas: every input rotated_iou_loss takes, so the tables reach predDelta and targetDelta too.
  rotated_iou_loss: () => ({ inputs: { pred: rotatedBoxes(3, 1), target: rotatedBoxes(3, 2), predDelta: f([3, 2], 3, -0.5, 0.5), targetDelta: f([3, 2], 4, -0.5, 0.5) }, options: { variant: 'kfiou', fun: 'ln' } }),
  pairwise_probiou: () => ({ inputs: { a: rotatedBoxes(3, 1), b: rotatedBoxes(2, 2) }, options: { eps: 1e-6 } }),
  sigmoid_focal: () => ({ inputs: { logits: f([3], 1, -4, 4), targets: { data: Float32Array.of(1, 0, 1), shape: [3] } }, options: {} }),
  quality_focal: () => ({ inputs: { logits: f([3, 4], 1), labels: i32([3], [0, 4, 2]), scores: f([3], 2, 0, 1) }, options: {} }),
  distribution_focal: () => ({ inputs: { logits: f([3, 5], 1), targets: f([3], 2, 0, 3.9) }, options: {} }),
  varifocal: () => ({ inputs: { logits: f([3, 4], 1), targets: f([3, 4], 2, 0, 1) }, options: {} }),
  bce_with_logits: () => ({ inputs: { logits: f([3, 4], 1), targets: f([3, 4], 2, 0, 1), posWeight: f([4], 3, 0.5, 2) }, options: {} }),
  cross_entropy: () => ({ inputs: { logits: f([3, 4], 1), labels: i32([3], [0, 3, -100]), classWeight: f([4], 3, 0.5, 2) }, options: { labelSmoothing: 0.1 } }),
  kl_div: () => ({ inputs: { student: f([3, 4], 1), teacher: f([3, 4], 2) }, options: { temperature: 2 } }),
  dice: () => ({ inputs: { logits: f([3, 4], 1), targets: f([3, 4], 2, 0, 1) }, options: {} }),
  softmax_focal: () => ({ inputs: { logits: f([3, 4], 1), labels: i32([3], [0, 3, -100]), classWeight: f([4], 3, 0.5, 2) }, options: { gamma: 1.5 } }),
  class_balanced_focal: () => ({ inputs: { logits: f([3, 4], 1), labels: i32([3], [0, 4, 2]), samplesPerClass: { data: Float32Array.of(10, 0, 300, 2), shape: [4] } }, options: { beta: 0.99 } }),
  nll: () => ({ inputs: { logProbs: f([3, 4], 1, -5, 0), labels: i32([3], [0, 3, -100]), classWeight: f([4], 3, 0.5, 2) }, options: {} }),
  hinge: () => ({ inputs: { logits: f([3], 1), targets: { data: Float32Array.of(1, -1, 1), shape: [3] } }, options: { margin: 0.5 } }),
  hinge_embedding: () => ({ inputs: { pred: f([3], 1), targets: { data: Float32Array.of(1, -1, -1), shape: [3] } }, options: {} }),
  margin_ranking: () => ({ inputs: { input1: f([3], 1), input2: f([3], 2), targets: { data: Float32Array.of(1, -1, 1), shape: [3] } }, options: { margin: 0.1 } }),
  exponential: () => ({ inputs: { logits: f([3], 1), targets: { data: Float32Array.of(-1, 1, 1), shape: [3] } }, options: {} }),
  ap_loss: () => ({ inputs: { logits: f([3], 1), targets: { data: Float32Array.of(1, 0, -1), shape: [3] } }, options: {} }),
  rank_sort: () => ({ inputs: { logits: f([3], 1), targets: { data: Float32Array.of(0.7, 0, -1), shape: [3] } }, options: { delta: 0.4 } }),
  tal_assign: () => ({ inputs: { scores: f([1, TAL.a, 3], 11, 0.05, 0.95), predBoxes: talPredBoxes(12), anchors: { data: TAL.anchorsPx(), shape: [TAL.a, 2] }, ...talGts() }, options: { topk: 4 } }),
  // Six boxes, overlapping in pairs, so that some are kept and some suppressed.
  nms: () => ({ inputs: { boxes: nmsBoxes(), scores: f([6], 41, 0.05, 0.95) }, options: { iouThreshold: 0.3 } }),
  nms_onnx: () => ({ inputs: { boxes: { data: nmsBoxes().data, shape: [1, 6, 4] }, scores: f([1, 2, 6], 42, 0.05, 0.95) }, options: { maxOutputBoxesPerClass: 3, iouThreshold: 0.3 } }),
  nms_tfjs: () => ({ inputs: { boxes: nmsBoxes(), scores: f([6], 43, 0.05, 0.95) }, options: { maxOutputSize: 4, softNmsSigma: 0.5 } }),
  yolo_detection_loss: () => ({
    inputs: {
      predDist: f([1, TAL.a, 16], 13),
      predScores: f([1, TAL.a, 3], 14, -3, 3),
      anchors: { data: TAL.anchors(), shape: [TAL.a, 2] },
      strides: { data: TAL.strides(), shape: [TAL.a] },
      ...talGts(),
    },
    options: { topk: 4 },
  }),
};
/**
 * Ops that take no reduction at all (`OPS[op].reductions` is `[]`: the assigner and the YOLO loss):
 * any `reduction` given, even 'mean', is refused, and so are a weight and an avgFactor.
 */
export const noReduction = (op: string) => OPS[op].reductions?.length === 0;
/** Ops that reduce themselves (the ranking losses): 'mean' only, no weight, no avgFactor. */
export const selfReduced = (op: string) => !!OPS[op].gpu?.program && !noReduction(op);
/** Ops that refuse a `weight` and an `avgFactor`: those that reduce themselves and those that take no reduction. */
export const refusesWeight = (op: string) => selfReduced(op) || noReduction(op);
/** Ops with named outputs (`result.outputs`): `tal_assign` (no loss, no gradient) and `yolo_detection_loss`. */
export const hasOutputs = (op: string) => !!OPS[op].outputs;
/** Ops with a gradient (a `grad: true` input). */
export const hasGrad = (op: string) => Object.values(OPS[op].inputs).some((s) => s.grad);
export const GPU_OPS = Object.values(OPS)
  .filter((d) => d.gpu)
  .map((d) => d.name);

/** The reduction option of the good call's unreduced output: none given where the op takes none. */
const unreduced = (op: string): { reduction?: 'mean' | 'none' } => (noReduction(op) ? {} : { reduction: selfReduced(op) ? 'mean' : 'none' });
/** The shape of the unreduced output of the good call. */
export const outShape = (op: string) => cpu.run(op, GOOD[op]().inputs, { ...GOOD[op]().options, ...unreduced(op), grad: false }).shape;

/**
 * The good call plus a `weight` and a `gradOutput`: every input an op takes, all valid, all
 * `{ data, shape }`. The ops that refuse a weight get none; those with no gradient (`tal_assign`)
 * no gradOutput either (it is accepted and means nothing there).
 */
export function full(op: string): Good {
  const g = GOOD[op]();
  if (refusesWeight(op)) return { inputs: hasGrad(op) ? { ...g.inputs, gradOutput: f([1], 8, 0.5, 1.5) } : g.inputs, options: g.options };
  const out = outShape(op);
  const reduced = (OPS[op].reductions ?? ['mean']).includes('mean');
  return { inputs: { ...g.inputs, weight: f(out, 7, 0.5, 1.5), gradOutput: reduced ? f([1], 8, 0.5, 1.5) : f(out, 8, 0.5, 1.5) }, options: g.options };
}

export const with_ = (base: Good, name: string, value: unknown): Inputs => ({ ...base.inputs, [name]: value });
export const dtypeOf = (op: string, name: string) => (name === 'weight' || name === 'gradOutput' ? 'f32' : OPS[op].inputs[name].dtype);

// ---------------------------------------------------------------------------------------------
// The refusal tables, built from each op's descriptor.

export function shapeCases(op: string): Refusal[] {
  const base = full(op);
  const cases: Refusal[] = [];
  for (const [name, t] of Object.entries(base.inputs)) {
    const own = name in OPS[op].inputs;
    const sh = t.shape;
    const add = (what: string, value: unknown) => cases.push({ what: `${name}: ${what}`, inputs: with_(base, name, value), options: base.options, code: 'shape_mismatch', argument: name });
    const Ctor = t.data.constructor as new (n: number) => Arr;
    add('one element too many (a plain typed array)', new Ctor(t.data.length + 1));
    add('a shape that disagrees with its data', { data: t.data, shape: [sh[0] + 1, ...sh.slice(1)] });
    add('a negative dim', { data: t.data, shape: sh.length === 1 ? [-sh[0]] : [-sh[0], -sh[1], ...sh.slice(2)] });
    add('a fractional dim', { data: t.data, shape: [sh[0] + 0.5, ...sh.slice(1)] });
    add('a NaN dim', { data: t.data, shape: [NaN, ...sh.slice(1)] });
    add('an Infinity dim', { data: t.data, shape: [Infinity, ...sh.slice(1)] });
    add('dims given as strings', { data: t.data, shape: sh.map(String) });
    add('a huge declared shape [2**31, ...] with small data', { data: t.data, shape: [2 ** 31, ...sh.slice(1)] });
    add('a huge declared shape [1e9, 80] with small data', { data: t.data, shape: [1e9, 80] });
    add('a shape that is a string', { data: t.data, shape: String(t.data.length) });
    add('a shape that is a number', { data: t.data, shape: t.data.length });
    add('a shape that is null', { data: t.data, shape: null });
    if (own) add('rank one too many', { data: t.data, shape: [...sh, 1] });
  }
  return cases;
}

export function dtypeCases(op: string): Refusal[] {
  const base = full(op);
  const cases: Refusal[] = [];
  for (const [name, t] of Object.entries(base.inputs)) {
    const n = t.data.length;
    const isF32 = dtypeOf(op, name) === 'f32';
    const add = (what: string, value: unknown, cpuAccepts = false) =>
      cases.push({ what: `${name}: ${what}`, inputs: with_(base, name, value), options: base.options, code: 'wrong_dtype', argument: name, cpuAccepts });
    if (isF32) {
      add('Int32Array', new Int32Array(n));
      add('{ data: Int32Array, shape }', { data: new Int32Array(n), shape: t.shape });
      add('Float64Array (the CPU reference takes it)', Float64Array.from(t.data), true);
      add('{ data: Float64Array, shape } (the CPU reference takes it)', { data: Float64Array.from(t.data), shape: t.shape }, true);
    } else {
      add('Float32Array', new Float32Array(n));
      add('{ data: Float32Array, shape }', { data: new Float32Array(n), shape: t.shape });
      add('Float64Array', new Float64Array(n));
      add('Uint32Array', new Uint32Array(n));
    }
    add('a plain array', Array.from(t.data));
    add('{ data: plain array, shape }', { data: Array.from(t.data), shape: t.shape });
    add('Uint8Array', new Uint8Array(n));
    add('Uint8Array of the same bytes', new Uint8Array(t.data.buffer.slice(0)));
    add('Int16Array', new Int16Array(n));
    add('BigInt64Array', new BigInt64Array(n));
    add('DataView', new DataView(new ArrayBuffer(4 * n)));
    add('an ArrayBuffer', new ArrayBuffer(4 * n));
    add('a string', 'abc');
    add('a number', 3);
    add('a boolean', true);
    add('an empty object', {});
    add('{ data: null, shape }', { data: null, shape: t.shape });
    add('{ data: a string, shape }', { data: 'abc', shape: [3] });
  }
  return cases;
}

export function nameCases(op: string): Refusal[] {
  const base = full(op);
  const g = GOOD[op]();
  const cases: Refusal[] = [];
  for (const [name, spec] of Object.entries(OPS[op].inputs)) {
    if (spec.optional) continue;
    const inputs = { ...g.inputs } as Inputs;
    delete inputs[name];
    cases.push({ what: `${name} missing`, inputs, options: g.options, code: 'missing_input', argument: name });
    cases.push({ what: `${name} undefined`, inputs: { ...g.inputs, [name]: undefined }, options: g.options, code: 'missing_input', argument: name });
    cases.push({ what: `${name} null`, inputs: { ...g.inputs, [name]: null }, options: g.options, code: 'missing_input', argument: name });
  }
  for (const extra of ['bogus', 'toString', 'constructor', 'hasOwnProperty']) {
    cases.push({ what: `an unknown input "${extra}"`, inputs: with_(base, extra, new Float32Array(3)), options: base.options, code: 'unknown_input', argument: extra });
  }
  for (const [what, inputs] of [
    ['inputs null', null],
    ['inputs a number', 5],
    ['inputs a string', 'pred'],
    ['inputs undefined', undefined],
  ] as [string, unknown][]) {
    cases.push({ what, inputs, options: g.options, code: 'missing_input', argument: 'inputs' });
  }
  for (const [what, options] of [
    ['options null', null],
    ['options a number', 5],
    ['options a string', 'mean'],
    ['options true', true],
  ] as [string, unknown][]) {
    cases.push({ what, inputs: g.inputs, options, code: 'invalid_param', argument: 'options' });
  }
  return cases;
}

export function nanCases(op: string): Refusal[] {
  const base = full(op);
  const cases: Refusal[] = [];
  for (const [name, t] of Object.entries(base.inputs)) {
    if (dtypeOf(op, name) !== 'f32') continue;
    for (const v of [NaN, Infinity, -Infinity]) {
      const data = Float32Array.from(t.data);
      const at = data.length - 1;
      data[at] = v;
      const message = new RegExp(`${name}\\[${at}\\]`);
      cases.push({ what: `${name}[${at}] = ${v} with check: true`, inputs: with_(base, name, { data, shape: t.shape }), options: { ...base.options, check: true }, code: 'invalid_value', argument: name, message });
    }
  }
  return cases;
}

/** Out-of-range values of each op's own params (the generic type errors are built below). */
export const OUT_OF_RANGE: Record<string, [string, unknown][]> = {
  smooth_l1: [['beta', -1], ['beta', -1e-30]],
  huber: [['delta', 0], ['delta', -1]],
  balanced_l1: [['alpha', 0], ['alpha', -0.5], ['gamma', 0], ['gamma', -1], ['beta', 0], ['beta', -1]],
  iou_loss: [
    ['eps', 0], ['eps', -1e-7], ['variant', 'wise'], ['variant', 'alpha_iou'], ['format', 'yxyx'], ['mode', 'cube'], ['ciouAlpha', 'mmdetection'],
    ['power', 0.5], ['innerRatio', 0], ['innerRatio', -1], ['focaler', [0.9, 0.1]], ['focaler', [0.5, 0.5]], ['focaler', [-0.1, 1]], ['focaler', [0, 1.5]],
    ['imageSize', [0, 480]], ['imageSize', [640, -1]], ['scale', -1], ['wiouVersion', 0], ['wiouVersion', 4], ['wiouVersion', 2.5], ['iouMean', 0], ['wiouAlpha', 0], ['wiouDelta', -3],
  ],
  pairwise_iou: [['variant', 'eiou'], ['variant', 'siou'], ['format', 'xyxyx']],
  // ops.md "Rotated boxes", Refused: eps, beta, alpha <= 0, an unknown variant, a fun outside the
  // variant's list, a param the variant does not list (the good call is kfiou: tau, alpha, sqrt,
  // normalize and ciou are the Gaussian variants' and ProbIoU's).
  rotated_iou_loss: [
    ['eps', 0], ['eps', -1e-6], ['beta', 0], ['beta', -1], ['variant', 'riou'], ['variant', 'KLD'], ['fun', 'log1p'], ['fun', 'sqrt'], ['fun', 'cube'],
    ['tau', 1], ['alpha', 2], ['sqrt', false], ['normalize', true], ['ciou', false],
  ],
  pairwise_probiou: [['eps', 0], ['eps', -1e-7]],
  sigmoid_focal: [['gamma', -1]],
  quality_focal: [['beta', -1]],
  distribution_focal: [],
  varifocal: [['gamma', -0.5]],
  bce_with_logits: [],
  cross_entropy: [
    ['labelSmoothing', -0.1],
    ['labelSmoothing', 1.5],
    ['ignoreIndex', 0.5],
    // issue 9 defect 4: integers that do not fit the kernel's int32
    ['ignoreIndex', 2 ** 31],
    ['ignoreIndex', 2 ** 32],
    ['ignoreIndex', 1e300],
    ['ignoreIndex', -(2 ** 31) - 1],
    ['ignoreIndex', -1e300],
  ],
  kl_div: [['temperature', 0], ['temperature', -1], ['classReduction', 'max']],
  dice: [['eps', -1e-3]],
  // ops.md "Refusals (both ops)": topk an integer in [1, A] when M > 0 (A = 10 here), alpha >= 0,
  // beta > 0, eps > 0; the gains any finite number (their non-finite values are WRONG_TYPE's).
  tal_assign: [
    ['topk', 0], ['topk', -1], ['topk', 1.5], ['topk', TAL.a + 1], ['topk', 1000], ['topk', 2 ** 31],
    ['alpha', -0.5], ['alpha', -1e-30], ['beta', 0], ['beta', -1], ['eps', 0], ['eps', -1e-9], ['eps', -0],
  ],
  yolo_detection_loss: [
    ['topk', 0], ['topk', -1], ['topk', 2.5], ['topk', TAL.a + 1], ['topk', 2 ** 31],
    ['alpha', -0.5], ['beta', 0], ['beta', -6],
  ],
  // ops.md, "Refusals and defined values": thresholds in [0, 1], sigma in [0, 1], centerPointBox 0 or 1.
  nms: [['iouThreshold', -0.1], ['iouThreshold', 1.5], ['iouThreshold', -1e-30], ['format', 'yxyx'], ['variant', 'giou']],
  nms_onnx: [['iouThreshold', -0.5], ['iouThreshold', 2], ['centerPointBox', 2], ['centerPointBox', -1], ['centerPointBox', 0.5], ['maxOutputBoxesPerClass', 2.5]],
  nms_tfjs: [['iouThreshold', 1.01], ['softNmsSigma', -0.1], ['softNmsSigma', 1.5], ['maxOutputSize', 0.5]],
};

export const WRONG_TYPE: Record<'number' | 'enum' | 'bool' | 'pair' | 'limit', [string, unknown][]> = {
  limit: [['a fraction', 1.5], ['a string', '10'], ['NaN', NaN], ['Infinity', Infinity], ['-Infinity', -Infinity], ['null', null], ['an object', {}], ['a boolean', true], ['an array', [1]]],
  pair: [['a number', 5], ['a string', '1,2'], ['one number', [1]], ['three numbers', [0.1, 0.2, 0.3]], ['NaN in it', [NaN, 1]], ['a string in it', [0, '1']], ['null', null], ['an object', {}]],
  number: [['a string', '1'], ['NaN', NaN], ['Infinity', Infinity], ['-Infinity', -Infinity], ['an object', {}], ['a boolean', true], ['null', null], ['an array', [1]], ['a BigInt', 1n]],
  enum: [['a number', 5], ['a boolean', true], ['null', null], ['the empty string', ''], ['an object', {}], ['upper case', 'IOU']],
  bool: [['a number', 1], ['0', 0], ['a string', 'true'], ['null', null], ['an object', {}]],
};

export function paramCases(op: string): Refusal[] {
  const g = GOOD[op]();
  const cases: Refusal[] = [];
  const add = (what: string, options: Opts, code: Code, argument: string) => cases.push({ what, inputs: g.inputs, options: { ...g.options, ...options }, code, argument });
  for (const [p, spec] of Object.entries(OPS[op].params)) {
    const infinite = spec.kind === 'number' && spec.infinite;
    for (const [what, v] of WRONG_TYPE[spec.kind]) if (!(infinite && (v === Infinity || v === -Infinity))) add(`${p} ${what}`, { [p]: v }, 'invalid_param', p);
    if ((spec.kind === 'number' || spec.kind === 'limit') && spec.required) add(`${p} missing (it is required)`, { [p]: undefined }, 'invalid_param', p);
  }
  for (const [p, v] of OUT_OF_RANGE[op] ?? []) add(`${p} = ${String(v)}`, { [p]: v }, 'invalid_param', p);
  for (const p of ['bogus', 'toString', 'constructor', 'hasOwnProperty', 'valueOf']) add(`an unknown param "${p}"`, { [p]: 1 }, 'unknown_param', p);
  const other = op === 'kl_div' ? 'beta' : 'temperature';
  add(`a param of another op (${other})`, { [other]: 1 }, 'unknown_param', other);
  for (const [what, v] of [['MEAN', 'MEAN'], ['a number', 5], ['null', null], ['the empty string', ''], ['an object', {}]] as [string, unknown][]) {
    add(`reduction ${what}`, { reduction: v }, 'invalid_param', 'reduction');
  }
  for (const k of ['grad', 'check']) {
    for (const [what, v] of [['a string', 'no'], ['a number', 0], ['null', null]] as [string, unknown][]) add(`${k} ${what}`, { [k]: v }, 'invalid_param', k);
  }
  const avg: [string, unknown][] = [['0', 0], ['-1', -1], ['NaN', NaN], ['Infinity', Infinity], ['a string', '2'], ['null', null], ['true', true], ['1e-310 (its reciprocal overflows)', 1e-310], ['-0', -0]];
  for (const [what, v] of avg) add(`avgFactor ${what}`, { avgFactor: v }, 'invalid_param', 'avgFactor');
  for (const red of ['sum', 'none'] as const) {
    if ((OPS[op].reductions ?? ['none', 'mean', 'sum']).includes(red)) add(`avgFactor with '${red}'`, { reduction: red, avgFactor: 2 }, 'invalid_param', 'avgFactor');
  }
  for (const red of ['none', 'mean', 'sum']) {
    if (!(OPS[op].reductions ?? [red]).includes(red as never)) add(`reduction '${red}' (not supported)`, { reduction: red }, 'invalid_param', 'reduction');
  }
  if (selfReduced(op)) {
    // The loss is already a mean over the positives: nothing to weigh or divide.
    add('avgFactor (the op reduces itself)', { avgFactor: 2 }, 'invalid_param', 'avgFactor');
    cases.push({ what: 'weight (the op reduces itself)', inputs: { ...g.inputs, weight: f([3], 7, 0.5, 1.5) }, options: g.options, code: 'invalid_param', argument: 'weight' });
  }
  if (noReduction(op)) {
    // ops.md: neither op takes reduction, weight or avgFactor, each refused by name whatever its
    // value or shape (a weight of the loss's shape, of the anchors', of the gt rows', or empty).
    for (const v of [2, 1, 0.5]) add(`avgFactor ${v} (the op takes none)`, { avgFactor: v }, 'invalid_param', 'avgFactor');
    add("avgFactor with reduction 'mean' (neither is taken)", { reduction: 'mean', avgFactor: 2 }, 'invalid_param', 'reduction');
    for (const shape of [[1], [3], [1, TAL.a], [1, TAL.m], [0]]) {
      cases.push({ what: `weight of shape [${shape}] (the op takes none)`, inputs: { ...g.inputs, weight: f(shape, 7, 0.5, 1.5) }, options: g.options, code: 'invalid_param', argument: 'weight' });
    }
  }
  return cases;
}

/** Bad data the op's own validation must catch. */
export const BAD_DATA: Record<string, [string, (g: Good) => Inputs, Opts, string, RegExp][]> = {
  cross_entropy: [
    ['label = c', (g) => ({ ...g.inputs, labels: i32([3], [0, 4, 1]) }), {}, 'labels', /labels\[1\]/],
    ['label -1 (not ignoreIndex)', (g) => ({ ...g.inputs, labels: i32([3], [0, -1, 1]) }), {}, 'labels', /labels\[1\]/],
    ['label 2**31-1', (g) => ({ ...g.inputs, labels: i32([3], [0, 1, 2 ** 31 - 1]) }), {}, 'labels', /labels\[2\]/],
    ['label -2**31', (g) => ({ ...g.inputs, labels: i32([3], [-(2 ** 31), 1, 1]) }), {}, 'labels', /labels\[0\]/],
    ['label -100 after ignoreIndex changed', (g) => g.inputs, { ignoreIndex: -1 }, 'labels', /labels\[2\]/],
  ],
  distribution_focal: [
    ['target = k - 1', (g) => ({ ...g.inputs, targets: { data: Float32Array.of(0, 4, 1), shape: [3] } }), {}, 'targets', /targets\[1\]/],
    ['target -0.5', (g) => ({ ...g.inputs, targets: { data: Float32Array.of(0, 1, -0.5), shape: [3] } }), {}, 'targets', /targets\[2\]/],
    ['target NaN without check', (g) => ({ ...g.inputs, targets: { data: Float32Array.of(NaN, 1, 1), shape: [3] } }), {}, 'targets', /targets\[0\]/],
  ],
};
// ops.md "Rotated boxes", Refused: predDelta or targetDelta with another variant, or one without the other.
BAD_DATA.rotated_iou_loss = [
  ['predDelta and targetDelta with variant kld', (g) => g.inputs, { variant: 'kld', fun: undefined }, 'predDelta', /only to variant 'kfiou'/],
  ['predDelta alone', (g) => ({ ...g.inputs, targetDelta: undefined }), {}, 'targetDelta', /needs targetDelta/],
  ['targetDelta alone', (g) => ({ ...g.inputs, predDelta: undefined }), {}, 'predDelta', /needs predDelta/],
  ['targetDelta alone with variant probiou', (g) => ({ ...g.inputs, predDelta: undefined }), { variant: 'probiou', fun: undefined }, 'targetDelta', /only to variant 'kfiou'/],
];
/** The assigner's value rules (ops.md "Refusals (both ops)"): always checked, check: true or not. */
const TAL_DATA: [string, (g: Good) => Inputs, Opts, string, RegExp][] = [
  ['gtLabels = C', (g) => ({ ...g.inputs, gtLabels: i32([1, TAL.m], [1, TAL.c, 0]) }), {}, 'gtLabels', /gtLabels\[1\]/],
  ['gtLabels -1', (g) => ({ ...g.inputs, gtLabels: i32([1, TAL.m], [-1, 2, 0]) }), {}, 'gtLabels', /gtLabels\[0\]/],
  ['gtLabels out of range in a padding row', (g) => ({ ...g.inputs, gtLabels: i32([1, TAL.m], [1, 2, 7]) }), {}, 'gtLabels', /gtLabels\[2\]/],
  ['gtLabels -100 in a padding row (no ignore index here)', (g) => ({ ...g.inputs, gtLabels: i32([1, TAL.m], [1, 2, -100]) }), {}, 'gtLabels', /gtLabels\[2\]/],
  ['gtLabels 2**31-1', (g) => ({ ...g.inputs, gtLabels: i32([1, TAL.m], [1, 2 ** 31 - 1, 0]) }), {}, 'gtLabels', /gtLabels\[1\]/],
  ['gtMask 2', (g) => ({ ...g.inputs, gtMask: i32([1, TAL.m], [1, 2, 0]) }), {}, 'gtMask', /gtMask\[1\]/],
  ['gtMask -1', (g) => ({ ...g.inputs, gtMask: i32([1, TAL.m], [1, 1, -1]) }), {}, 'gtMask', /gtMask\[2\]/],
];
const STRIDES_DATA: [string, (g: Good) => Inputs, Opts, string, RegExp][] = [0, -8, NaN, Infinity, -Infinity, -0].map((v) => [
  `strides[9] = ${v} without check`,
  (g: Good) => ({ ...g.inputs, strides: { data: Float32Array.from(TAL.strides(), (s, i) => (i === 9 ? v : s)), shape: [TAL.a] } }),
  {},
  'strides',
  /strides\[9\]/,
]);
BAD_DATA.tal_assign = [
  ...TAL_DATA,
  // scores are probabilities: outside [0, 1] is refused only when the caller asks for checking
  ...[1.5, -0.25, 1 + 2 ** -23].map((v): [string, (g: Good) => Inputs, Opts, string, RegExp] => [
    `scores[29] = ${v} with check: true`,
    (g) => ({ ...g.inputs, scores: { data: Float32Array.from(g.inputs.scores.data, (s, i) => (i === 29 ? v : s)), shape: g.inputs.scores.shape } }),
    { check: true },
    'scores',
    /scores\[29\]/,
  ]),
];
BAD_DATA.yolo_detection_loss = [...TAL_DATA, ...STRIDES_DATA];

export function dataCases(op: string): Refusal[] {
  const g = GOOD[op]();
  return (BAD_DATA[op] ?? []).map(([what, inputs, options, argument, message]) => ({ what, inputs: inputs(g), options: { ...g.options, ...options }, code: 'invalid_value', argument, message }));
}

export const refusals = (op: string): Refusal[] => [...shapeCases(op), ...dtypeCases(op), ...nameCases(op), ...nanCases(op), ...paramCases(op), ...dataCases(op)];

/**
 * Where a result's named outputs differ from the reference's (`cpu.run`'s): a missing or extra
 * output, another length or shape, an integer output (labels, foreground, gtIndex) not equal
 * element by element, a float one (boxes, targetScores, components) off by more than `tol`
 * relative to 1 + |want|. Undefined when they agree (and when neither has outputs).
 */
export function outputsMismatch(
  got: { outputs?: Record<string, ArrayLike<number>>; outputShapes?: Record<string, number[]> },
  want: { outputs?: Record<string, ArrayLike<number>>; outputShapes?: Record<string, number[]> },
  tol = 1e-5,
): string | undefined {
  const names = Object.keys(want.outputs ?? {}).sort();
  const have = Object.keys(got.outputs ?? {}).sort();
  if (names.join() !== have.join()) return `outputs [${have}], want [${names}]`;
  for (const k of names) {
    const g = got.outputs![k];
    const w = want.outputs![k];
    if (want.outputShapes && got.outputShapes && JSON.stringify(got.outputShapes[k]) !== JSON.stringify(want.outputShapes[k])) return `outputs.${k}: shape [${got.outputShapes[k]}], want [${want.outputShapes[k]}]`;
    if (g.length !== w.length) return `outputs.${k}: length ${g.length}, want ${w.length}`;
    if (w instanceof Int32Array) {
      if (!(g instanceof Int32Array)) return `outputs.${k}: ${g.constructor.name}, want Int32Array`;
      const i = w.findIndex((v, j) => g[j] !== v);
      if (i >= 0) return `outputs.${k}[${i}]: ${g[i]}, want ${w[i]}`;
    } else if (maxRelErr(g, w) > tol) return `outputs.${k}: off by ${maxRelErr(g, w)} relative (${Array.from(g).slice(0, 8)} vs ${Array.from(w).slice(0, 8)})`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Tuned launch plans: malformed plan records, a bad plan option, bad tune() options. Each surface
// that takes them (createDetloss, dl.usePlans, dl.tune, detloss/tfjs's usePlans and tune,
// detloss/ort's detlossFor) refuses them with the same code and argument.

/** What a plan record keeps of an adapter. */
export type AdapterKey = PlanRecord['adapter'];

/** A sound record for `adapter` and this version: one plan, for smooth_l1's family at 1e3 (the tables' calls are smaller). */
export function goodPlanRecord(adapter: AdapterKey): PlanRecord {
  const plan: TunedPlan = { maxThreads: 1024, workgroupSize: 128, vectorWidth: 4, reduceLanes: 64, reducePer: 4, rows: 'thread' };
  return recordOf(adapter, [{ family: 'regression', size: '1e3', plan, ms: 0.5, defaultMs: 0.6, op: 'smooth_l1', candidates: [{ plan, ms: 0.5 }] }]);
}

export interface PlansRefusal {
  what: string;
  /** The `plans` value given (a record, an array of records, or not one). */
  plans: unknown;
  code: Code;
  argument: string;
}

/** Malformed `plans` values built from a good record, each with the field path its refusal names. */
export function planRecordRefusals(good: PlanRecord): PlansRefusal[] {
  const withPlan = (fields: Record<string, unknown>) => ({ ...good, plans: [{ ...good.plans[0], plan: { ...good.plans[0].plan, ...fields } }] });
  const withChoice = (fields: Record<string, unknown>) => ({ ...good, plans: [{ ...good.plans[0], ...fields }] });
  const { description: _d, ...noDescription } = good.adapter;
  const P = 'plans.plans[0]';
  return [
    { what: 'not a record (a string)', plans: 'detloss-plans', code: 'invalid_param', argument: 'plans' },
    { what: 'null', plans: null, code: 'invalid_param', argument: 'plans' },
    { what: "the wrong format ('plans')", plans: { ...good, format: 'plans' }, code: 'invalid_param', argument: 'plans.format' },
    { what: 'no format', plans: { ...good, format: undefined }, code: 'invalid_param', argument: 'plans.format' },
    { what: 'a version that is not a string', plans: { ...good, detloss: 1 }, code: 'invalid_param', argument: 'plans.detloss' },
    { what: 'no adapter', plans: { ...good, adapter: undefined }, code: 'invalid_param', argument: 'plans.adapter' },
    { what: 'an adapter without its description', plans: { ...good, adapter: noDescription }, code: 'invalid_param', argument: 'plans.adapter.description' },
    { what: 'an adapter vendor that is a number', plans: { ...good, adapter: { ...good.adapter, vendor: 4318 } }, code: 'invalid_param', argument: 'plans.adapter.vendor' },
    { what: "timer 'cpu'", plans: { ...good, timer: 'cpu' }, code: 'invalid_param', argument: 'plans.timer' },
    { what: 'plans not an array', plans: { ...good, plans: good.plans[0] }, code: 'invalid_param', argument: 'plans.plans' },
    { what: 'workgroupSize 48 (not a power of two)', plans: withPlan({ workgroupSize: 48 }), code: 'invalid_param', argument: `${P}.plan.workgroupSize` },
    { what: 'workgroupSize 512 (above 256)', plans: withPlan({ workgroupSize: 512 }), code: 'invalid_param', argument: `${P}.plan.workgroupSize` },
    { what: 'workgroupSize 8 (below 16)', plans: withPlan({ workgroupSize: 8 }), code: 'invalid_param', argument: `${P}.plan.workgroupSize` },
    { what: 'vectorWidth 2', plans: withPlan({ vectorWidth: 2 }), code: 'invalid_param', argument: `${P}.plan.vectorWidth` },
    { what: "rows 'warp'", plans: withPlan({ rows: 'warp' }), code: 'invalid_param', argument: `${P}.plan.rows` },
    { what: 'reduceLanes 48', plans: withPlan({ reduceLanes: 48 }), code: 'invalid_param', argument: `${P}.plan.reduceLanes` },
    { what: 'reducePer 4096 (above 2048)', plans: withPlan({ reducePer: 4096 }), code: 'invalid_param', argument: `${P}.plan.reducePer` },
    { what: 'maxThreads 0', plans: withPlan({ maxThreads: 0 }), code: 'invalid_param', argument: `${P}.plan.maxThreads` },
    { what: 'maxThreads NaN', plans: withPlan({ maxThreads: NaN }), code: 'invalid_param', argument: `${P}.plan.maxThreads` },
    { what: 'a plan field missing (rows)', plans: withPlan({ rows: undefined }), code: 'invalid_param', argument: `${P}.plan.rows` },
    { what: 'an unknown plan field', plans: withPlan({ rowThreshold: 0 }), code: 'unknown_param', argument: `${P}.plan.rowThreshold` },
    { what: 'the same family and size twice', plans: { ...good, plans: [good.plans[0], good.plans[0]] }, code: 'invalid_param', argument: 'plans.plans[1]' },
    { what: 'ms negative', plans: withChoice({ ms: -1 }), code: 'invalid_param', argument: `${P}.ms` },
    { what: 'defaultMs Infinity', plans: withChoice({ defaultMs: Infinity }), code: 'invalid_param', argument: `${P}.defaultMs` },
    { what: "a size class that is none ('big')", plans: withChoice({ size: 'big' }), code: 'invalid_param', argument: `${P}.size` },
    { what: 'an empty family', plans: withChoice({ family: '' }), code: 'invalid_param', argument: `${P}.family` },
    { what: 'a candidate with a bad plan', plans: withChoice({ candidates: [{ plan: { ...good.plans[0].plan, vectorWidth: 8 }, ms: 1 }] }), code: 'invalid_param', argument: `${P}.candidates[0].plan.vectorWidth` },
    { what: 'a bad record after a good one, in an array', plans: [good, withPlan({ workgroupSize: 48 })], code: 'invalid_param', argument: 'plans[1].plans[0].plan.workgroupSize' },
  ];
}

/** A bad `plan` option of createDetloss (and of detloss/ort's detlossFor), with the field its refusal names. */
export const PLAN_OPTION_REFUSALS: readonly { what: string; plan: unknown; code: Code; argument: string }[] = [
  { what: 'workgroupSize 48', plan: { workgroupSize: 48 }, code: 'invalid_param', argument: 'plan.workgroupSize' },
  { what: 'workgroupSize 300', plan: { workgroupSize: 300 }, code: 'invalid_param', argument: 'plan.workgroupSize' },
  { what: 'vectorWidth 2', plan: { vectorWidth: 2 }, code: 'invalid_param', argument: 'plan.vectorWidth' },
  { what: "rows (a tuned plan's field, not the plan option's)", plan: { rows: 'thread' }, code: 'unknown_param', argument: 'plan.rows' },
];

export interface TuneRefusal {
  what: string;
  options: unknown;
  code: Code;
  argument: string;
}

/** Bad options of `tune()`, each refused before any op is tuned. */
export const TUNE_REFUSALS: readonly TuneRefusal[] = [
  { what: 'options a number', options: 5, code: 'invalid_param', argument: 'options' },
  { what: 'an unknown option', options: { ops: ['l1'], budget: 100 }, code: 'unknown_param', argument: 'budget' },
  { what: 'budgetMs 0', options: { ops: ['l1'], budgetMs: 0 }, code: 'invalid_param', argument: 'budgetMs' },
  { what: 'budgetMs NaN', options: { ops: ['l1'], budgetMs: NaN }, code: 'invalid_param', argument: 'budgetMs' },
  { what: 'budgetMs -5', options: { ops: ['l1'], budgetMs: -5 }, code: 'invalid_param', argument: 'budgetMs' },
  { what: 'reps 0', options: { ops: ['l1'], reps: 0 }, code: 'invalid_param', argument: 'reps' },
  { what: 'reps 2.5', options: { ops: ['l1'], reps: 2.5 }, code: 'invalid_param', argument: 'reps' },
  { what: 'sizes [0]', options: { ops: ['l1'], sizes: [0] }, code: 'invalid_param', argument: 'sizes[0]' },
  { what: "sizes ['1e6'] (a string)", options: { ops: ['l1'], sizes: ['1e6'] }, code: 'invalid_param', argument: 'sizes[0]' },
  { what: 'sizes [1000, 1.5]', options: { ops: ['l1'], sizes: [1000, 1.5] }, code: 'invalid_param', argument: 'sizes[1]' },
  { what: 'sizes []', options: { ops: ['l1'], sizes: [] }, code: 'invalid_param', argument: 'sizes' },
  { what: 'ops []', options: { ops: [] }, code: 'invalid_param', argument: 'ops' },
  { what: 'ops a string', options: { ops: 'l1' }, code: 'invalid_param', argument: 'ops' },
  { what: "ops [{ op: 'l1', foo: 1 }]", options: { ops: [{ op: 'l1', foo: 1 }] }, code: 'unknown_param', argument: 'ops[0].foo' },
  { what: 'ops [{ options: {} }] (no op)', options: { ops: [{ options: {} }] }, code: 'invalid_param', argument: 'ops[0]' },
  { what: "dims { c: 0 }", options: { ops: [{ op: 'cross_entropy', dims: { c: 0 } }] }, code: 'invalid_param', argument: 'ops[0].dims.c' },
  { what: "a program op ('ap_loss')", options: { ops: ['ap_loss'] }, code: 'invalid_param', argument: 'ops[0]' },
  { what: "a program op after a fused one ('nms')", options: { ops: ['l1', 'nms'] }, code: 'invalid_param', argument: 'ops[1]' },
  { what: 'an unknown op', options: { ops: ['smooth_l2'] }, code: 'unknown_op', argument: 'ops[0]' },
  { what: 'an unknown op after a known one', options: { ops: ['smooth_l1', 'l3'] }, code: 'unknown_op', argument: 'ops[1]' },
  { what: "a bad param of the second op (cross_entropy's labelSmoothing 2)", options: { ops: ['smooth_l1', { op: 'cross_entropy', options: { labelSmoothing: 2 } }], sizes: [1000] }, code: 'invalid_param', argument: 'labelSmoothing' },
  { what: 'candidates.workgroupSize [48]', options: { ops: ['l1'], candidates: { workgroupSize: [48] } }, code: 'invalid_param', argument: 'candidates.workgroupSize' },
  { what: 'candidates.workgroupSize []', options: { ops: ['l1'], candidates: { workgroupSize: [] } }, code: 'invalid_param', argument: 'candidates.workgroupSize' },
  { what: 'candidates.vectorWidth [1, 2]', options: { ops: ['l1'], candidates: { vectorWidth: [1, 2] } }, code: 'invalid_param', argument: 'candidates.vectorWidth' },
  { what: "candidates.rows ['warp']", options: { ops: ['l1'], candidates: { rows: ['warp'] } }, code: 'invalid_param', argument: 'candidates.rows' },
  { what: 'candidates.bogus', options: { ops: ['l1'], candidates: { bogus: [1] } }, code: 'unknown_param', argument: 'candidates.bogus' },
  { what: "search 'random'", options: { ops: ['l1'], search: 'random' }, code: 'invalid_param', argument: 'search' },
  { what: 'onProgress not a function', options: { ops: ['l1'], onProgress: 'log' }, code: 'invalid_param', argument: 'onProgress' },
];
