import { rand } from './counting';

export type Tensor = { dtype: 'f32' | 'i32'; shape: number[]; data: number[] };

/** Logits in [-8, 8], with every seventh at +100 or -100 when `extreme`. */
function logits(len: number, seed: number, extreme: boolean): number[] {
  return Array.from(rand(len, seed, -8, 8)).map((v, i) => (extreme && i % 7 === 3 ? (i % 2 ? 100 : -100) : v));
}

/**
 * Inputs for a logit op with n rows of width c, in the fixture format. `variant` picks a case:
 * 'plain', 'extreme' (logits of ±100), 'weighted' (CE: classWeight, ignored rows and label
 * smoothing together; BCE: posWeight), 'background' (QFL: every label background).
 */
export function logitInputs(op: string, n: number, c: number, seed: number, variant = 'plain'): { inputs: Record<string, Tensor>; params: Record<string, unknown> } {
  const ext = variant === 'extreme';
  const f = (shape: number[], data: number[]): Tensor => ({ dtype: 'f32', shape, data: Array.from(Float32Array.from(data)) });
  const i32 = (shape: number[], data: number[]): Tensor => ({ dtype: 'i32', shape, data });
  const u = (len: number, s: number, lo = 0, hi = 1) => Array.from(rand(len, s, lo, hi));
  switch (op) {
    case 'sigmoid_focal':
      return { inputs: { logits: f([n * c], logits(n * c, seed, ext)), targets: f([n * c], u(n * c, seed + 1).map((v) => (v < 0.3 ? 1 : 0))) }, params: { alpha: 0.25, gamma: 2 } };
    case 'varifocal':
      return {
        inputs: { logits: f([n, c], logits(n * c, seed, ext)), targets: f([n, c], u(n * c, seed + 1).map((v) => (v < 0.6 ? 0 : v))) },
        params: { iouWeighted: seed % 2 === 0 },
      };
    case 'bce_with_logits':
      return {
        inputs: {
          logits: f([n, c], logits(n * c, seed, ext)),
          targets: f([n, c], u(n * c, seed + 1)),
          ...(variant === 'weighted' ? { posWeight: f([c], u(c, seed + 2, 0.5, 3)) } : {}),
        },
        params: {},
      };
    case 'quality_focal':
      return {
        inputs: {
          logits: f([n, c], logits(n * c, seed, ext)),
          labels: i32([n], u(n, seed + 1).map((v) => (variant === 'background' || v < 0.3 ? c : Math.floor(v * c) % c))),
          scores: f([n], u(n, seed + 2)),
        },
        params: { beta: 2 },
      };
    case 'distribution_focal':
      return { inputs: { logits: f([n, c], logits(n * c, seed, ext)), targets: f([n], u(n, seed + 1, 0, c - 1.01)) }, params: {} };
    case 'cross_entropy': {
      const weighted = variant === 'weighted';
      return {
        inputs: {
          logits: f([n, c], logits(n * c, seed, ext)),
          labels: i32([n], u(n, seed + 1).map((v, i) => (weighted && i % 4 === 1 ? -1 : Math.floor(v * c) % c))),
          ...(weighted ? { classWeight: f([c], u(c, seed + 2, 0.2, 2)) } : {}),
        },
        params: weighted ? { ignoreIndex: -1, labelSmoothing: 0.1 } : {},
      };
    }
    case 'kl_div':
      return { inputs: { student: f([n, c], logits(n * c, seed, ext)), teacher: f([n, c], logits(n * c, seed + 1, ext)) }, params: { temperature: 2 } };
    case 'dice':
      return { inputs: { logits: f([n, c], logits(n * c, seed, ext)), targets: f([n, c], u(n * c, seed + 1).map((v) => (v < 0.4 ? 1 : 0))) }, params: { naive: seed % 2 === 1 } };
  }
  throw new Error(`no inputs for ${op}`);
}

export const LOGIT_OP_NAMES = ['sigmoid_focal', 'varifocal', 'bce_with_logits', 'quality_focal', 'distribution_focal', 'cross_entropy', 'kl_div', 'dice'];
