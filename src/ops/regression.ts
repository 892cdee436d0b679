import commonWgsl from '../../shaders/common.wgsl?raw';
import fusedHeaderWgsl from '../../shaders/fused-header.wgsl?raw';
import fusedWgsl from '../../shaders/fused.wgsl?raw';
import fusedVec4Wgsl from '../../shaders/fused-vec4.wgsl?raw';
import regressionWgsl from '../../shaders/regression.wgsl?raw';
import { elementIo } from './elementwise-io';
import { balancedL1, balancedL1Constants, huber, l1, mse, regressionCpu, smoothL1 } from '../cpu/regression';
import { defineOp, fail, num, type OpDescriptor, type ParamSpec, type ResolvedParams } from './types';

/** The L1 family's tensors: a pred and a target per output element, the loss a function of their difference. */
const io = elementIo({ reads: ['pred', 'target'], grads: { pred: 'd' }, entry: ([p, t]) => `regression_loss(${p} - ${t})` });
const shader = [commonWgsl, fusedHeaderWgsl, fusedWgsl, regressionWgsl, io.scalar].join('\n');
const shaderVec4 = [commonWgsl, fusedHeaderWgsl, fusedVec4Wgsl, regressionWgsl, io.vec4].join('\n');

const vec = { dtype: 'f32', shape: ['n'] } as const;

function regressionOp(
  name: string,
  loss: number,
  params: Record<string, ParamSpec>,
  cpu: Parameters<typeof regressionCpu>[0],
  validate?: OpDescriptor['validate'],
): OpDescriptor {
  return defineOp({
    validate,
    name,
    family: 'regression',
    inputs: { pred: { ...vec, shape: ['n'], grad: true }, target: { ...vec, shape: ['n'] } },
    params,
    rows: 'n',
    output: ['n'],
    cpu: regressionCpu(cpu),
    gpu: {
      shader,
      shaderId: 'regression',
      entry: 'main',
      vec4: { shader: shaderVec4, shaderId: 'regression+vec4' },
      overrides: () => ({ LOSS: loss }),
      uniforms: (p: ResolvedParams) => {
        const alpha = (p.alpha as number | undefined) ?? 0;
        const gamma = (p.gamma as number | undefined) ?? 0;
        const base = { beta: (p.beta as number | undefined) ?? 0, delta: (p.delta as number | undefined) ?? 0, alpha, gamma };
        if (!(alpha > 0)) return { ...base, b: 0, inv_b: 0, log_b: 0, gamma_over_b: 0 };
        // Every value finite in f32 (regression.wgsl's Params says how each is read).
        const k = balancedL1Constants(alpha, gamma);
        const invB = k.invB < 1.17549435e-38 ? 0 : Math.min(k.invB, 1e30);
        return { ...base, b: Math.min(k.b, 1e38), inv_b: invB, log_b: Math.max(k.logB, -1e30), gamma_over_b: k.gammaOverB };
      },
    },
  });
}

/** `abs(pred - target)`; `F.l1_loss`. */
export const l1Op = regressionOp('l1', 0, {}, l1);
/** `(pred - target)^2`; `F.mse_loss`. */
export const mseOp = regressionOp('mse', 1, {}, mse);
/** Smooth L1 with `beta` (1.0; 0 is L1); `F.smooth_l1_loss`. */
export const smoothL1Op = regressionOp('smooth_l1', 2, { beta: num(1.0, { min: 0 }) }, smoothL1);
/** Huber with `delta` (1.0, > 0); `F.huber_loss`. */
export const huberOp = regressionOp('huber', 3, { delta: num(1.0, { min: 0, minExclusive: true }) }, huber);
/** Balanced L1 (`alpha` 0.5, `gamma` 1.5, `beta` 1.0); mmdetection `balanced_l1_loss`. */
export const balancedL1Op = regressionOp(
  'balanced_l1',
  4,
  {
    alpha: num(0.5, { min: 0, minExclusive: true }),
    gamma: num(1.5, { min: 0, minExclusive: true }),
    beta: num(1.0, { min: 0, minExclusive: true }),
  },
  balancedL1,
  (_inputs, p) => {
    // The kernel takes log(b) ~ gamma/alpha as a float32.
    if ((p.gamma as number) / (p.alpha as number) > 3e38) {
      fail('invalid_param', `balanced_l1: gamma/alpha must be at most 3e38 (a float32), got ${(p.gamma as number) / (p.alpha as number)}; raise alpha`, 'alpha');
    }
  },
);
