import commonWgsl from '../../shaders/common.wgsl?raw';
import fusedHeaderWgsl from '../../shaders/fused-header.wgsl?raw';
import fusedWgsl from '../../shaders/fused.wgsl?raw';
import boxesWgsl from '../../shaders/boxes.wgsl?raw';
import iouWgsl from '../../shaders/iou.wgsl?raw';
import pairwiseWgsl from '../../shaders/pairwise.wgsl?raw';
import { BOX_FORMATS, CIOU_ALPHAS, IOU_MODES, IOU_VARIANTS, PAIRWISE_VARIANTS, iouLossCpu, pairwiseIouCpu } from '../cpu/iou';
import { defineOp, fail, num, oneOf, pair, type OpDescriptor, type ResolvedParams } from './types';

const box4 = { dtype: 'f32', shape: ['n', 4] } as const;

/** The largest Alpha-IoU power accepted (ops.md, `power`). */
export const MAX_POWER = 20;
/** The narrowest Focaler interval accepted: the IoU term is divided by u - d, and float32's IoU is good to a few 1e-7. */
export const MIN_FOCALER_SPAN = 0.01;
/** The largest 1 / (W^2 + H^2) of MPDIoU's imageSize accepted: the term stays in float32 for corner distances up to 1e13. */
export const MAX_MPD_NORM = 1e12;
/** The largest peak of Wise-IoU v3's focusing factor accepted (float32 holds it times exp(2) and its gradient). */
const MAX_WIOU_FACTOR = 2 ** 100;

/** Position of a param's value in its list: the value of the matching WGSL `override`. */
const code = (values: readonly string[], p: ResolvedParams, key: string) => values.indexOf(p[key] as string);

/** The params that apply to some variants only (ops.md, "More box losses"). */
const VARIANT_PARAMS: [string, string[]][] = [
  ['mode', ['iou']],
  ['ciouAlpha', ['ciou']],
  ['power', ['iou', 'giou', 'diou', 'ciou']],
  ['imageSize', ['mpdiou']],
  ['scale', ['shape']],
  ['wiouVersion', ['wiou']],
  ['iouMean', ['wiou']],
  ['wiouAlpha', ['wiou']],
  ['wiouDelta', ['wiou']],
];

/**
 * Box regression losses (ops.md, "Box losses"): `1 - IoU` and the GIoU, DIoU, CIoU, EIoU and SIoU
 * losses of `pred` [n, 4] against `target` [n, 4]; output [n], gradient for `pred`.
 *
 * @example
 * const r = cpu.run('iou_loss', { pred, target }, { variant: 'ciou', format: 'cxcywh' });
 * r.loss[0]; r.grad.pred;
 */
