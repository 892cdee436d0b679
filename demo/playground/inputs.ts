/** Random inputs for any op of the catalogue, made from its descriptor. */
import type { OpDescriptor } from 'detloss';

type Tensor = { data: Float32Array | Int32Array; shape: number[] };

/** Size given to every dimension other than the rows (classes, bins, the `m` of a matrix). */
export const INNER_DIM = 16;

/** A small seeded generator (xorshift32), uniform in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** Ops whose `targets` are -1 or +1 (ops.md, "More classification and ranking losses"). */
const SIGN_TARGETS = new Set(['hinge', 'hinge_embedding', 'margin_ranking', 'exponential']);

/** `n` boxes in xyxy, 4 to 64 pixels a side, anywhere in 500 x 500. */
function boxes(n: number, r: () => number): Float32Array {
  const b = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const x = r() * 500;
    const y = r() * 500;
    b.set([x, y, x + 4 + r() * 60, y + 4 + r() * 60], i * 4);
  }
  return b;
}

/** `target` jittered by up to 8 pixels per coordinate, at least 1 pixel a side. */
function jittered(target: Float32Array, r: () => number): Float32Array {
  const b = target.map((v) => v + (r() - 0.5) * 16);
  for (let i = 0; i < b.length; i += 4) {
    b[i + 2] = Math.max(b[i + 2], b[i] + 1);
    b[i + 3] = Math.max(b[i + 3], b[i + 1] + 1);
  }
  return b;
}

/** `n` rotated boxes (cx, cy, w, h, theta): 4 to 64 pixels a side, anywhere in 500 x 500, any angle. */
function rotatedBoxes(n: number, r: () => number): Float32Array {
  const b = new Float32Array(n * 5);
  for (let i = 0; i < n; i++) b.set([r() * 500, r() * 500, 4 + r() * 60, 4 + r() * 60, (r() - 0.5) * 2 * Math.PI], i * 5);
  return b;
}

/** Rotated `target` boxes moved by up to 8 pixels, sides scaled by 0.8 to 1.2, turned by up to 0.3 rad. */
function turned(target: Float32Array, r: () => number): Float32Array {
  const b = new Float32Array(target.length);
  for (let i = 0; i < b.length; i += 5) {
    b.set([target[i] + (r() - 0.5) * 16, target[i + 1] + (r() - 0.5) * 16, target[i + 2] * (0.8 + 0.4 * r()), target[i + 3] * (0.8 + 0.4 * r()), target[i + 4] + (r() - 0.5) * 0.6], i);
  }
  return b;
}

/**
 * The required inputs of `op` with `n` rows: boxes for the box losses, rotated ones for the
 * rotated losses (the prediction near its target), values in [-3, 3] for regression, -1 or +1 for the margin losses' targets, [0, 1] for
 * the others, labels in [0, INNER_DIM).
 *
 * @example
 * const inputs = randomInputs(OPS.iou_loss, 10_000, 7); // { pred: { data, shape: [10000, 4] }, target: ... }
 */
export function randomInputs(op: OpDescriptor, n: number, seed: number): Record<string, Tensor> {
  const r = rng(seed);
  const out: Record<string, Tensor> = {};
  const names = Object.entries(op.inputs).filter(([, spec]) => !spec.optional);
  // Targets first, so a prediction can be made near its target.
  names.sort(([, a], [, b]) => Number(!!a.grad) - Number(!!b.grad));
  for (const [name, spec] of names) {
    const shape = spec.shape.map((d) => (typeof d === 'number' ? d : d === op.rows ? n : INNER_DIM));
    const count = shape.reduce((a, d) => a * d, 1);
    if (spec.dtype === 'i32') {
      out[name] = { data: Int32Array.from({ length: count }, () => Math.floor(r() * INNER_DIM)), shape };
    } else if (name === 'targets' && SIGN_TARGETS.has(op.name)) {
      out[name] = { data: Float32Array.from({ length: count }, () => (r() < 0.5 ? -1 : 1)), shape };
    } else if (op.family === 'iou' && shape[shape.length - 1] === 4) {
      const target = Object.values(out).find((t) => t.data.length === count && t.data instanceof Float32Array);
      out[name] = { data: spec.grad && target ? jittered(target.data as Float32Array, r) : boxes(count / 4, r), shape };
    } else if (op.family === 'rotated' && shape[shape.length - 1] === 5) {
      const target = Object.values(out).find((t) => t.data.length === count && t.data instanceof Float32Array);
      out[name] = { data: spec.grad && target ? turned(target.data as Float32Array, r) : rotatedBoxes(count / 5, r), shape };
    } else {
      const [lo, hi] = op.family === 'regression' ? [-3, 3] : [0, 1];
      out[name] = { data: Float32Array.from({ length: count }, () => lo + r() * (hi - lo)), shape };
    }
  }
  return out;
}
