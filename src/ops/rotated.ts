import commonWgsl from '../../shaders/common.wgsl?raw';
import fusedHeaderWgsl from '../../shaders/fused-header.wgsl?raw';
import fusedWgsl from '../../shaders/fused.wgsl?raw';
import rotatedCommonWgsl from '../../shaders/rotated-common.wgsl?raw';
import rotatedWgsl from '../../shaders/rotated.wgsl?raw';
import rotatedDeltasWgsl from '../../shaders/rotated-deltas.wgsl?raw';
import rotatedNoDeltasWgsl from '../../shaders/rotated-no-deltas.wgsl?raw';
import rotatedPairwiseWgsl from '../../shaders/rotated-pairwise.wgsl?raw';
import { GAUSSIAN_FUNS, KFIOU_FUNS, ROTATED_FUNS, ROTATED_VARIANTS, pairwiseProbiouCpu, rotatedConfig, rotatedIouLossCpu } from '../cpu/rotated';
import { defineOp, fail, flag, num, oneOf, type OpDescriptor } from './types';

const box5 = { dtype: 'f32', shape: ['n', 5] } as const;
const delta = { dtype: 'f32', shape: ['n', 2], optional: true } as const;

const GAUSSIAN = ['gwd', 'kld', 'jd', 'kld_symmax', 'kld_symmin'];
const KL = ['kld', 'jd', 'kld_symmax', 'kld_symmin'];

/** The params that apply to some variants only (ops.md, "Rotated boxes"). */
const VARIANT_PARAMS: [string, string[]][] = [
  ['eps', ['probiou', 'kfiou']],
  ['ciou', ['probiou']],
  ['fun', [...GAUSSIAN, 'kfiou']],
  ['tau', GAUSSIAN],
  ['alpha', GAUSSIAN],
  ['normalize', ['gwd']],
  ['sqrt', KL],
  ['beta', ['kfiou']],
];

/**
 * Losses of rotated boxes `(cx, cy, w, h, theta)` as 2-D Gaussians (ops.md, "Rotated boxes"):
 * ultralytics' ProbIoU, mmrotate's GWD, KLD and its symmetric forms, and KFIoU; output [n],
 * gradient for all five components of `pred` (and for `predDelta`, KFIoU with deltas).
 *
 * @example
 * const r = cpu.run('rotated_iou_loss', { pred, target }, { variant: 'kld', tau: 1 });
 * r.loss[0]; r.grad.pred; // [n * 5]
 */
