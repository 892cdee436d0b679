import bceWgsl from '../../shaders/bce.wgsl?raw';
import bceIoWgsl from '../../shaders/bce-io.wgsl?raw';
import bceIoVec4Wgsl from '../../shaders/bce-io-vec4.wgsl?raw';
import ceWgsl from '../../shaders/ce.wgsl?raw';
import denominatorWgsl from '../../shaders/denominator.wgsl?raw';
import commonWgsl from '../../shaders/common.wgsl?raw';
import dflWgsl from '../../shaders/dfl.wgsl?raw';
import diceWgsl from '../../shaders/dice.wgsl?raw';
import focalWgsl from '../../shaders/focal.wgsl?raw';
import focalIoWgsl from '../../shaders/focal-io.wgsl?raw';
import focalIoVec4Wgsl from '../../shaders/focal-io-vec4.wgsl?raw';
import fusedWgsl from '../../shaders/fused.wgsl?raw';
import fusedVec4Wgsl from '../../shaders/fused-vec4.wgsl?raw';
import klWgsl from '../../shaders/kl.wgsl?raw';
import qflWgsl from '../../shaders/qfl.wgsl?raw';
import rowsWgsl from '../../shaders/rows.wgsl?raw';
import rowsSubgroupWgsl from '../../shaders/rows-subgroup.wgsl?raw';
import subgroupsEnableWgsl from '../../shaders/subgroups-enable.wgsl?raw';
import type { Dims, GpuKernel, ResolvedParams } from './types';

/**
 * An elementwise kernel: one logit per output element. `wgsl` is the family's maths, `io` its
 * tensors and `element_loss`, `ioVec4` the same four elements at a time (`element_loss4`).
 */
export const elementwise = (id: string, wgsl: string, io: string, ioVec4: string, rest: Omit<GpuKernel, 'shader' | 'shaderId' | 'entry'> = {}): GpuKernel => ({
  shader: [commonWgsl, fusedWgsl, wgsl, io].join('\n'),
  shaderId: id,
  entry: 'main',
  vec4: { shader: [commonWgsl, fusedVec4Wgsl, wgsl, ioVec4].join('\n'), shaderId: `${id}+vec4` },
  ...rest,
});

/** A row kernel: a thread per row, or a workgroup or a subgroup per row when the row (dim `d`) is long. */
export const rowwise = (id: string, wgsl: string, d: string, rest: Omit<GpuKernel, 'shader' | 'shaderId' | 'entry'> = {}): GpuKernel => ({
  shader: [commonWgsl, fusedWgsl, rowsWgsl, wgsl].join('\n'),
  shaderId: id,
  entry: 'main',
  rows: {
    entry: 'main_rows',
    length: (dims: Dims) => dims[d],
    subgroup: { shader: [subgroupsEnableWgsl, commonWgsl, fusedWgsl, rowsSubgroupWgsl, wgsl].join('\n'), shaderId: `${id}+subgroup` },
  },
  ...rest,
});

const focalUniforms = (p: ResolvedParams) => ({ alpha: p.alpha as number, gamma: p.gamma as number });

/** GPU kernels of the logit losses, by op name. */
export const LOGIT_KERNELS: Record<string, GpuKernel> = {
  sigmoid_focal: elementwise('focal', focalWgsl, focalIoWgsl, focalIoVec4Wgsl, { overrides: () => ({ OP: 0 }), uniforms: focalUniforms }),
  varifocal: elementwise('focal', focalWgsl, focalIoWgsl, focalIoVec4Wgsl, { overrides: (p) => ({ OP: 1, IOU_WEIGHTED: p.iouWeighted ? 1 : 0 }), uniforms: focalUniforms }),
  bce_with_logits: elementwise('bce', bceWgsl, bceIoWgsl, bceIoVec4Wgsl),
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
