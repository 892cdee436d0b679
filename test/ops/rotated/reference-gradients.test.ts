import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { aspectAngle } from '../../../src/cpu/iou';
import { rand } from '../../helpers/counting';
import { checkCentralDifferences } from '../../helpers/finite-differences';

/**
 * The float64 reference of rotated_iou_loss: its hand-written gradient against central differences
 * for every variant and every param that changes the formula, at random and near-degenerate boxes
 * (thin, tiny, nearly identical, square, angles far outside [-pi, pi]); the angle's period pi; and
 * the symmetry (w, h, theta) -> (h, w, theta + pi/2).
 */

type Params = Record<string, unknown>;
const CONFIGS: [string, Params][] = [
  ['probiou', { variant: 'probiou' }],
  ['probiou, ciou', { variant: 'probiou', ciou: true }],
  ['probiou, eps 1e-3', { variant: 'probiou', eps: 1e-3 }],
  ['gwd', { variant: 'gwd' }],
  ['gwd, sqrt, tau 1, alpha 2, not normalized', { variant: 'gwd', fun: 'sqrt', tau: 1, alpha: 2, normalize: false }],
  ['gwd, none', { variant: 'gwd', fun: 'none' }],
  ['kld', { variant: 'kld' }],
  ['kld, tau 1', { variant: 'kld', tau: 1 }],
  ['kld, no sqrt, fun sqrt, alpha 2', { variant: 'kld', sqrt: false, fun: 'sqrt', alpha: 2 }],
  ['jd', { variant: 'jd' }],
  ['jd, tau 2, fun none', { variant: 'jd', tau: 2, fun: 'none' }],
  ['kld_symmax', { variant: 'kld_symmax' }],
  ['kld_symmin', { variant: 'kld_symmin', alpha: 0.5 }],
  ['kld_symmin, no sqrt, tau 1', { variant: 'kld_symmin', sqrt: false, tau: 1 }],
  ['kfiou', { variant: 'kfiou' }],
  ['kfiou, ln', { variant: 'kfiou', fun: 'ln' }],
  ['kfiou, exp, beta 2', { variant: 'kfiou', fun: 'exp', beta: 2 }],
];

/** n boxes of each kind, pred then target, as (cx, cy, w, h, theta) rows. */
function boxes(kind: string, n: number, seed: number): { pred: Float64Array; target: Float64Array } {
  const u = (k: number, lo: number, hi: number) => Array.from(rand(n, seed * 31 + k, lo, hi));
  const cx = u(1, 0, 100), cy = u(2, 0, 100), w = u(3, 2, 40), h = u(4, 2, 40), t = u(5, -3, 3);
  const jit = u(6, -1, 1), jit2 = u(7, -1, 1), jit3 = u(8, -1, 1);
  const pred = new Float64Array(5 * n);
  const target = new Float64Array(5 * n);
  for (let i = 0; i < n; i++) {
    let p = [cx[i], cy[i], w[i], h[i], t[i]];
    let q = [cx[i] + 8 * jit[i], cy[i] + 8 * jit2[i], w[i] * (1.3 + 0.5 * jit3[i]), h[i] * (0.8 + 0.3 * jit[i]), t[i] + jit2[i]];
    if (kind === 'thin') {
      p = [cx[i], cy[i], 100 * h[i] * 0.2, h[i] * 0.2, t[i]];
      q = [cx[i] + jit[i], cy[i] + jit2[i], 100 * h[i] * 0.25, h[i] * 0.25, t[i] + 0.05 * jit3[i]];
    } else if (kind === 'tiny') {
      p = [cx[i], cy[i], 0.02 + 0.05 * Math.abs(jit[i]), 0.03 + 0.05 * Math.abs(jit2[i]), t[i]];
      q = [cx[i] + 0.01 * jit3[i], cy[i] - 0.01 * jit[i], 0.04, 0.02 + 0.01 * Math.abs(jit3[i]), t[i] + jit[i]];
    } else if (kind === 'near') {
      q = [cx[i] + 0.3 * jit[i], cy[i] + 0.3 * jit2[i], w[i] * (1 + 0.02 * jit3[i]), h[i] * (1 - 0.02 * jit[i]), t[i] + 0.02 * jit2[i]];
    } else if (kind === 'far-angles') {
      p[4] = t[i] + 40 * jit[i];
      q[4] = t[i] - 400 * jit3[i];
    } else if (kind === 'square') {
      p[3] = p[2];
    }
    pred.set(p, 5 * i);
    target.set(q, 5 * i);
  }
  return { pred, target };
}

const KINDS = ['random', 'thin', 'tiny', 'near', 'far-angles', 'square'];

function run(params: Params, inputs: Record<string, Float64Array>, n: number, grad = true) {
  const shaped: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(inputs)) shaped[k] = { data: v, shape: [n, v.length / n] };
  return cpu.run('rotated_iou_loss', shaped as never, { ...params, reduction: 'none', grad } as never);
}

