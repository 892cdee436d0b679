/**
 * Drawn cases of the rotated task-aligned assigner and THE TIE RULE its GPU tests apply
 * (test/ops/rotated-tal/gpu.test.ts). The assignment is made of comparisons (the in-box test, the
 * top k of each gt's metrics, the argmax of an anchor's overlaps when several gts select it); a
 * float32 kernel may decide one differently from the float64 reference only where the two sides of
 * a comparison are within float32 rounding of each other. Every decision of the reference is
 * replayed here beside an error bound, and a case with any decision inside its bound is a tie,
 * not compared (the caller draws another):
 *
 * - in-box: the four margins `ap.ab`, `|ab|^2 - ap.ab`, `ap.ad`, `|ad|^2 - ap.ad` must each exceed
 *   four times a first-order bound of their float32 error (`inBoxClearance`: the corners' rounding,
 *   cos and sin good to a rounding or two, the products' rounding);
 * - overlap: ProbIoU in float32 within E_OV = 1e-4 of float64 (the contract's tolerance for
 *   `pairwise_probiou`'s fixtures), clamped at 0; a pair far enough apart that `1 - hd` is at most
 *   -2e-8 in float64 (bd > 16.5: exp(-bd) + rounding stays below float32's step at 1) is an exact 0
 *   on both sides;
 * - metric `s^alpha * ov^beta`: the overlap's interval through the power, and 8u for the rest;
 * - top k: clear when the smallest lower bound inside the reference's top k exceeds the largest
 *   upper bound outside it, or when every pair whose interval meets the boundary is an exact 0
 *   (then both sides order them by index);
 * - one gt per anchor: the winner's overlap interval must clear every other row's, unless both are
 *   exact zeros.
 *
 * A clear case's integer outputs must equal the reference's exactly, its boxes bit for bit, and
 * each target score must lie in the interval the metric and overlap intervals give
 * `metric * maxOv / (maxMetric + eps)`.
 */
import { probiouValue } from '../../../src/cpu/rotated';
import { inRotatedBox, ROTATED_OVERLAP_EPS } from '../../../src/cpu/rotated-tal';

export const U = 2 ** -24;
export const E_OV = 1e-4;

export interface DrawOptions {
  b: number;
  /** gt rows per image, and how many of them are real (the rest padding, at random rows). */
  m: number;
  real: number;
  c: number;
  /** Image side in pixels; anchors at the centres of cells of each stride. */
  size: number;
  strides: number[];
  /** Draw thin gts (the short side 0.3 to 1.5 pixels) and predictions (0.05 to 1). */
  thin?: boolean;
  /** Draw angles in [-60, 60] rather than [-pi, pi]. */
  farAngles?: boolean;
  topk: number;
  alpha?: number;
  beta?: number;
}

export interface Drawn {
  inputs: {
    scores: { data: Float32Array; shape: number[] };
    predBoxes: { data: Float32Array; shape: number[] };
    anchors: { data: Float32Array; shape: number[] };
    gtLabels: { data: Int32Array; shape: number[] };
    gtBoxes: { data: Float32Array; shape: number[] };
    gtMask: { data: Int32Array; shape: number[] };
  };
  dims: { b: number; a: number; c: number; m: number };
  params: { topk: number; alpha: number; beta: number; eps: number };
}

