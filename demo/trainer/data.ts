/**
 * Synthetic scenes for the training demo, made in the page from a seed: small RGB images with one
 * to three filled axis-aligned rectangles of three colour classes on a noisy background, and each
 * batch's ground truth as a YOLO loss takes it: per image up to MAX_OBJECTS boxes, padded.
 */

/** Image side in pixels. */
export const SIZE = 64;
/** Object classes. */
export const CLASSES = 3;
/** The most objects in a scene: the gt rows per image (M) of every batch. */
export const MAX_OBJECTS = 3;
export const CLASS_NAMES = ['red', 'green', 'blue'] as const;
const CLASS_RGB: readonly (readonly [number, number, number])[] = [
  [0.9, 0.2, 0.2],
  [0.2, 0.85, 0.3],
  [0.25, 0.35, 0.95],
];

/** A rectangle in pixels, xyxy, with its class. */
export interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  label: number;
}

export interface Scene {
  /** SIZE x SIZE x 3, row-major (HWC), values in [0, 1]. */
  pixels: Float32Array;
  boxes: Box[];
}

/** mulberry32: a small seeded generator of uniform numbers in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const apart = (a: Box, b: Box, gap: number) => a.x2 + gap <= b.x1 || b.x2 + gap <= a.x1 || a.y2 + gap <= b.y1 || b.y2 + gap <= a.y1;

/** One scene: 1 to MAX_OBJECTS rectangles 10-36 px a side, at least 2 px apart, on a grey noisy background. */
export function makeScene(rand: () => number): Scene {
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const want = int(1, MAX_OBJECTS);
  const boxes: Box[] = [];
  for (let tries = 0; boxes.length < want && tries < 100; tries++) {
    const w = int(10, 36);
    const h = int(10, 36);
    const x1 = int(0, SIZE - w);
    const y1 = int(0, SIZE - h);
    const b = { x1, y1, x2: x1 + w, y2: y1 + h, label: int(0, CLASSES - 1) };
    if (boxes.every((o) => apart(o, b, 2))) boxes.push(b);
  }
  const pixels = new Float32Array(SIZE * SIZE * 3);
  const base = 0.15 + 0.2 * rand();
  for (let i = 0; i < pixels.length; i++) pixels[i] = base + 0.08 * (rand() - 0.5);
  for (const b of boxes) {
    const rgb = CLASS_RGB[b.label].map((v) => v + 0.16 * (rand() - 0.5));
    for (let y = b.y1; y < b.y2; y++) {
      for (let x = b.x1; x < b.x2; x++) {
        const o = (y * SIZE + x) * 3;
        for (let k = 0; k < 3; k++) pixels[o + k] = rgb[k] + 0.06 * (rand() - 0.5);
      }
    }
  }
  return { pixels, boxes };
}

/** `count` scenes from `seed`. */
export function makeScenes(seed: number, count: number): Scene[] {
  const rand = rng(seed);
  return Array.from({ length: count }, () => makeScene(rand));
}

/** A batch of scenes: the images, and the ground truth padded to MAX_OBJECTS rows per image. */
export interface BatchTargets {
  /** B x SIZE x SIZE x 3. */
  pixels: Float32Array;
  /** The gt rows per image (M): MAX_OBJECTS. */
  rows: number;
  /** int32 [B, M]: the class of each box; 0 on padding rows. */
  gtLabels: Int32Array;
  /** [B, M, 4]: the boxes, xyxy in pixels; zeros on padding rows. */
  gtBoxes: Float32Array;
  /** int32 [B, M]: 1 for a real box, 0 for a padding row. */
  gtMask: Int32Array;
}

/** The images and ground truth of `scenes`, each scene's boxes first and padding rows after them. */
export function batchTargets(scenes: readonly Scene[]): BatchTargets {
  const n = scenes.length;
  const m = MAX_OBJECTS;
  const pixels = new Float32Array(n * SIZE * SIZE * 3);
  const gtLabels = new Int32Array(n * m);
  const gtBoxes = new Float32Array(n * m * 4);
  const gtMask = new Int32Array(n * m);
  scenes.forEach((s, i) => {
    pixels.set(s.pixels, i * s.pixels.length);
    s.boxes.forEach((b, j) => {
      gtLabels[i * m + j] = b.label;
      gtBoxes.set([b.x1, b.y1, b.x2, b.y2], (i * m + j) * 4);
      gtMask[i * m + j] = 1;
    });
  });
  return { pixels, rows: m, gtLabels, gtBoxes, gtMask };
}
