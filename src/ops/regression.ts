import commonWgsl from '../../shaders/common.wgsl?raw';
import fusedWgsl from '../../shaders/fused.wgsl?raw';
import regressionWgsl from '../../shaders/regression.wgsl?raw';
import { balancedL1, huber, l1, mse, regressionCpu, smoothL1 } from '../cpu/regression';
import { defineOp, num, type OpDescriptor, type ParamSpec, type ResolvedParams } from './types';

const shader = [commonWgsl, fusedWgsl, regressionWgsl].join('\n');

const vec = { dtype: 'f32', shape: ['n'] } as const;

function regressionOp(
  name: string,
  loss: number,
  params: Record<string, ParamSpec>,
  cpu: Parameters<typeof regressionCpu>[0],
): OpDescriptor {
  return defineOp({
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
      overrides: () => ({ LOSS: loss }),
      uniforms: (p: ResolvedParams) => {
        const alpha = (p.alpha as number | undefined) ?? 0;
        const gamma = (p.gamma as number | undefined) ?? 0;
        return {
          beta: (p.beta as number | undefined) ?? 0,
          delta: (p.delta as number | undefined) ?? 0,
          alpha,
          gamma,
          b: alpha > 0 ? Math.exp(gamma / alpha) - 1 : 0,
        };
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
);
