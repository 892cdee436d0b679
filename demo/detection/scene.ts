/**
 * A detector's raw output, made up from a seed: a few objects, each seen as a cluster of jittered
 * boxes whose scores fall off as they stray from the object, and low-score boxes scattered over the
 * image. What NMS is for: one box per object should survive.
 *
 * Coordinates are multiples of 1/16 pixel and scores are float32 numbers, so the arrays hold exactly
 * what was generated, and shifting a box by a class offset (see `classOffsetBoxes`) is exact.
 */

/** The image the boxes live in (the canvas), in pixels. */
export const WIDTH = 640;
export const HEIGHT = 400;
/** The box counts the page offers, and the one it opens with. */
export const COUNTS = [250, 500, 1000, 2000];
export const DEFAULT_COUNT = 1000;
/** How many classes the objects are drawn from. */
export const CLASSES = 3;

/** The generated detections: boxes [n, 4] xyxy, scores [n], classes [n], and the objects they came from. */
export interface Scene {
  seed: number;
  n: number;
  boxes: Float32Array;
  scores: Float32Array;
  classes: Int32Array;
  /** The true boxes (xyxy) and their classes, for drawing. */
  objects: { box: [number, number, number, number]; cls: number }[];
}

/** A seeded uniform generator on [0, 1) (mulberry32). */
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

/** A standard normal sample (Box-Muller) from `rand`. */
const normal = (rand: () => number) => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
/** `v` clamped to [0, max] and rounded to 1/16 pixel. */
const grid = (v: number, max: number) => Math.round(Math.min(Math.max(v, 0), max) * 16) / 16;

/** IoU of two xyxy boxes (for the scores only; NMS computes its own). */
function iou(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

/** The share of the boxes that is scattered noise; the rest are clusters around the objects. */
const NOISE_SHARE = 0.2;

/**
 * `n` detections from `seed`: 3 to 6 objects of CLASSES classes, the second overlapping the first; 80% of the boxes in clusters around
 * them (centre jittered by about 8% of the size, sides scaled by about 10%; score = the object's
 * confidence times a factor that falls with the box's IoU to the object), 20% scattered with scores
 * under 0.2. The boxes come shuffled, as a detector's anchors would not list them by object.
 *
 * @example
 * const s = makeScene(7, 1000);
 * await dl.nms(s.boxes, s.scores, { iouThreshold: 0.5 });
 */
export function makeScene(seed: number, n: number): Scene {
  const rand = rng(seed);
  const count = 3 + Math.floor(rand() * 4);
  const objects: Scene['objects'] = [];
  for (let k = 0; k < count; k++) {
    const w = 50 + rand() * 140;
    const h = 40 + rand() * 120;
    let x = rand() * (WIDTH - w);
    let y = rand() * (HEIGHT - h);
    if (k === 1) {
      // The second object partly hides the first (another class): class-agnostic NMS can lose one of them.
      const [x1, y1, x2, y2] = objects[0].box;
      x = Math.min(Math.max((x1 + x2) / 2 + (rand() < 0.5 ? -1 : 1) * 0.35 * (x2 - x1) - w / 2, 0), WIDTH - w);
      y = Math.min(Math.max((y1 + y2) / 2 + (rand() - 0.5) * 0.4 * (y2 - y1) - h / 2, 0), HEIGHT - h);
    }
    objects.push({ box: [grid(x, WIDTH), grid(y, HEIGHT), grid(x + w, WIDTH), grid(y + h, HEIGHT)], cls: k % CLASSES });
  }
  const confidence = objects.map(() => 0.6 + 0.35 * rand());
  const rows: { box: number[]; score: number; cls: number }[] = [];
  const clustered = n - Math.round(n * NOISE_SHARE);
  for (let i = 0; i < n; i++) {
    if (i < clustered) {
      const k = i % count;
      const [x1, y1, x2, y2] = objects[k].box;
      const w = (x2 - x1) * Math.exp(0.1 * normal(rand));
      const h = (y2 - y1) * Math.exp(0.1 * normal(rand));
      const cx = (x1 + x2) / 2 + 0.08 * (x2 - x1) * normal(rand);
      const cy = (y1 + y2) / 2 + 0.08 * (y2 - y1) * normal(rand);
      const box = [grid(cx - w / 2, WIDTH), grid(cy - h / 2, HEIGHT), grid(cx + w / 2, WIDTH), grid(cy + h / 2, HEIGHT)];
      const score = confidence[k] * iou(box, objects[k].box) ** 2 * (0.8 + 0.2 * rand());
      rows.push({ box, score, cls: objects[k].cls });
    } else {
      const w = 15 + rand() * 110;
      const h = 15 + rand() * 90;
      const x = rand() * (WIDTH - w);
      const y = rand() * (HEIGHT - h);
      rows.push({ box: [grid(x, WIDTH), grid(y, HEIGHT), grid(x + w, WIDTH), grid(y + h, HEIGHT)], score: 0.2 * rand(), cls: Math.floor(rand() * CLASSES) });
    }
  }
  // Shuffle (Fisher-Yates), so that the indices say nothing about the objects.
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [rows[i], rows[j]] = [rows[j], rows[i]];
  }
  const boxes = new Float32Array(n * 4);
  const scores = new Float32Array(n);
  const classes = new Int32Array(n);
  rows.forEach((r, i) => {
    boxes.set(r.box, i * 4);
    scores[i] = r.score;
    classes[i] = r.cls;
  });
  return { seed, n, boxes, scores, classes, objects };
}

/**
 * The boxes shifted by `class * 1024` on both axes: `torchvision.ops.batched_nms`'s trick for running
 * class-aware NMS through a class-agnostic one (tf.image's NMS takes no classes). Boxes of different
 * classes then never overlap. 1024 exceeds every coordinate, and the shifted values stay exact in float32.
 */
export function classOffsetBoxes(boxes: Float32Array, classes: Int32Array): Float32Array {
  const out = new Float32Array(boxes.length);
  for (let i = 0; i < classes.length; i++) for (let k = 0; k < 4; k++) out[i * 4 + k] = boxes[i * 4 + k] + classes[i] * 1024;
  return out;
}
