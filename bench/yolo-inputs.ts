/**
 * Inputs of a YOLOv8-style head for the assigner and the YOLO loss: a square image at strides
 * 8/16/32, random DFL and class logits, and per image a few real gt boxes among M padded rows
 * (padding rows anywhere). Shared by the benchmark, the GPU tests and the fuzzer.
 */
import { rng } from '../demo/playground/inputs';
import { makeAnchors } from '../src/ops/anchors';

export interface Shaped {
  data: Float32Array | Int32Array;
  shape: number[];
}
type F = { data: Float32Array; shape: number[] };
type I = { data: Int32Array; shape: number[] };
/** `yolo_detection_loss`'s inputs. */
export interface YoloInputs {
  predDist: F;
  predScores: F;
  anchors: F;
  strides: F;
  gtLabels: I;
  gtBoxes: F;
  gtMask: I;
}
/** `tal_assign`'s inputs. */
export interface TalInputs {
  scores: F;
  predBoxes: F;
  anchors: F;
  gtLabels: I;
  gtBoxes: F;
  gtMask: I;
}

export interface YoloShape {
  /** Images. */
  b: number;
  /** Image side in pixels (a multiple of 32). */
  size: number;
  c: number;
  /** Bins per side. */
  r: number;
  /** gt rows per image, padded. */
  m: number;
  /** Real boxes per image (at most m): exactly this many, or a random count up to it with `vary`. */
  real: number;
  vary?: boolean;
  seed: number;
  strides?: number[];
}

/** The inputs of `yolo_detection_loss` for one head. */
export function yoloInputs(o: YoloShape): YoloInputs {
  const r = rng(o.seed);
  const strides = o.strides ?? [8, 16, 32];
  const head = makeAnchors(
    strides.map((s) => [o.size / s, o.size / s] as const),
    strides,
  );
  const a = head.count;
  const predDist = new Float32Array(o.b * a * 4 * o.r);
  for (let i = 0; i < predDist.length; i++) predDist[i] = (r() + r() + r() - 1.5) * 2;
  const predScores = new Float32Array(o.b * a * o.c);
  for (let i = 0; i < predScores.length; i++) predScores[i] = r() < 0.02 ? r() * 4 - 2 : -8 + r() * 6;
  const gtLabels = new Int32Array(o.b * o.m);
  const gtBoxes = new Float32Array(o.b * o.m * 4);
  const gtMask = new Int32Array(o.b * o.m);
  for (let b = 0; b < o.b; b++) {
    const count = Math.min(o.m, o.vary ? Math.floor(r() * (o.real + 1)) : o.real);
    // Real rows at random places among the m.
    const rows = Array.from({ length: o.m }, (_, i) => i);
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [rows[i], rows[j]] = [rows[j], rows[i]];
    }
    for (let k = 0; k < o.m; k++) gtLabels[b * o.m + k] = Math.floor(r() * o.c);
    for (let k = 0; k < count; k++) {
      const row = b * o.m + rows[k];
      const w = 8 + r() * o.size * 0.4;
      const h = 8 + r() * o.size * 0.4;
      const x = r() * (o.size - w);
      const y = r() * (o.size - h);
      // Multiples of 2^-4: exact in float32, and clear of anchor centres by at least that.
      const q = (v: number) => Math.round(v * 16) / 16;
      gtBoxes.set([q(x), q(y), q(x + w), q(y + h)], row * 4);
      gtMask[row] = 1;
    }
  }
  return {
    predDist: { data: predDist, shape: [o.b, a, 4 * o.r] },
    predScores: { data: predScores, shape: [o.b, a, o.c] },
    anchors: { data: head.anchors, shape: [a, 2] },
    strides: { data: head.strides, shape: [a] },
    gtLabels: { data: gtLabels, shape: [o.b, o.m] },
    gtBoxes: { data: gtBoxes, shape: [o.b, o.m, 4] },
    gtMask: { data: gtMask, shape: [o.b, o.m] },
  };
}

/**
 * The inputs of `tal_assign` the YOLO loss hands its assigner (ops.md, step 2): sigmoid scores, the
 * DFL boxes decoded and scaled to pixels, the anchors in pixels.
 */
export function talInputs(y: YoloInputs): TalInputs {
  const [b, a, d] = y.predDist.shape;
  const c = y.predScores.shape[2];
  const rbins = d / 4;
  const dist = y.predDist.data as Float32Array;
  const anchors = y.anchors.data as Float32Array;
  const strides = y.strides.data as Float32Array;
  const predBoxes = new Float32Array(b * a * 4);
  for (let i = 0; i < b * a; i++) {
    const k = i % a;
    const side = (s: number) => {
      const base = i * d + s * rbins;
      let m = -Infinity;
      for (let j = 0; j < rbins; j++) m = Math.max(m, dist[base + j]);
      let sum = 0;
      let e = 0;
      for (let j = 0; j < rbins; j++) {
        const q = Math.exp(dist[base + j] - m);
        sum += q;
        e += j * q;
      }
      return e / sum;
    };
    const [l, t, rr, bb] = [side(0), side(1), side(2), side(3)];
    const ax = anchors[2 * k];
    const ay = anchors[2 * k + 1];
    predBoxes.set([(ax - l) * strides[k], (ay - t) * strides[k], (ax + rr) * strides[k], (ay + bb) * strides[k]], i * 4);
  }
  const scores = Float32Array.from(y.predScores.data as Float32Array, (x) => 1 / (1 + Math.exp(-x)));
  const pixels = Float32Array.from(anchors, (v, i) => v * strides[i >> 1]);
  return {
    scores: { data: scores, shape: [b, a, c] },
    predBoxes: { data: predBoxes, shape: [b, a, 4] },
    anchors: { data: pixels, shape: [a, 2] },
    gtLabels: y.gtLabels,
    gtBoxes: y.gtBoxes,
    gtMask: y.gtMask,
  };
}