export const iouLossOp = defineOp({
  name: 'iou_loss',
  family: 'iou',
  inputs: { pred: { ...box4, grad: true }, target: { ...box4 } },
  params: {
    variant: oneOf(IOU_VARIANTS, 'iou'),
    format: oneOf(BOX_FORMATS, 'xyxy'),
    eps: num(1e-7, { min: 0, minExclusive: true }),
    mode: oneOf(IOU_MODES, 'linear'),
    ciouAlpha: oneOf(CIOU_ALPHAS, 'torchvision'),
    // Alpha-IoU's power (the authors use 3). Up to 20, a p^(a-1) is finite in float32 wherever p^a is.
    power: num(1, { min: 1, max: MAX_POWER }),
    innerRatio: num(1, { min: 0, minExclusive: true }),
    focaler: pair([0, 1], { min: 0, max: 1 }),
    imageSize: pair(undefined, { min: 0, minExclusive: true }),
    scale: num(0, { min: 0 }),
    wiouVersion: num(3, { integer: true, min: 1, max: 3 }),
    iouMean: num(1, { min: 0, minExclusive: true }),
    wiouAlpha: num(1.9, { min: 0, minExclusive: true }),
    wiouDelta: num(3, { min: 0, minExclusive: true }),
  },
  rows: 'n',
  output: ['n'],
  validate(_inputs, p, _dims, given) {
    const variant = p.variant as string;
    // GPUs may flush float32 subnormals to 0: an eps below the smallest normal would not reach the kernel.
    if ((p.eps as number) < 2 ** -126) fail('invalid_param', `iou_loss: eps must be at least 2^-126 (1.18e-38, float32's smallest normal), got ${String(p.eps)}`, 'eps');
    // A param of one variant given with another is refused, at its default too: it would do nothing.
    for (const [param, only] of VARIANT_PARAMS) {
      if (given.has(param) && !only.includes(variant)) {
        fail('invalid_param', `iou_loss: ${param} applies only to variant ${only.map((v) => `'${v}'`).join(' or ')}, not '${variant}'`, param);
      }
    }
    if (given.has('power') && (p.mode !== 'linear' || p.ciouAlpha === 'mmdet')) {
      const why = p.mode !== 'linear' ? `mode '${String(p.mode)}' (only 'linear')` : "ciouAlpha 'mmdet'";
      fail('invalid_param', `iou_loss: power (Alpha-IoU) does not combine with ${why}`, 'power');
    }
    if (variant === 'wiou' && p.wiouVersion === 3) {
      // v3's factor beta / (delta alpha^(beta - delta)) peaks at alpha^delta / (e delta ln alpha): it
      // grows without bound for alpha <= 1, and leaves float32 once alpha^delta does.
      const alpha = p.wiouAlpha as number;
      const delta = p.wiouDelta as number;
      if (alpha <= 1) fail('invalid_param', `iou_loss: wiouAlpha must be > 1 for Wise-IoU v3 (its focusing factor grows without bound otherwise), got ${alpha}`, 'wiouAlpha');
      if (delta * Math.log2(alpha) > 100) fail('invalid_param', `iou_loss: wiouAlpha^wiouDelta must stay below 2^100 for Wise-IoU v3 (float32), got ${alpha}^${delta}`, 'wiouDelta');
      // The factor's largest value, at beta = 1 / ln(alpha): a tiny delta with alpha near 1 passed float32.
      const peak = alpha ** delta / (Math.E * delta * Math.log(alpha));
      if (!(peak < MAX_WIOU_FACTOR)) {
        fail('invalid_param', `iou_loss: Wise-IoU v3's focusing factor peaks at wiouAlpha^wiouDelta / (e wiouDelta ln wiouAlpha), which must stay below 2^100 (float32), got ${peak.toPrecision(3)} for wiouAlpha ${alpha}, wiouDelta ${delta}`, 'wiouDelta');
      }
    }
    const [d, u] = p.focaler as readonly number[];
    if (d >= u) fail('invalid_param', `iou_loss: focaler [d, u] needs d < u, got [${d}, ${u}]`, 'focaler');
    // The IoU term is divided by u - d: narrower, float32's rounding of the IoU shows in the loss (and d, u meet in
    // float32). The slack lets [0.1, 0.11], whose difference is 0.00999... in float64, pass.
    if (u - d < MIN_FOCALER_SPAN - 1e-12) fail('invalid_param', `iou_loss: focaler [d, u] needs u - d >= ${MIN_FOCALER_SPAN}, got [${d}, ${u}]`, 'focaler');
    if (p.imageSize !== undefined) {
      const [w, h] = p.imageSize as readonly number[];
      const s = w * w + h * h;
      // 1/s multiplies squared corner distances in float32: at s = 2e-38 a distance of 2 overflowed.
      if (!(1 / s <= MAX_MPD_NORM && 1 / s >= 2 ** -126)) {
        fail('invalid_param', `iou_loss: imageSize [${w}, ${h}] is out of range: W^2 + H^2 must be between 1e-12 and 2^126 (8.5e37), so that 1 / (W^2 + H^2) is a float32 number of at most 1e12`, 'imageSize');
      }
    }
    if (variant === 'mpdiou' && p.imageSize === undefined) fail('invalid_param', "iou_loss: variant 'mpdiou' needs imageSize: [W, H], the image's width and height", 'imageSize');
  },
  cpu: iouLossCpu,
  gpu: {
    shader: [commonWgsl, fusedHeaderWgsl, fusedWgsl, boxesWgsl, iouWgsl].join('\n'),
    shaderId: 'iou',
    entry: 'main',
    overrides: (p) => ({
      VARIANT: code(IOU_VARIANTS, p, 'variant'),
      FORMAT: code(BOX_FORMATS, p, 'format'),
      MODE: code(IOU_MODES, p, 'mode'),
      CIOU_MMDET: p.ciouAlpha === 'mmdet' ? 1 : 0,
      POWER: p.power !== 1 ? 1 : 0,
      INNER: p.innerRatio !== 1 ? 1 : 0,
      WIOU_VERSION: p.wiouVersion as number,
    }),
    // Wise-IoU's caller keeps the running mean of 1 - iou (ops.md): the batch's mean comes back beside the loss.
    aux: { name: 'batchIouMean', entry: 'main_aux', when: (p) => p.variant === 'wiou' },
    uniforms: (p) => {
      const [focalerLo, focalerHi] = p.focaler as readonly number[];
      const [w, h] = (p.imageSize as readonly number[] | undefined) ?? [1, 1];
      return {
        eps: p.eps as number,
        power: p.power as number,
        inner_ratio: p.innerRatio as number,
        focaler_lo: focalerLo,
        focaler_hi: focalerHi,
        mpd_norm: 1 / (w * w + h * h),
        scale: p.scale as number,
        iou_mean: p.iouMean as number,
        wiou_log2_alpha: Math.log2(p.wiouAlpha as number),
        wiou_delta: p.wiouDelta as number,
      };
    },
  },
});

/**
 * The [n, m] matrix of IoU, GIoU, DIoU or CIoU (similarities) between boxes `a` [n, 4] and
 * `b` [m, 4] (ops.md, "Pairwise matrices"); reduction `'none'` only, no gradient.
 *
 * @example
 * const r = cpu.run('pairwise_iou', { a, b: { data: b, shape: [m, 4] } }, { variant: 'giou', reduction: 'none' });
 * r.loss[i * m + j]; // GIoU of a[i] and b[j]
 */
export const pairwiseIouOp = defineOp({
  name: 'pairwise_iou',
  family: 'iou',
  inputs: { a: { ...box4 }, b: { dtype: 'f32', shape: ['m', 4] } },
  params: {
    variant: oneOf(PAIRWISE_VARIANTS, 'iou'),
    format: oneOf(BOX_FORMATS, 'xyxy'),
  },
  rows: 'n',
  output: ['n', 'm'],
  reductions: ['none'],
  cpu: pairwiseIouCpu,
  gpu: {
    shader: [commonWgsl, fusedHeaderWgsl, fusedWgsl, boxesWgsl, pairwiseWgsl].join('\n'),
    shaderId: 'pairwise',
    // Tiled through workgroup memory: 33 ms against 43 ms untiled at n = m = 1000 on SwiftShader.
    entry: 'main_tiled',
    overrides: (p) => ({ VARIANT: code(PAIRWISE_VARIANTS, p, 'variant'), FORMAT: code(BOX_FORMATS, p, 'format') }),
  },
});

/** The box IoU family (issue 3): `iou_loss`, `pairwise_iou`. */
export const IOU_OPS: OpDescriptor[] = [iouLossOp, pairwiseIouOp];
