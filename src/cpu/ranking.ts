/**
 * Float64 references for the ranking losses `ap_loss` (cccorn/AP-loss) and `rank_sort`
 * (kemaloksuz/RankSortLoss), ops.md "Ranking losses". They return an error-driven update, not a
 * gradient: `backward` gives that update times `gradOutput` (one number). Brute force: every
 * positive against every element, |P| x n, in plain loops (the reference the GPU is held against).
 */
import type { CpuForward, CpuInputs, ResolvedParams } from './types';

/** The smoothed step `clamp(x / (2 delta) + 0.5, 0, 1)`. */
export function smoothStep(x: number, delta: number): number {
  const h = x / (2 * delta) + 0.5;
  return h < 0 ? 0 : h > 1 ? 1 : h;
}

/** Positives (target > 0) and negatives (target == 0), by index; the rest are ignored. */
function split(t: ArrayLike<number>): { pos: number[]; neg: number[] } {
  const pos: number[] = [];
  const neg: number[] = [];
  for (let i = 0; i < t.length; i++) {
    if (t[i] > 0) pos.push(i);
    else if (t[i] === 0) neg.push(i);
  }
  return { pos, neg };
}

/** NFP(i) = sum over the negatives j of H(s_j - s_i), for each positive. */
function falsePositives(s: Float64Array, pos: number[], neg: number[], delta: number): Float64Array {
  const sn = Float64Array.from(neg, (j) => s[j]);
  const nfp = new Float64Array(pos.length);
  const inv = 1 / (2 * delta);
  pos.forEach((i, a) => {
    const si = s[i];
    let sum = 0;
    for (let k = 0; k < sn.length; k++) {
      const h = (sn[k] - si) * inv + 0.5;
      sum += h < 0 ? 0 : h > 1 ? 1 : h;
    }
    nfp[a] = sum;
  });
  return nfp;
}

/** Each negative's update: sum over the positives i of w_i H(s_j - s_i). */
function negativeUpdates(s: Float64Array, pos: number[], neg: number[], w: number[], delta: number, update: Float64Array) {
  const sp = Float64Array.from(pos, (i) => s[i]);
  const wp = Float64Array.from(w);
  const inv = 1 / (2 * delta);
  for (const j of neg) {
    const sj = s[j];
    let u = 0;
    for (let a = 0; a < sp.length; a++) {
      const h = (sj - sp[a]) * inv + 0.5;
      u += (h < 0 ? 0 : h > 1 ? 1 : h) * wp[a];
    }
    update[j] = u;
  }
}

/** A self-reduced forward: the loss as given, the update (per element) scaled by gradOutput. */
function result(loss: number[], update: Float64Array): CpuForward {
  const reduced = Float64Array.from(loss);
  return {
    loss: reduced,
    reduced: { loss: reduced, shape: loss.length === 1 ? [] : [loss.length] },
    backward: (up) => ({ logits: update.map((u) => u * up[0]) }),
  };
}

/** AP-Loss: loss `1 - mean interpolated precision` over the positives, and its update. */
export function apLossCpu(inputs: CpuInputs, p: ResolvedParams): CpuForward {
  const s = inputs.logits as Float64Array;
  const t = inputs.targets as Float64Array;
  const delta = p.delta as number;
  const n = s.length;
  const update = new Float64Array(n);
  const { pos, neg } = split(t);
  const np = pos.length;
  if (np === 0) return result([0], update);
  const nfp = falsePositives(s, pos, neg, delta);
  const rank = new Float64Array(np);
  const prec = new Float64Array(np);
  pos.forEach((i, a) => {
    let rp = 1;
    for (const k of pos) if (k !== i) rp += smoothStep(s[k] - s[i], delta);
    rank[a] = rp + nfp[a];
    prec[a] = rp / rank[a];
  });
  // Interpolated precision: a running max over the positives in ascending score, ties by index.
  const order = pos.map((_, a) => a).sort((a, b) => s[pos[a]] - s[pos[b]] || pos[a] - pos[b]);
  const ph = new Float64Array(np);
  let max = -Infinity;
  for (const a of order) {
    max = Math.max(max, prec[a]);
    ph[a] = max;
  }
  let sum = 0;
  for (let a = 0; a < np; a++) sum += ph[a];
  pos.forEach((i, a) => (update[i] = -(1 - ph[a]) / np));
  const w = pos.map((_, a) => (ph[a] > prec[a] ? (1 - ph[a]) / (1 - prec[a]) : 1) / rank[a] / np);
  negativeUpdates(s, pos, neg, w, delta, update);
  return result([1 - sum / np], update);
}

/** Rank & Sort: loss `[ranking, sorting]`, each a mean over the positives, and the update. */
export function rankSortCpu(inputs: CpuInputs, p: ResolvedParams): CpuForward {
  const s = inputs.logits as Float64Array;
  const t = inputs.targets as Float64Array;
  const delta = p.delta as number;
  const n = s.length;
  const update = new Float64Array(n);
  const { pos, neg } = split(t);
  const np = pos.length;
  if (np === 0) return result([0, 0], update);
  const nfp = falsePositives(s, pos, neg, delta);
  const lr = new Float64Array(np);
  const ls = new Float64Array(np);
  const below = new Float64Array(np);
  pos.forEach((i, a) => {
    let rp = 0;
    let all = 0;
    let top = 0;
    let topH = 0;
    let d = 0;
    for (const k of pos) {
      const h = smoothStep(s[k] - s[i], delta);
      rp += h;
      all += h * (1 - t[k]);
      if (t[k] >= t[i]) {
        top += h * (1 - t[k]);
        topH += h;
      } else d += h;
    }
    lr[a] = nfp[a] / (rp + nfp[a]);
    ls[a] = all / rp - top / topH;
    below[a] = d;
  });
  let sumR = 0;
  let sumS = 0;
  pos.forEach((i, a) => {
    sumR += lr[a];
    sumS += ls[a];
    let u = -(nfp[a] > 1e-10 ? lr[a] : 0) - (below[a] > 1e-10 ? ls[a] : 0);
    pos.forEach((m, b) => {
      if (below[b] > 1e-10 && t[i] < t[m]) u += (ls[b] * smoothStep(s[i] - s[m], delta)) / below[b];
    });
    update[i] = u / np;
  });
  const w = pos.map((_, a) => (nfp[a] > 1e-10 ? lr[a] / nfp[a] / np : 0));
  negativeUpdates(s, pos, neg, w, delta, update);
  return result([sumR / np, sumS / np], update);
}
