/**
 * What an exported ultralytics detector returns, [b, 4 + C, A], drawn for the YOLO post-process:
 * anchors at strides 8/16/32 of a square image (A = 8400 at 640 px), a few objects per image, and
 * at each anchor inside an object a jittered copy of its box with a score in its class of 0.3 to
 * 0.95; every other score is background (below 0.1). Shared by the benchmark, the tests and the
 * demo. Also boxes and scores of one class for the single-class NMS rows.
 */
import { rng } from '../demo/playground/inputs';

export interface DetectorShape {
  b: number;
  /** Image side in pixels (a multiple of 32). */
  size: number;
  c: number;
  /** Objects per image. */
  objects: number;
  seed: number;
}

/** The output [b, 4 + c, A] (flat) and its shape. */
export function detectorOutput(o: DetectorShape): { data: Float32Array; shape: [number, number, number] } {
  const r = rng(o.seed);
  const centres: [number, number, number][] = [];
  for (const s of [8, 16, 32]) {
    const k = o.size / s;
    for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) centres.push([(x + 0.5) * s, (y + 0.5) * s, s]);
  }
  const A = centres.length;
  const F = 4 + o.c;
  const data = new Float32Array(o.b * F * A);
  for (let g = 0; g < o.b; g++) {
    const objs = Array.from({ length: o.objects }, () => {
      const w = 24 + r() * (o.size / 3), h = 24 + r() * (o.size / 3);
      return { x: w / 2 + r() * (o.size - w), y: h / 2 + r() * (o.size - h), w, h, cls: Math.floor(r() * o.c) };
    });
    const at = (k: number, a: number) => (g * F + k) * A + a;
    for (let a = 0; a < A; a++) {
      const [cx, cy, s] = centres[a];
      // The object whose centre region holds this anchor, at a stride that suits its size.
      const obj = objs.find((b) => Math.abs(cx - b.x) < b.w / 4 && Math.abs(cy - b.y) < b.h / 4 && s <= Math.max(b.w, b.h) / 3);
      const [x, y, w, h] = obj
        ? [obj.x + (r() - 0.5) * 0.1 * obj.w, obj.y + (r() - 0.5) * 0.1 * obj.h, obj.w * (0.9 + 0.2 * r()), obj.h * (0.9 + 0.2 * r())]
        : [cx + (r() - 0.5) * s, cy + (r() - 0.5) * s, s * (1 + 3 * r()), s * (1 + 3 * r())];
      for (const [k, v] of [x, y, w, h].entries()) data[at(k, a)] = v;
      for (let c = 0; c < o.c; c++) data[at(4 + c, a)] = 0.1 * r() ** 3;
      if (obj) data[at(4 + obj.cls, a)] = 0.3 + 0.65 * r();
    }
  }
  return { data, shape: [o.b, F, A] };
}

/** n boxes of one class in clusters around n / 20 objects, corners [n, 4], and their scores. */
export function clusteredBoxes(n: number, seed: number, size = 640): { boxes: Float32Array; scores: Float32Array } {
  const r = rng(seed);
  const objects = Math.max(1, Math.round(n / 20));
  const centres = Array.from({ length: objects }, () => [r() * size, r() * size, 16 + r() * 80, 16 + r() * 80]);
  const boxes = new Float32Array(4 * n);
  const scores = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const [x, y, w, h] = centres[Math.floor(r() * objects)];
    const [jx, jy, jw, jh] = [x + (r() - 0.5) * 0.3 * w, y + (r() - 0.5) * 0.3 * h, w * (0.8 + 0.4 * r()), h * (0.8 + 0.4 * r())];
    boxes.set([jx - jw / 2, jy - jh / 2, jx + jw / 2, jy + jh / 2], 4 * i);
    scores[i] = r();
  }
  return { boxes, scores };
}