/** A small seeded generator (mulberry32): uniform in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export function drawCase(seed: number, o: DrawOptions): Drawn {
  const r = rng(seed);
  const U01 = (lo: number, hi: number) => lo + (hi - lo) * r();
  const anchorsList: number[] = [];
  for (const s of o.strides) for (let y = 0; y < o.size / s; y++) for (let x = 0; x < o.size / s; x++) anchorsList.push((x + 0.5) * s, (y + 0.5) * s);
  const A = anchorsList.length / 2;
  const anchors = Float32Array.from(anchorsList);
  const { b: B, m: M, c: C } = o;
  const angle = () => (o.farAngles ? U01(-60, 60) : U01(-Math.PI, Math.PI));
  const gtBoxes = new Float32Array(B * M * 5);
  const gtLabels = new Int32Array(B * M);
  const gtMask = new Int32Array(B * M);
  for (let b = 0; b < B; b++) {
    const rows = Array.from({ length: M }, (_, j) => j);
    // the real rows at random places among the M
    for (let j = M - 1; j > 0; j--) {
      const k = Math.floor(r() * (j + 1));
      [rows[j], rows[k]] = [rows[k], rows[j]];
    }
    for (let n = 0; n < M; n++) {
      const j = rows[n];
      const at = b * M + j;
      gtMask[at] = n < o.real ? 1 : 0;
      gtLabels[at] = Math.floor(r() * C);
      const w = U01(6, 30);
      const h = o.thin && r() < 0.7 ? U01(0.3, 1.5) : U01(3, 18);
      gtBoxes.set([U01(6, o.size - 6), U01(6, o.size - 6), w, h, angle()], 5 * at);
    }
  }
  const predBoxes = new Float32Array(B * A * 5);
  for (let b = 0; b < B; b++) {
    for (let a = 0; a < A; a++) {
      const [ax, ay] = [anchors[2 * a], anchors[2 * a + 1]];
      const holders: number[] = [];
      for (let j = 0; j < M; j++) if (gtMask[b * M + j] === 1 && inRotatedBox(gtBoxes, 5 * (b * M + j), ax, ay)) holders.push(j);
      let p: number[];
      if (holders.length && r() < 0.85) {
        // near one of the gts that hold the anchor, as a trained head predicts
        const at = 5 * (b * M + holders[Math.floor(r() * holders.length)]);
        const g = gtBoxes.subarray(at, at + 5);
        const [cx, cy, w, h, t] = [g[0], g[1], g[2], g[3], g[4]];
        p = [cx + U01(-0.3, 0.3) * w, cy + U01(-0.3, 0.3) * h, w * U01(0.6, 1.4), h * U01(0.6, 1.4), t + U01(-0.5, 0.5)];
      } else {
        const h = o.thin && r() < 0.5 ? U01(0.05, 1) : U01(2, 16);
        p = [ax + U01(-3, 3), ay + U01(-3, 3), U01(2, 20), h, angle()];
      }
      predBoxes.set(p, 5 * (b * A + a));
    }
  }
  const scores = new Float32Array(B * A * C);
  for (let i = 0; i < scores.length; i++) scores[i] = U01(0.02, 0.98);
  return {
    inputs: {
      scores: { data: scores, shape: [B, A, C] },
      predBoxes: { data: predBoxes, shape: [B, A, 5] },
      anchors: { data: anchors, shape: [A, 2] },
      gtLabels: { data: gtLabels, shape: [B, M] },
      gtBoxes: { data: gtBoxes, shape: [B, M, 5] },
      gtMask: { data: gtMask, shape: [B, M] },
    },
    dims: { b: B, a: A, c: C, m: M },
    params: { topk: o.topk, alpha: o.alpha ?? 0.5, beta: o.beta ?? 6, eps: 1e-9 },
  };
}

/**
 * The smallest of the in-box test's four margins over its float32 error bound (> 1: clear). With
 * K = max(|cx|, |cy|) + |w| + |h|: each corner carries about 4uK (the sums, cos and sin good to a
 * rounding or two), an edge vector b - a or d - a twice that; then
 *   ap.ab errs by  4uK |ab| + 8uK |ap| + 2u |ap| |ab|,  |ab|^2 by  16uK |ab| + 2u |ab|^2,
 * and a margin must exceed four times its bound.
 */
function inBoxClearance(g: ArrayLike<number>, o: number, px: number, py: number): number {
  const cx = g[o], cy = g[o + 1], w = g[o + 2], h = g[o + 3], t = g[o + 4];
  const c = Math.cos(t), s = Math.sin(t);
  const v1x = (w / 2) * c, v1y = (w / 2) * s, v2x = (-h / 2) * s, v2y = (h / 2) * c;
  const ax = cx + v1x + v2x, ay = cy + v1y + v2y;
  const abx = -2 * v2x, aby = -2 * v2y, adx = -2 * v1x, ady = -2 * v1y;
  const apx = px - ax, apy = py - ay;
  const pab = apx * abx + apy * aby, pad = apx * adx + apy * ady;
  const nab = abx * abx + aby * aby, nad = adx * adx + ady * ady;
  const K = Math.max(Math.abs(cx), Math.abs(cy)) + Math.abs(w) + Math.abs(h);
  const ap = Math.hypot(apx, apy), lab = Math.sqrt(nab), lad = Math.sqrt(nad);
  const dot = (l: number) => 4 * U * K * l + 8 * U * K * ap + 2 * U * ap * l;
  const norm = (l: number) => 16 * U * K * l + 2 * U * l * l;
  const SAFE = 4;
  return Math.min(
    Math.abs(pab) / (SAFE * dot(lab)),
    Math.abs(nab - pab) / (SAFE * (dot(lab) + norm(lab))),
    Math.abs(pad) / (SAFE * dot(lad)),
    Math.abs(nad - pad) / (SAFE * (dot(lad) + norm(lad))),
  );
}

/** What the replay finds: why the case may differ in float32 ('' when clear), its target score intervals, and how much it exercises. */
export interface Replay {
  tie: string;
  tsLo: Float64Array;
  tsHi: Float64Array;
  foreground: number;
  /** Anchors that two or more gts selected (the argmax of overlaps decided them). */
  conflicts: number;
  /** Candidates selected with a metric of exactly 0 (the top k filled by index). */
  zeroSelected: number;
}

