import bceWgsl from '../../shaders/bce.wgsl?raw';
import ceWgsl from '../../shaders/ce.wgsl?raw';
import denominatorWgsl from '../../shaders/denominator.wgsl?raw';
import commonWgsl from '../../shaders/common.wgsl?raw';
import dflWgsl from '../../shaders/dfl.wgsl?raw';
import diceWgsl from '../../shaders/dice.wgsl?raw';
import focalWgsl from '../../shaders/focal.wgsl?raw';
import fusedHeaderWgsl from '../../shaders/fused-header.wgsl?raw';
import fusedWgsl from '../../shaders/fused.wgsl?raw';
import fusedVec4Wgsl from '../../shaders/fused-vec4.wgsl?raw';
import klWgsl from '../../shaders/kl.wgsl?raw';
import qflWgsl from '../../shaders/qfl.wgsl?raw';
import rowsWgsl from '../../shaders/rows.wgsl?raw';
import rowsSubgroupWgsl from '../../shaders/rows-subgroup.wgsl?raw';
import subgroupsEnableWgsl from '../../shaders/subgroups-enable.wgsl?raw';
import { elementIo, type ElementIo } from './elementwise-io';
import type { Dims, GpuKernel, ResolvedParams } from './types';

/**
 * An elementwise kernel: one output element per step. `wgsl` is the family's maths, `io` its
 * tensors, from which elementIo writes `element_loss` and the same four elements at a time
 * (`element_loss4`, the vec4 module).
 */
export const elementwise = (id: string, wgsl: string, io: ElementIo, rest: Omit<GpuKernel, 'shader' | 'shaderId' | 'entry'> = {}): GpuKernel => {
  const text = elementIo(io);
  return {
    shader: [commonWgsl, fusedHeaderWgsl, fusedWgsl, wgsl, text.scalar].join('\n'),
    shaderId: id,
    entry: 'main',
    vec4: { shader: [commonWgsl, fusedHeaderWgsl, fusedVec4Wgsl, wgsl, text.vec4].join('\n'), shaderId: `${id}+vec4` },
    ...rest,
  };
};

/** A row kernel: a thread per row, or a workgroup or a subgroup per row when the row (dim `d`) is long. */
export const rowwise = (id: string, wgsl: string, d: string, rest: Omit<GpuKernel, 'shader' | 'shaderId' | 'entry'> = {}): GpuKernel => ({
  shader: [commonWgsl, fusedHeaderWgsl, fusedWgsl, rowsWgsl, wgsl].join('\n'),
  shaderId: id,
  entry: 'main',
  rows: {
    entry: 'main_rows',
    length: (dims: Dims) => dims[d],
    subgroup: { shader: [subgroupsEnableWgsl, commonWgsl, fusedHeaderWgsl, fusedWgsl, rowsSubgroupWgsl, wgsl].join('\n'), shaderId: `${id}+subgroup` },
  },
  ...rest,
});

const focalUniforms = (p: ResolvedParams) => ({ alpha: p.alpha as number, gamma: p.gamma as number });

/** sigmoid_focal's and varifocal's tensors: a logit and a target per output element. */
const focalIo: ElementIo = { reads: ['logits', 'targets'], grads: { logits: 'd' }, entry: ([x, t]) => `focal_entry(${x}, ${t})` };
/**
 * bce_with_logits's: the same, pos_weight [c] being bce.wgsl's own binding 8 (scalar in the vec4
 * module too: c need not be a multiple of 4), so the gradient is binding 9.
 */
const bceIo: ElementIo = { reads: ['logits', 'targets'], grads: { logits: 'd' }, gradBinding: 9, entry: ([x, t], i) => `bce_entry(${x}, ${t}, ${i})` };

/** GPU kernels of the logit losses, by op name. */
export const LOGIT_KERNELS: Record<string, GpuKernel> = {
  sigmoid_focal: elementwise('focal', focalWgsl, focalIo, { overrides: () => ({ OP: 0 }), uniforms: focalUniforms }),
  varifocal: elementwise('focal', focalWgsl, focalIo, { overrides: (p) => ({ OP: 1, IOU_WEIGHTED: p.iouWeighted ? 1 : 0 }), uniforms: focalUniforms }),
  bce_with_logits: elementwise('bce', bceWgsl, bceIo),
  quality_focal: rowwise('qfl', qflWgsl, 'c', { uniforms: (p) => ({ beta: p.beta as number }) }),
  distribution_focal: rowwise('dfl', dflWgsl, 'k'),
  cross_entropy: rowwise('ce', [ceWgsl, denominatorWgsl].join('\n'), 'c', {
    denominator: 'main_denominator',
    uniforms: (p) => ({ ignore_index: p.ignoreIndex as number, label_smoothing: p.labelSmoothing as number }),
  }),
  kl_div: rowwise('kl', klWgsl, 'c', {
    uniforms: (p, dims) => ({ temperature: p.temperature as number, class_div: p.classReduction === 'mean' ? Math.max(dims.c, 1) : 1 }),
  }),
  dice: rowwise('dice', diceWgsl, 'p', { overrides: (p) => ({ NAIVE: p.naive ? 1 : 0 }), uniforms: (p) => ({ eps: p.eps as number }) }),
};
