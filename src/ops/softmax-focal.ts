import cbfWgsl from '../../shaders/class-balanced-focal.wgsl?raw';
import commonWgsl from '../../shaders/common.wgsl?raw';
import denominatorWgsl from '../../shaders/denominator.wgsl?raw';
import fusedHeaderWgsl from '../../shaders/fused-header.wgsl?raw';
import fusedWgsl from '../../shaders/fused.wgsl?raw';
import sflWgsl from '../../shaders/softmax-focal.wgsl?raw';
import { crossEntropyDenominator } from '../cpu/logits';
import { classLabelsOrIgnored } from './logits';
import { rowwise } from './logits-gpu';
import { classBalancedFocalCpu, classBalancedWeights64, softmaxFocalCpu } from '../cpu/softmax-focal';
import { defineOp, fail, num, type GpuKernel, type OpDescriptor } from './types';

const pred = (...shape: (string | number)[]) => ({ dtype: 'f32' as const, shape, grad: true });

/** Refuses a beta outside [0, 1) (the `num` spec bounds it below only). */
function betaInRange(op: string, beta: unknown) {
  if (typeof beta !== 'number' || !(beta >= 0 && beta < 1)) fail('invalid_param', `${op}: beta must be in [0, 1), got ${String(beta)}`, 'beta');
}

/** Refuses a negative (or non-finite) sample count, naming the first. */
function countsValid(op: string, counts: ArrayLike<number> | undefined) {
  if (!counts) return;
  for (let j = 0; j < counts.length; j++) {
    if (!(counts[j] >= 0 && Number.isFinite(counts[j]))) fail('invalid_value', `${op}: samplesPerClass[${j}] = ${counts[j]} is not a count >= 0`, 'samplesPerClass');
  }
}

/**
 * The class-balanced weights of Cui et al. 2019 for `samplesPerClass` (counts >= 0):
 * `(1 - beta) / (1 - beta^n_j)`, 0 for a class with no samples, scaled to sum to the number of
 * classes; the weights `class_balanced_focal` applies. Pass them as `classWeight` to
 * `cross_entropy` or `softmax_focal`, or as `weight` to `sigmoid_focal`.
 * @example const classWeight = classBalancedWeights([120, 4000, 7], 0.9999);
 */
export function classBalancedWeights(samplesPerClass: ArrayLike<number>, beta = 0.9999): Float32Array {
  if (samplesPerClass === null || typeof samplesPerClass !== 'object' || typeof samplesPerClass.length !== 'number') {
    fail('wrong_dtype', 'classBalancedWeights: samplesPerClass must be an array of counts', 'samplesPerClass');
  }
  betaInRange('classBalancedWeights', beta);
  countsValid('classBalancedWeights', samplesPerClass);
  return Float32Array.from(classBalancedWeights64(samplesPerClass, beta));
}

/** `softmax_focal`: a row per sample, a workgroup or subgroup per row when rows are long (as cross_entropy). */
const softmaxFocalKernel: GpuKernel = rowwise('sfl', [sflWgsl, denominatorWgsl].join('\n'), 'c', {
  denominator: 'main_denominator',
  uniforms: (p) => ({ ignore_index: p.ignoreIndex as number, gamma: p.gamma as number }),
});

/** `softmax_focal`: multi-class focal loss (Lin et al. 2017); `'mean'` as cross_entropy. @example await dl.run('softmax_focal', { logits, labels }, { gamma: 2 }) */
export const softmaxFocalOp = defineOp({
  name: 'softmax_focal',
  family: 'softmax-focal',
  inputs: { logits: pred('n', 'c'), labels: { dtype: 'i32', shape: ['n'] }, classWeight: { dtype: 'f32', shape: ['c'], optional: true } },
  params: { gamma: num(2.0, { min: 0 }), ignoreIndex: num(-100, { integer: true }) },
  rows: 'n',
  output: ['n'],
  validate: classLabelsOrIgnored('softmax_focal'),
  meanDenominator: crossEntropyDenominator,
  cpu: softmaxFocalCpu,
  gpu: softmaxFocalKernel,
});

/** `class_balanced_focal`: Cui et al. 2019, sigmoid focal form, weights from `samplesPerClass`. @example await dl.run('class_balanced_focal', { logits, labels, samplesPerClass }, { beta: 0.9999 }) */
export const classBalancedFocalOp = defineOp({
  name: 'class_balanced_focal',
  family: 'softmax-focal',
  inputs: { logits: pred('n', 'c'), labels: { dtype: 'i32', shape: ['n'] }, samplesPerClass: { dtype: 'f32', shape: ['c'] } },
  params: { beta: num(0.9999, { min: 0 }), gamma: num(2.0, { min: 0 }) },
  rows: 'n',
  output: ['n', 'c'],
  validate(inputs, p) {
    betaInRange('class_balanced_focal', p.beta);
    countsValid('class_balanced_focal', inputs.samplesPerClass);
  },
  cpu: classBalancedFocalCpu,
  gpu: {
    shader: [commonWgsl, fusedHeaderWgsl, fusedWgsl, cbfWgsl].join('\n'),
    shaderId: 'cbf',
    entry: 'main_cb',
    uniforms: (p) => {
      const beta = p.beta as number;
      // log(beta) in float64, so the kernel's beta^n = exp(n log beta) keeps float32 precision.
      return { gamma: p.gamma as number, log_beta: beta > 0 ? Math.log(beta) : 0, beta_zero: beta > 0 ? 0 : 1 };
    },
  },
});

/** softmax_focal and class_balanced_focal (ops.md, "More classification and ranking losses"). */
export const SOFTMAX_FOCAL_OPS: OpDescriptor[] = [softmaxFocalOp, classBalancedFocalOp];