export function replay(d: Drawn): Replay {
  const { b: B, a: A, c: C, m: M } = d.dims;
  const { topk, alpha, beta, eps } = d.params;
  const k = Math.min(topk, A);
  const sc = d.inputs.scores.data, pb = d.inputs.predBoxes.data, an = d.inputs.anchors.data;
  const gl = d.inputs.gtLabels.data, gb = d.inputs.gtBoxes.data, gm = d.inputs.gtMask.data;
  const tsLo = new Float64Array(B * A), tsHi = new Float64Array(B * A);
  const out: Replay = { tie: '', tsLo, tsHi, foreground: 0, conflicts: 0, zeroSelected: 0 };
  for (let b = 0; b < B; b++) {
    const ov = new Float64Array(M * A), oLo = new Float64Array(M * A), oHi = new Float64Array(M * A);
    const met = new Float64Array(M * A), mLo = new Float64Array(M * A), mHi = new Float64Array(M * A);
    const cand = new Uint8Array(M * A);
    const count = new Int32Array(A), selBy = new Int32Array(A), owner = new Int32Array(A);
    for (let j = 0; j < M; j++) {
      if (gm[b * M + j] !== 1) continue;
      const go = 5 * (b * M + j);
      for (let a = 0; a < A; a++) {
        const clear = inBoxClearance(gb, go, an[2 * a], an[2 * a + 1]);
        if (!(clear > 1)) return { ...out, tie: `image ${b} gt ${j} anchor ${a}: the in-box test is within rounding (${clear.toFixed(2)} of its bound)` };
        if (!inRotatedBox(gb, go, an[2 * a], an[2 * a + 1])) continue;
        const p = j * A + a;
        cand[p] = 1;
        const raw = probiouValue(gb, go, pb, 5 * (b * A + a), ROTATED_OVERLAP_EPS);
        ov[p] = Math.max(raw, 0);
        const zero = raw <= -2e-8;
        oLo[p] = zero ? 0 : Math.max(ov[p] - E_OV, 0);
        oHi[p] = zero ? 0 : ov[p] + E_OV;
        const sa = sc[(b * A + a) * C + gl[b * M + j]] ** alpha;
        met[p] = sa * ov[p] ** beta;
        mLo[p] = sa * oLo[p] ** beta * (1 - 8 * U);
        mHi[p] = sa * oHi[p] ** beta * (1 + 8 * U);
      }
    }
    for (let j = 0; j < M; j++) {
      if (gm[b * M + j] !== 1) continue;
      const idx = Array.from({ length: A }, (_, i) => i).sort((u, v) => met[j * A + v] - met[j * A + u] || u - v);
      let minLoIn = Infinity, maxHiOut = -Infinity;
      for (let r = 0; r < A; r++) {
        const p = j * A + idx[r];
        if (r < k) minLoIn = Math.min(minLoIn, mLo[p]);
        else maxHiOut = Math.max(maxHiOut, mHi[p]);
      }
      if (!(minLoIn > maxHiOut)) {
        for (let r = 0; r < A; r++) {
          const p = j * A + idx[r];
          const contested = r < k ? mLo[p] <= maxHiOut : mHi[p] >= minLoIn;
          if (contested && mHi[p] > 0) return { ...out, tie: `image ${b} gt ${j}: the top ${k} is within rounding at anchor ${idx[r]}` };
        }
      }
      for (let r = 0; r < k; r++) {
        const a = idx[r];
        if (!cand[j * A + a]) continue;
        count[a]++;
        selBy[a] = j;
        if (met[j * A + a] === 0) out.zeroSelected++;
      }
    }
    for (let a = 0; a < A; a++) {
      if (count[a] === 1) owner[a] = selBy[a];
      if (count[a] < 2) continue;
      out.conflicts++;
      let w = 0;
      for (let j = 1; j < M; j++) if (ov[j * A + a] > ov[w * A + a]) w = j;
      owner[a] = w;
      for (let j = 0; j < M; j++) {
        if (j === w) continue;
        const both0 = oHi[j * A + a] === 0 && oHi[w * A + a] === 0;
        if (!both0 && oHi[j * A + a] >= oLo[w * A + a]) return { ...out, tie: `image ${b} anchor ${a}: its overlaps with gts ${w} and ${j} are within rounding` };
      }
    }
    const maxM = [new Float64Array(M), new Float64Array(M)], maxO = [new Float64Array(M), new Float64Array(M)];
    for (let a = 0; a < A; a++) {
      if (count[a] === 0) continue;
      const p = owner[a] * A + a;
      maxM[0][owner[a]] = Math.max(maxM[0][owner[a]], mLo[p]);
      maxM[1][owner[a]] = Math.max(maxM[1][owner[a]], mHi[p]);
      maxO[0][owner[a]] = Math.max(maxO[0][owner[a]], oLo[p]);
      maxO[1][owner[a]] = Math.max(maxO[1][owner[a]], oHi[p]);
    }
    for (let a = 0; a < A; a++) {
      if (count[a] === 0) continue;
      out.foreground++;
      const j = owner[a], p = j * A + a;
      tsLo[b * A + a] = ((mLo[p] * maxO[0][j]) / (maxM[1][j] + eps)) * (1 - 8 * U);
      tsHi[b * A + a] = ((mHi[p] * maxO[1][j]) / (maxM[0][j] + eps)) * (1 + 8 * U) + 2 ** -110;
    }
  }
  return out;
}