export const rotatedIouLossOp = defineOp({
  name: 'rotated_iou_loss',
  family: 'rotated',
  inputs: { pred: { ...box5, grad: true }, target: { ...box5 }, predDelta: { ...delta, grad: true }, targetDelta: { ...delta } },
  params: {
    variant: oneOf(ROTATED_VARIANTS, 'probiou'),
    // 1e-7 (ultralytics' probiou), 1e-6 for kfiou (mmrotate's KFLoss).
    eps: num(1e-7, { min: 0, minExclusive: true, byVariant: { kfiou: 1e-6 } }),
    ciou: flag(false),
    fun: oneOf(ROTATED_FUNS, 'log1p', { kfiou: 'none' }),
    tau: num(0),
    alpha: num(1, { min: 0, minExclusive: true }),
    normalize: flag(true),
    sqrt: flag(true),
    beta: num(1 / 9, { min: 0, minExclusive: true }),
  },
  rows: 'n',
  output: ['n'],
  validate(_inputs, p, _dims, given, _check, present) {
    const variant = p.variant as string;
    for (const [param, only] of VARIANT_PARAMS) {
      if (given.has(param) && !only.includes(variant)) {
        fail('invalid_param', `rotated_iou_loss: ${param} applies only to variant ${only.map((v) => `'${v}'`).join(', ')}, not '${variant}'`, param);
      }
    }
    const funs: readonly string[] = variant === 'kfiou' ? KFIOU_FUNS : GAUSSIAN_FUNS;
    if (given.has('fun') && !funs.includes(p.fun as string)) {
      fail('invalid_param', `rotated_iou_loss: fun '${String(p.fun)}' is not one of variant '${variant}' (one of ${funs.map((f) => `'${f}'`).join(', ')})`, 'fun');
    }
    // GPUs may flush float32 subnormals to 0: an eps below the smallest normal would not reach the kernel.
    if ((p.eps as number) < 2 ** -126) fail('invalid_param', `rotated_iou_loss: eps must be at least 2^-126 (1.18e-38, float32's smallest normal), got ${String(p.eps)}`, 'eps');
    if ((p.beta as number) < 2 ** -126) fail('invalid_param', `rotated_iou_loss: beta must be at least 2^-126 (1.18e-38, float32's smallest normal), got ${String(p.beta)}`, 'beta');
    // alpha divides KL's centre term squared: alpha^2 must be a normal float32 number.
    const a = p.alpha as number;
    if (!(a * a >= 2 ** -126 && a * a < 3.4e38)) fail('invalid_param', `rotated_iou_loss: alpha^2 must be a normal float32 number (alpha between 1.1e-19 and 1.8e19), got alpha ${a}`, 'alpha');
    const hasPd = present?.has('predDelta') ?? false;
    const hasTd = present?.has('targetDelta') ?? false;
    if ((hasPd || hasTd) && variant !== 'kfiou') {
      fail('invalid_value', `rotated_iou_loss: ${hasPd ? 'predDelta' : 'targetDelta'} applies only to variant 'kfiou', not '${variant}'`, hasPd ? 'predDelta' : 'targetDelta');
    }
    if (hasPd !== hasTd) {
      const [have, miss] = hasPd ? ['predDelta', 'targetDelta'] : ['targetDelta', 'predDelta'];
      fail('invalid_value', `rotated_iou_loss: ${have} needs ${miss} too (KFIoU's centre term is the difference of the two)`, miss);
    }
  },
  cpu: rotatedIouLossCpu,
  gpu: {
    shader: [commonWgsl, fusedHeaderWgsl, fusedWgsl, rotatedCommonWgsl, rotatedWgsl, rotatedDeltasWgsl].join('\n'),
    shaderId: 'rotated',
    entry: 'main',
    // Without KFIoU's deltas: 7 storage buffers, within the 8 of TF.js's WebGPU device (10 with them).
    narrow: {
      shader: [commonWgsl, fusedHeaderWgsl, fusedWgsl, rotatedCommonWgsl, rotatedWgsl, rotatedNoDeltasWgsl].join('\n'),
      shaderId: 'rotated_narrow',
      without: ['predDelta', 'targetDelta'],
    },
    overrides: (p) => {
      const c = rotatedConfig(p);
      return {
        VARIANT: ROTATED_VARIANTS.indexOf(c.variant),
        FUN: ROTATED_FUNS.indexOf(c.fun),
        CIOU: c.ciou ? 1 : 0,
        NORMALIZE: c.normalize ? 1 : 0,
        SQRT: c.sqrt ? 1 : 0,
        TAU: c.tau >= 1 ? 1 : 0,
      };
    },
    uniforms: (p) => {
      const c = rotatedConfig(p);
      return { eps: c.eps, tau: c.tau, alpha2: c.alpha * c.alpha, beta: c.beta };
    },
  },
});

/**
 * The [n, m] matrix of ProbIoU between rotated boxes `a` [n, 5] and `b` [m, 5] (ops.md,
 * `pairwise_probiou`): ultralytics' `batch_probiou`; a similarity, reduction `'none'` only, no gradient.
 *
 * @example
 * const r = cpu.run('pairwise_probiou', { a, b: { data: b, shape: [m, 5] } });
 * r.loss[i * m + j]; // ProbIoU of a[i] and b[j]
 */
export const pairwiseProbiouOp = defineOp({
  name: 'pairwise_probiou',
  family: 'rotated',
  inputs: { a: { ...box5 }, b: { dtype: 'f32', shape: ['m', 5] } },
  params: { eps: num(1e-7, { min: 0, minExclusive: true }) },
  rows: 'n',
  output: ['n', 'm'],
  reductions: ['none'],
  validate(_inputs, p) {
    if ((p.eps as number) < 2 ** -126) fail('invalid_param', `pairwise_probiou: eps must be at least 2^-126 (1.18e-38, float32's smallest normal), got ${String(p.eps)}`, 'eps');
  },
  cpu: pairwiseProbiouCpu,
  gpu: {
    shader: [commonWgsl, fusedHeaderWgsl, fusedWgsl, rotatedCommonWgsl, rotatedPairwiseWgsl].join('\n'),
    shaderId: 'rotated_pairwise',
    entry: 'main',
    uniforms: (p) => ({ eps: p.eps as number }),
  },
});

/** The rotated-box family: `rotated_iou_loss`, `pairwise_probiou`. */
export const ROTATED_OPS: OpDescriptor[] = [rotatedIouLossOp, pairwiseProbiouOp];
