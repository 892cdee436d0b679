import {
  bceWithLogitsCpu,
  crossEntropyCpu,
  crossEntropyDenominator,
  diceCpu,
  distributionFocalCpu,
  klDivCpu,
  qualityFocalCpu,
  sigmoidFocalCpu,
  varifocalCpu,
} from '../cpu/logits';
import { defineOp, fail, flag, num, oneOf, type OpDescriptor } from './types';
import { LOGIT_KERNELS } from './logits-gpu';

const f32 = (...shape: (string | number)[]) => ({ dtype: 'f32' as const, shape });
const pred = (...shape: (string | number)[]) => ({ dtype: 'f32' as const, shape, grad: true });

/** First index where `bad` holds, or -1. */
function firstBad(a: ArrayLike<number> | undefined, bad: (v: number) => boolean): number {
  if (!a) return -1;
  for (let i = 0; i < a.length; i++) if (bad(a[i])) return i;
  return -1;
}

/**
 * Refuses a label that is neither a class in 0..c-1 nor `ignoreIndex`, naming the first:
 * cross_entropy's rule, which softmax_focal and nll share.
 */
export const classLabelsOrIgnored =
  (op: string): NonNullable<OpDescriptor['validate']> =>
  (inputs, p, dims) => {
    const i = firstBad(inputs.labels, (v) => v !== p.ignoreIndex && !(v >= 0 && v < dims.c));
    if (i >= 0) fail('invalid_value', `${op}: labels[${i}] = ${inputs.labels![i]} is not a class in 0..${dims.c - 1} nor ignoreIndex (${p.ignoreIndex})`, 'labels');
  };

/** Refuses a target outside [0, 1] (ops.md), naming the first; NaN is left to `check`. */
function targetsInUnit(op: string, targets: ArrayLike<number> | undefined) {
  const i = firstBad(targets, (v) => v < 0 || v > 1);
  if (i >= 0) fail('invalid_value', `${op}: targets[${i}] = ${targets![i]} is outside [0, 1]`, 'targets');
}

/** `sigmoid_focal`: torchvision.ops.sigmoid_focal_loss. @example await dl.run('sigmoid_focal', { logits, targets }, { alpha: 0.25, gamma: 2 }) */
export const sigmoidFocalOp = defineOp({
  name: 'sigmoid_focal',
  family: 'logits',
  inputs: { logits: pred('n'), targets: f32('n') },
  params: { alpha: num(0.25), gamma: num(2.0, { min: 0 }) },
  rows: 'n',
  output: ['n'],
  validate: (inputs) => targetsInUnit('sigmoid_focal', inputs.targets),
  cpu: sigmoidFocalCpu,
  gpu: LOGIT_KERNELS.sigmoid_focal,
});

/** `quality_focal`: mmdetection QFL; labels outside 0..c-1 are background. */
export const qualityFocalOp = defineOp({
  name: 'quality_focal',
  family: 'logits',
  inputs: { logits: pred('n', 'c'), labels: { dtype: 'i32', shape: ['n'] }, scores: f32('n') },
  params: { beta: num(2.0, { min: 0 }) },
  rows: 'n',
  output: ['n'],
  cpu: qualityFocalCpu,
  gpu: LOGIT_KERNELS.quality_focal,
});

/** `distribution_focal`: mmdetection DFL over k bins; targets in [0, k-1). */
export const distributionFocalOp = defineOp({
  name: 'distribution_focal',
  family: 'logits',
  inputs: { logits: pred('n', 'k'), targets: f32('n') },
  params: {},
  rows: 'n',
  output: ['n'],
  validate(inputs, _p, dims) {
    const i = firstBad(inputs.targets, (v) => !(v >= 0 && v < dims.k - 1));
    if (i >= 0) fail('invalid_value', `distribution_focal: targets[${i}] = ${inputs.targets![i]} is outside [0, k-1) = [0, ${dims.k - 1})`, 'targets');
  },
  cpu: distributionFocalCpu,
  gpu: LOGIT_KERNELS.distribution_focal,
});

/** `varifocal`: mmdetection varifocal_loss. */
export const varifocalOp = defineOp({
  name: 'varifocal',
  family: 'logits',
  inputs: { logits: pred('n', 'c'), targets: f32('n', 'c') },
  params: { alpha: num(0.75), gamma: num(2.0, { min: 0 }), iouWeighted: flag(true) },
  rows: 'n',
  output: ['n', 'c'],
  validate: (inputs) => targetsInUnit('varifocal', inputs.targets),
  cpu: varifocalCpu,
  gpu: LOGIT_KERNELS.varifocal,
});

/** `bce_with_logits`: F.binary_cross_entropy_with_logits, optional `posWeight` [c]. */
export const bceWithLogitsOp = defineOp({
  name: 'bce_with_logits',
  family: 'logits',
  inputs: { logits: pred('n', 'c'), targets: f32('n', 'c'), posWeight: { ...f32('c'), optional: true } },
  params: {},
  rows: 'n',
  output: ['n', 'c'],
  cpu: bceWithLogitsCpu,
  gpu: LOGIT_KERNELS.bce_with_logits,
});

/** `cross_entropy`: F.cross_entropy with `classWeight`, `ignoreIndex`, `labelSmoothing`. */
export const crossEntropyOp = defineOp({
  name: 'cross_entropy',
  family: 'logits',
  inputs: { logits: pred('n', 'c'), labels: { dtype: 'i32', shape: ['n'] }, classWeight: { ...f32('c'), optional: true } },
  params: { ignoreIndex: num(-100, { integer: true }), labelSmoothing: num(0, { min: 0, max: 1 }) },
  rows: 'n',
  output: ['n'],
  validate: classLabelsOrIgnored('cross_entropy'),
  meanDenominator: crossEntropyDenominator,
  cpu: crossEntropyCpu,
  gpu: LOGIT_KERNELS.cross_entropy,
});

/** `kl_div`: knowledge distillation from teacher logits at `temperature`; gradient for the student. */
export const klDivOp = defineOp({
  name: 'kl_div',
  family: 'logits',
  inputs: { student: pred('n', 'c'), teacher: f32('n', 'c') },
  params: { temperature: num(1.0, { min: 0, minExclusive: true }), classReduction: oneOf(['sum', 'mean'], 'sum') },
  rows: 'n',
  output: ['n'],
  cpu: klDivCpu,
  gpu: LOGIT_KERNELS.kl_div,
});

/** `dice`: mmdetection dice_loss on sigmoid(logits), per sample. */
export const diceOp = defineOp({
  name: 'dice',
  family: 'logits',
  inputs: { logits: pred('n', 'p'), targets: f32('n', 'p') },
  params: { eps: num(1e-3, { min: 0 }), naive: flag(false) },
  rows: 'n',
  output: ['n'],
  cpu: diceCpu,
  gpu: LOGIT_KERNELS.dice,
});

/** The focal family and the classification losses. */
export const LOGIT_OPS: OpDescriptor[] = [
  sigmoidFocalOp,
  qualityFocalOp,
  distributionFocalOp,
  varifocalOp,
  bceWithLogitsOp,
  crossEntropyOp,
  klDivOp,
  diceOp,
];