describe('rotated_iou_loss: the reference gradient is the central difference', () => {
  const n = 12;
  for (const [name, params] of CONFIGS) {
    it.each(KINDS)(`${name}, %s boxes`, (kind) => {
      const { pred, target } = boxes(kind, n, KINDS.indexOf(kind) + 1);
      const inputs: Record<string, Float64Array> = { pred, target };
      const deltas = params.variant === 'kfiou' && kind === 'random';
      if (deltas) {
        inputs.predDelta = Float64Array.from(rand(2 * n, 91, -0.4, 0.4));
        inputs.targetDelta = Float64Array.from(rand(2 * n, 92, -0.4, 0.4));
      }
      const up = Float64Array.from(rand(n, 93, 0.5, 2));
      const r = run(params, inputs, n);
      // Objective sum(up * loss): each row's gradient is checked through the upstream weights.
      // With ciou, k = v / (v + hd + eps) is held constant in the gradient (ops.md): the objective
      // is hd + k0 * v with k0 taken at the point the gradient is taken.
      const v = (x: Float64Array, i: number) => (4 / Math.PI ** 2) * (aspectAngle(target[5 * i + 2], target[5 * i + 3]) - aspectAngle(x[5 * i + 2], x[5 * i + 3])) ** 2;
      const plain = params.ciou ? { ...params, ciou: undefined } : params;
      const hd0 = run(plain, inputs, n, false).loss;
      const k0 = Array.from({ length: n }, (_, i) => (params.ciou ? v(pred, i) / (v(pred, i) + hd0[i] + 1e-7) : 0));
      const objective = () => {
        const l = run(plain, inputs, n, false).loss;
        let s = 0;
        for (let i = 0; i < n; i++) s += up[i] * (l[i] + k0[i] * (params.ciou ? v(pred, i) : 0));
        return s;
      };
      const shaped = { ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { data: v, shape: [n, v.length / n] }])), gradOutput: up };
      const rWeighted = cpu.run('rotated_iou_loss', shaped as never, { ...params, reduction: 'none' } as never);
      for (const gname of deltas ? ['pred', 'predDelta'] : ['pred']) {
        const x = inputs[gname];
        const g = rWeighted.grad[gname];
        expect(g.length).toBe(x.length);
        const scale = Math.max(1e-3, ...Array.from(g, Math.abs));
        let worst = 0;
        const checked = checkCentralDifferences(x, objective, (i, central) => {
          // Relative to the row's largest component: a term of size 1e-9 next to one of 1 is noise.
          worst = Math.max(worst, Math.abs(g[i] - central) / scale);
        }, kind === 'tiny' ? 1e-8 : 1e-6);
        expect(worst, `${gname}: worst error relative to the largest gradient`).toBeLessThan(2e-4);
        expect(checked).toBeGreaterThanOrEqual(Math.floor(0.9 * x.length));
      }
      expect(Array.from(r.loss).every(Number.isFinite)).toBe(true);
    });
  }
});

describe('rotated_iou_loss: angles', () => {
  const n = 16;
  for (const [name, params] of CONFIGS) {
    it(`${name}: theta, theta + pi and theta + 2 pi give one loss and one gradient`, () => {
      const { pred, target } = boxes('random', n, 7);
      const base = run(params, { pred, target }, n);
      for (const k of [1, 2, -3]) {
        const p2 = pred.slice();
        const t2 = target.slice();
        for (let i = 0; i < n; i++) {
          p2[5 * i + 4] += k * Math.PI;
          t2[5 * i + 4] -= k * Math.PI;
        }
        const r = run(params, { pred: p2, target: t2 }, n);
        for (let i = 0; i < n; i++) expect(r.loss[i]).toBeCloseTo(base.loss[i], 9);
        for (let i = 0; i < 5 * n; i++) expect(r.grad.pred[i]).toBeCloseTo(base.grad.pred[i], 7);
      }
    });
    if (params.ciou) continue;
    it(`${name}: (w, h, theta) and (h, w, theta + pi/2) are the same box`, () => {
      const { pred, target } = boxes('random', n, 8);
      const base = run(params, { pred, target }, n);
      const p2 = pred.slice();
      for (let i = 0; i < n; i++) {
        [p2[5 * i + 2], p2[5 * i + 3]] = [pred[5 * i + 3], pred[5 * i + 2]];
        p2[5 * i + 4] += Math.PI / 2;
      }
      const r = run(params, { pred: p2, target }, n);
      for (let i = 0; i < n; i++) {
        expect(r.loss[i]).toBeCloseTo(base.loss[i], 9);
        // The gradients of w and h trade places; cx, cy and theta keep theirs.
        const g = base.grad.pred, g2 = r.grad.pred;
        expect(g2[5 * i]).toBeCloseTo(g[5 * i], 7);
        expect(g2[5 * i + 2]).toBeCloseTo(g[5 * i + 3], 7);
        expect(g2[5 * i + 3]).toBeCloseTo(g[5 * i + 2], 7);
        expect(g2[5 * i + 4]).toBeCloseTo(g[5 * i + 4], 7);
      }
    });
  }
  it('a square pred has no orientation: its angle gets gradient 0 under every variant', () => {
    const { pred, target } = boxes('square', n, 9);
    for (const [, params] of CONFIGS) {
      const r = run(params, { pred, target }, n);
      for (let i = 0; i < n; i++) expect(Math.abs(r.grad.pred[5 * i + 4])).toBeLessThan(1e-9 * (1 + Math.abs(r.grad.pred[5 * i])));
    }
  });
});
