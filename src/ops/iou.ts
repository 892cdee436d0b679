import commonWgsl from '../../shaders/common.wgsl?raw';
import fusedWgsl from '../../shaders/fused.wgsl?raw';
import boxesWgsl from '../../shaders/boxes.wgsl?raw';
import iouWgsl from '../../shaders/iou.wgsl?raw';
import pairwiseWgsl from '../../shaders/pairwise.wgsl?raw';
import { BOX_FORMATS, IOU_MODES, IOU_VARIANTS, PAIRWISE_VARIANTS, iouLossCpu, pairwiseIouCpu } from '../cpu/iou';
import { defineOp, fail, num, oneOf, type OpDescriptor, type ResolvedParams } from './types';

const box4 = { dtype: 'f32', shape: ['n', 4] } as const;

/** Position of a param's value in its list: the value of the matching WGSL `override`. */
const code = (values: readonly string[], p: ResolvedParams, key: string) => values.indexOf(p[key] as string);

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
  },
  rows: 'n',
  output: ['n'],
  validate(_inputs, p, _dims, given) {
    // GPUs may flush float32 subnormals to 0: an eps below the smallest normal would not reach the kernel.
    if ((p.eps as number) < 2 ** -126) fail('invalid_param', `iou_loss: eps must be at least 2^-126 (1.18e-38, float32's smallest normal), got ${String(p.eps)}`, 'eps');
    if (given.has('mode') && p.variant !== 'iou') {
      fail('invalid_param', `iou_loss: mode applies only to variant 'iou', not '${String(p.variant)}'`, 'mode');
    }
  },
  cpu: iouLossCpu,
  gpu: {
    shader: [commonWgsl, fusedWgsl, boxesWgsl, iouWgsl].join('\n'),
    shaderId: 'iou',
    entry: 'main',
    overrides: (p) => ({
      VARIANT: code(IOU_VARIANTS, p, 'variant'),
      FORMAT: code(BOX_FORMATS, p, 'format'),
      MODE: code(IOU_MODES, p, 'mode'),
    }),
    uniforms: (p) => ({ eps: p.eps as number }),
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
    shader: [commonWgsl, fusedWgsl, boxesWgsl, pairwiseWgsl].join('\n'),
    shaderId: 'pairwise',
    // Tiled through workgroup memory: 33 ms against 43 ms untiled at n = m = 1000 on SwiftShader.
    entry: 'main_tiled',
    overrides: (p) => ({ VARIANT: code(PAIRWISE_VARIANTS, p, 'variant'), FORMAT: code(BOX_FORMATS, p, 'format') }),
  },
});

/** The box IoU family (issue 3): `iou_loss`, `pairwise_iou`. */
export const IOU_OPS: OpDescriptor[] = [iouLossOp, pairwiseIouOp];
