import commonWgsl from '../../shaders/common.wgsl?raw';
import fusedHeaderWgsl from '../../shaders/fused-header.wgsl?raw';
import rankingWgsl from '../../shaders/ranking.wgsl?raw';
import rankingLossWgsl from '../../shaders/ranking-loss.wgsl?raw';
import rankingSortWgsl from '../../shaders/ranking-sort.wgsl?raw';
import { apLossCpu, rankSortCpu } from '../cpu/ranking';
import { defineOp, fail, num, type Dims, type GpuKernel, type OpDescriptor } from './types';

// The ranking losses (ops.md, "Ranking losses"): the whole minibatch ranked together, an
// error-driven update in place of the gradient, a loss already reduced (a mean over the
// positives). Only reduction 'mean'; weight and avgFactor are refused.

/**
 * Sizes shaders/ranking.wgsl works with, passed to it as override constants of the same names
 * (`sizes`): elements per thread of the counting passes, per sort block, the most NFP threads
 * (positive, tile of sort blocks), the scratch's header words and its per-positive arrays.
 */
const BLOCK = 256;
const SORT_B = 4096;
const TILE_CAP = 1 << 20;
const HEAD = 16;
const P_ARRAYS = 16;
/** The scale of every score in the shader's ramp arithmetic (its SCALE, 2^-40). */
const SCALE = 2 ** -40;
/**
 * The smallest delta the ranking losses take: below it u * delta * SCALE (the rounding of a pair's
 * difference in the shader's units) would leave float32's normal range, where a GPU may flush it.
 * Any finite float32 delta above it works (the shader's units keep every product finite).
 */
export const MIN_DELTA = 1e-18;
/** Words of the two indirect grids in the scratch's header (H_ARGS_POS, H_ARGS_NFP), and their byte offsets. */
const H_ARGS_POS = 4;
const H_ARGS_NFP = 7;
const ARGS_POS = 4 * H_ARGS_POS;
const ARGS_NFP = 4 * H_ARGS_NFP;
/** The override constants of the sizes above, the same for both losses. */
const sizes = { BLOCK, SORT_B, TILE_CAP, HEAD, P_ARRAYS, SCALE, H_ARGS_POS, H_ARGS_NFP };

const elements = (d: Dims) => d.n;
const blocks = (d: Dims) => Math.ceil(d.n / BLOCK);
const one = () => 1;
/** rank_sort_neg runs one lane per workgroup (of 64) and sort block. */
const sortLanes = (d: Dims) => Math.ceil(d.n / SORT_B) * 64;

/**
 * The passes of shaders/ranking-sort.wgsl and ranking-loss.wgsl (see ranking.wgsl's header), in
 * one module with common.wgsl, the shared fused-header.wgsl and ranking.wgsl. The scratch holds
 * per-positive arrays sized for the positives the host counts, or for n when the targets are a
 * GPU tensor.
 */
function rankingKernel(op: number): GpuKernel {
  return {
    shader: [commonWgsl, fusedHeaderWgsl, rankingWgsl, rankingSortWgsl, rankingLossWgsl].join('\n'),
    shaderId: 'ranking',
    entry: 'rank_count',
    overrides: () => ({ OP: op, ...sizes }),
    // delta in the shader's units; the inverse from the float32 delta the shader holds.
    uniforms: (p) => {
      const scaledDelta = Math.fround(p.delta as number) * SCALE;
      return { scaled_delta: scaledDelta, inv_two_scaled_delta: 1 / (2 * scaledDelta) };
    },
    program: {
      passes: [
        { entry: 'rank_count', threads: blocks },
        { entry: 'rank_scan', threads: one },
        { entry: 'rank_compact', threads: blocks },
        { entry: 'rank_sort_neg', threads: sortLanes },
        { entry: 'rank_sort_pos', threads: one },
        { entry: 'rank_nfp', indirect: ARGS_NFP },
        { entry: 'rank_pos1', indirect: ARGS_POS },
        ...(op === 0 ? [{ entry: 'rank_order', threads: one }] : []),
        { entry: 'rank_pos2', indirect: ARGS_POS },
        { entry: 'rank_wprefix', threads: one, gradOnly: true },
        { entry: 'rank_loss', threads: one },
        { entry: 'rank_neg', threads: elements, gradOnly: true },
      ],
      lossShape: op === 0 ? [] : [2],
      scratch: (dims, host) => {
        const n = dims.n;
        const t = host.targets;
        let cap = n;
        if (t) {
          cap = 0;
          for (let i = 0; i < t.length; i++) if (t[i] > 0) cap++;
        }
        const sortBlocks = Math.ceil(n / SORT_B);
        const parts = Math.max(cap, Math.min(TILE_CAP, cap * sortBlocks));
        const words = HEAD + 2 * Math.ceil(n / BLOCK) + P_ARRAYS * (cap + 1) + 2 * sortBlocks + n + 2 * sortBlocks * (SORT_B + 1) + parts;
        return { words, threads: cap };
      },
    },
  };
}

type Data = Record<string, Float32Array | Int32Array | Float64Array | undefined>;

/** Refuses a `weight` (the loss is a mean over the positives, not over elements). */
function noWeight(op: string, inputs: Data) {
  if (inputs.weight !== undefined) fail('invalid_param', `${op}: takes no weight (the loss is already a mean over the positives)`, 'weight');
}

/** `ap_loss`: logits [n], targets [n] in {1 positive, 0 negative, -1 ignored}. */
export const apLossOp = defineOp({
  name: 'ap_loss',
  family: 'ranking',
  inputs: { logits: { dtype: 'f32', shape: ['n'], grad: true }, targets: { dtype: 'f32', shape: ['n'] } },
  params: { delta: num(1.0, { min: MIN_DELTA }) },
  rows: 'n',
  output: ['n'],
  reductions: ['mean'],
  validate: (inputs) => {
    noWeight('ap_loss', inputs);
    const t = inputs.targets;
    if (!t) return;
    for (let i = 0; i < t.length; i++) {
      const v = t[i];
      if (v !== 1 && v !== 0 && v !== -1) fail('invalid_value', `ap_loss: targets[${i}] = ${v} is not 1 (positive), 0 (negative) or -1 (ignored)`, 'targets');
    }
  },
  cpu: apLossCpu,
  gpu: rankingKernel(0),
});

/** `rank_sort`: logits [n], targets [n]: a positive's IoU in (0, 1], 0 negative, below 0 ignored. */
export const rankSortOp = defineOp({
  name: 'rank_sort',
  family: 'ranking',
  inputs: { logits: { dtype: 'f32', shape: ['n'], grad: true }, targets: { dtype: 'f32', shape: ['n'] } },
  params: { delta: num(0.5, { min: MIN_DELTA }) },
  rows: 'n',
  output: ['n'],
  reductions: ['mean'],
  validate: (inputs) => {
    noWeight('rank_sort', inputs);
    const t = inputs.targets;
    if (!t) return;
    for (let i = 0; i < t.length; i++) {
      const v = t[i];
      if (!(v <= 1)) fail('invalid_value', `rank_sort: targets[${i}] = ${v}; a positive's target (its IoU) must be at most 1`, 'targets');
    }
  },
  cpu: rankSortCpu,
  gpu: rankingKernel(1),
});

/** ap_loss and rank_sort. */
export const RANKING_OPS: OpDescriptor[] = [apLossOp, rankSortOp];
