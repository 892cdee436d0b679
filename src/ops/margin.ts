import denominatorWgsl from '../../shaders/denominator.wgsl?raw';
import marginWgsl from '../../shaders/margin.wgsl?raw';
import nllWgsl from '../../shaders/nll.wgsl?raw';
import { crossEntropyDenominator } from '../cpu/logits';
import { classLabelsOrIgnored } from './logits';
import type { ElementIo } from './elementwise-io';
import { elementwise, rowwise } from './logits-gpu';
import { exponentialCpu, hingeCpu, hingeEmbeddingCpu, marginRankingCpu, nllCpu } from '../cpu/margin';
import { defineOp, fail, num, type GpuKernel, type OpDescriptor, type ResolvedParams } from './types';

const f32 = (...shape: string[]) => ({ dtype: 'f32' as const, shape });
const pred = (...shape: string[]) => ({ dtype: 'f32' as const, shape, grad: true });

/** An element-wise kernel over margin.wgsl: `io` names the op's tensors and its entry in margin.wgsl. */
const marginKernel = (id: string, io: ElementIo, rest: Omit<GpuKernel, 'shader' | 'shaderId' | 'entry' | 'vec4'>): GpuKernel => elementwise(id, marginWgsl, io, rest);

/** hinge's and exponential's tensors (margin.wgsl's OP picks the loss in logit_entry). */
const logitIo: ElementIo = { reads: ['logits', 'targets'], grads: { logits: 'd' }, entry: ([f, y]) => `logit_entry(${f}, ${y})` };
const hingeEmbeddingIo: ElementIo = { reads: ['pred', 'targets'], grads: { pred: 'd' }, entry: ([x, y]) => `hinge_embedding_entry(${x}, ${y})` };
/** Two inputs and a target; input2's gradient is input1's negated. */
const marginRankingIo: ElementIo = {
  reads: ['input1', 'input2', 'targets'],
  grads: { input1: 'd', input2: '-d' },
  entry: ([a, b, y]) => `margin_ranking_entry(${a}, ${b}, ${y})`,
};

const marginUniform = (p: ResolvedParams) => ({ margin: p.margin as number });

/**
 * Refuses a target other than -1 and +1 (ops.md), naming the input and the first bad index. NaN
 * is refused too: it is neither.
 */
function plusMinusOne(op: string, targets: ArrayLike<number> | undefined) {
  if (!targets) return;
  for (let i = 0; i < targets.length; i++) {
    const v = targets[i];
    if (v !== 1 && v !== -1) fail('invalid_value', `${op}: targets[${i}] = ${v} is not -1 or +1`, 'targets');
  }
}

/** `nll`: F.nll_loss on log-probabilities [n,c], optional `classWeight` [c]; `'mean'` as cross_entropy. */
export const nllOp = defineOp({
  name: 'nll',
  family: 'margin',
  inputs: { logProbs: pred('n', 'c'), labels: { dtype: 'i32', shape: ['n'] }, classWeight: { ...f32('c'), optional: true } },
  params: { ignoreIndex: num(-100, { integer: true }) },
  rows: 'n',
  output: ['n'],
  validate: classLabelsOrIgnored('nll'),
  meanDenominator: crossEntropyDenominator,
  cpu: nllCpu,
  gpu: rowwise('nll', [nllWgsl, denominatorWgsl].join('\n'), 'c', {
    denominator: 'main_denominator',
    uniforms: (p) => ({ ignore_index: p.ignoreIndex as number }),
  }),
});

/** `hinge`: the SVM hinge `max(0, margin - y * f)` on logits [n], targets in {-1, +1}. */
export const hingeOp = defineOp({
  name: 'hinge',
  family: 'margin',
  inputs: { logits: pred('n'), targets: f32('n') },
  params: { margin: num(1.0) },
  rows: 'n',
  output: ['n'],
  validate: (inputs) => plusMinusOne('hinge', inputs.targets),
  cpu: hingeCpu,
  gpu: marginKernel('margin', logitIo, { overrides: () => ({ OP: 0 }), uniforms: marginUniform }),
});

/** `hinge_embedding`: F.hinge_embedding_loss on pred [n], targets in {-1, +1}. */
export const hingeEmbeddingOp = defineOp({
  name: 'hinge_embedding',
  family: 'margin',
  inputs: { pred: pred('n'), targets: f32('n') },
  params: { margin: num(1.0) },
  rows: 'n',
  output: ['n'],
  validate: (inputs) => plusMinusOne('hinge_embedding', inputs.targets),
  cpu: hingeEmbeddingCpu,
  gpu: marginKernel('hinge_embedding', hingeEmbeddingIo, { uniforms: marginUniform }),
});

/** `margin_ranking`: F.margin_ranking_loss on input1, input2 [n], targets in {-1, +1}; gradients for both inputs. */
export const marginRankingOp = defineOp({
  name: 'margin_ranking',
  family: 'margin',
  inputs: { input1: pred('n'), input2: pred('n'), targets: f32('n') },
  params: { margin: num(0.0) },
  rows: 'n',
  output: ['n'],
  validate: (inputs) => plusMinusOne('margin_ranking', inputs.targets),
  cpu: marginRankingCpu,
  gpu: marginKernel('margin_ranking', marginRankingIo, { uniforms: marginUniform }),
});

/** `exponential`: AdaBoost's `exp(min(-y * f, 80))` on logits [n], targets in {-1, +1}. */
export const exponentialOp = defineOp({
  name: 'exponential',
  family: 'margin',
  inputs: { logits: pred('n'), targets: f32('n') },
  params: {},
  rows: 'n',
  output: ['n'],
  validate: (inputs) => plusMinusOne('exponential', inputs.targets),
  cpu: exponentialCpu,
  // margin.wgsl's Params has a margin, which exponential does not read.
  gpu: marginKernel('margin', logitIo, { overrides: () => ({ OP: 1 }), uniforms: () => ({ margin: 0 }) }),
});

/** nll, hinge, hinge_embedding, margin_ranking and exponential (ops.md, "More classification and ranking losses"). */
export const MARGIN_OPS: OpDescriptor[] = [nllOp, hingeOp, hingeEmbeddingOp, marginRankingOp, exponentialOp];
