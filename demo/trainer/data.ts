/**
 * Synthetic scenes for the training demo, made in the page from a seed: small RGB images with one
 * to three filled axis-aligned rectangles of three colour classes on a noisy background, and the
 * per-cell targets of a stride-8 anchor-free head (positive cells: those whose centre lies in a
 * box's centre region).
 */

/** Image side in pixels. */
export const SIZE = 64;
/** The head's stride: one cell per 8 x 8 pixels. */
export const STRIDE = 8;
/** Cells per side. */
export const GRID = SIZE / STRIDE;
/** Cells per image. */
export const CELLS = GRID * GRID;
/** Object classes; label `CLASSES` is background. */
export const CLASSES = 3;
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

/** One scene: 1-3 rectangles 10-36 px a side, at least 2 px apart, on a grey noisy background. */
export function makeScene(rand: () => number): Scene {
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const want = int(1, 3);
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

/** Per-cell targets of a batch of scenes, flattened over (image, row, column). */
export interface BatchTargets {
  /** B x SIZE x SIZE x 3. */
  pixels: Float32Array;
  /** [B*CELLS]: the class of the box a cell is assigned to, or CLASSES (background). */
  labels: Int32Array;
  /** [B*CELLS, 4]: the assigned box, xyxy in pixels (zeros for background). */
  boxes: Float32Array;
  /** [B*CELLS]: 1 for a positive cell, else 0. */
  mask: Float32Array;
  /** The indices of the positive cells, ascending. */
  positives: Int32Array;
}

/**
 * A cell is positive for a box when its centre lies within max(w/4, 4) px of the box centre
 * horizontally and max(h/4, 4) px vertically: every box of 10 px or more gets at least one cell,
 * and (boxes being apart) no cell gets two.
 */
export function batchTargets(scenes: readonly Scene[]): BatchTargets {
  const n = scenes.length;
  const pixels = new Float32Array(n * SIZE * SIZE * 3);
  const labels = new Int32Array(n * CELLS).fill(CLASSES);
  const boxes = new Float32Array(n * CELLS * 4);
  const mask = new Float32Array(n * CELLS);
  const positives: number[] = [];
  scenes.forEach((s, i) => {
    pixels.set(s.pixels, i * s.pixels.length);
    for (let r = 0; r < GRID; r++) {
      for (let c = 0; c < GRID; c++) {
        const cx = (c + 0.5) * STRIDE;
        const cy = (r + 0.5) * STRIDE;
        const b = s.boxes.find((b) => {
          const rx = Math.max((b.x2 - b.x1) / 4, STRIDE / 2);
          const ry = Math.max((b.y2 - b.y1) / 4, STRIDE / 2);
          return Math.abs(cx - (b.x1 + b.x2) / 2) <= rx && Math.abs(cy - (b.y1 + b.y2) / 2) <= ry;
        });
        if (!b) continue;
        const cell = i * CELLS + r * GRID + c;
        labels[cell] = b.label;
        boxes.set([b.x1, b.y1, b.x2, b.y2], cell * 4);
        mask[cell] = 1;
        positives.push(cell);
      }
    }
  });
  return { pixels, labels, boxes, mask, positives: Int32Array.from(positives) };
}
