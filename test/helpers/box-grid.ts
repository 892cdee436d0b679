/**
 * Boxes on a small integer grid for the box kernels' edge cases (issue 9, defect 1): zero widths and
 * heights, inverted boxes, shared edges, identical boxes, and zeros of both signs in coordinates and
 * in widths and heights. Shared by the Node and the Chromium tests of `iou_loss` and `pairwise_iou`.
 */

export const EDGE_FORMATS = ['xyxy', 'cxcywh', 'xywh'] as const;
export type EdgeFormat = (typeof EDGE_FORMATS)[number];

/** The box of centre (cx, cy) and size (w, h) in `format`, as the four numbers that format stores. */
export function boxIn(format: EdgeFormat, cx: number, cy: number, w: number, h: number): number[] {
  if (format === 'cxcywh') return [cx, cy, w, h];
  if (format === 'xywh') return [cx - w / 2, cy - h / 2, w, h];
  return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];
}

/** Every `iou_loss` variant and mode. */
export const LOSS_VARIANTS = [
  { variant: 'iou', mode: 'linear' },
  { variant: 'iou', mode: 'square' },
  { variant: 'iou', mode: 'log' },
  { variant: 'giou' },
  { variant: 'diou' },
  { variant: 'ciou' },
  { variant: 'eiou' },
  { variant: 'siou' },
] as const;
export const PAIR_VARIANTS = ['iou', 'giou', 'diou', 'ciou'] as const;

/** The pairs of issue 9, defect 1 (CIoU), each to run as one pair: `p` is pred or `a`, `t` target or `b`. */
export const REPORTED: { what: string; op: 'iou_loss' | 'pairwise_iou'; format: EdgeFormat; p: number[]; t: number[] }[] = [
  { what: 'zero widths, target inverted', op: 'iou_loss', format: 'xyxy', p: [0, 0, 0, 1], t: [0, 1, 0, 0] },
  { what: 'identical, target width -0', op: 'iou_loss', format: 'xywh', p: [0, 0, 0, 1], t: [0, 0, -0, 1] },
  { what: 'zero height against an inverted zero width', op: 'iou_loss', format: 'xyxy', p: [0, 0, 2, 0], t: [0, 1, 0, 0] },
  { what: 'pairwise, inverted zero width first', op: 'pairwise_iou', format: 'xyxy', p: [0, 1, 0, 0], t: [0, 0, 0, 1] },
];

/**
 * Per axis, the (first, second) numbers of a box in each format: for xyxy (x1, x2) over
 * {0, -0, 1, 2} (zero lengths with each sign, inverted, shared ends); for xywh (x, w) and cxcywh
 * (cx, w) with w in {0, -0, 1, -1, 2}.
 */
function axes(format: EdgeFormat): [number, number][] {
  const out: [number, number][] = [];
  if (format === 'xyxy') {
    for (const a of [0, -0, 1, 2]) for (const b of [0, -0, 1, 2]) out.push([a, b]);
  } else {
    const starts = format === 'xywh' ? [0, -0, 1] : [0, -0, 0.5];
    for (const a of starts) for (const w of [0, -0, 1, -1, 2]) out.push([a, w]);
  }
  return out;
}

/** Every box of the grid in `format` (x and y axes crossed): 256 for xyxy, 225 for the others. */
export function gridBoxes(format: EdgeFormat): number[][] {
  const ax = axes(format);
  const out: number[][] = [];
  for (const [x0, x1] of ax) for (const [y0, y1] of ax) out.push([x0, y0, x1, y1]);
  return out;
}

/** xorshift32 integers in [0, n). */
function picker(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
}

/** The box with each zero's sign flipped. */
export const flipZeros = (b: number[]) => b.map((v) => (v === 0 ? (Object.is(v, -0) ? 0 : -0) : v));

/**
 * Pairs to run one per call: `count` seeded picks from the grid, every box of a seeded subset against
 * itself and against itself with its zeros' signs flipped.
 */
export function singlePairs(format: EdgeFormat, count: number, seed: number): [number[], number[]][] {
  const boxes = gridBoxes(format);
  const pick = picker(seed);
  const out: [number[], number[]][] = [];
  for (let i = 0; i < count; i++) out.push([boxes[pick(boxes.length)], boxes[pick(boxes.length)]]);
  for (let i = 0; i < count / 4; i++) {
    const b = boxes[pick(boxes.length)];
    out.push([b, b], [b, flipZeros(b)], [flipZeros(b), b]);
  }
  return out;
}

/** Every ordered pair of the grid, as two flat arrays of n boxes. */
export function allPairs(format: EdgeFormat): { p: Float32Array; t: Float32Array; n: number } {
  const boxes = gridBoxes(format);
  const n = boxes.length * boxes.length;
  const p = new Float32Array(4 * n);
  const t = new Float32Array(4 * n);
  let k = 0;
  for (const a of boxes) {
    for (const b of boxes) {
      p.set(a, 4 * k);
      t.set(b, 4 * k);
      k++;
    }
  }
  return { p, t, n };
}

/** Printable box, with -0 shown. */
export const showBox = (b: ArrayLike<number>) => `[${Array.from(b, (v) => (Object.is(v, -0) ? '-0' : String(v))).join(',')}]`;

/** Float32 bit patterns of a box list, to carry -0 across JSON (page.evaluate) unchanged. */
export const toBits = (a: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(a).buffer));
export const fromBits = (bits: number[]) => new Float32Array(Uint32Array.from(bits).buffer);

/**
 * The tolerance of float32 against the float64 reference: `atol + rtol * |want|` with atol 1e-4 and
 * rtol 1e-3 for values of order 1. On this grid every coordinate, size, centre and area is exact in
 * float32, so the error is in the few operations after them; but some pairs of degenerate and
 * inverted boxes leave only eps in a denominator (EIoU's `ch*ch + eps`, DIoU's `c2`), giving
 * losses near 1e7 and gradients whose parts near 2e7 cancel (`g_x1 + g_x2` in xywh and cxcywh),
 * where one float32 rounding is already about 1. `scale` (the row's largest |value| in the
 * reference) adds 1e-6 * scale to atol, about 8 float32 roundings of the largest part. `'ok'` or
 * what differs.
 */
export function compare(got: ArrayLike<number>, want: ArrayLike<number>, scale = 0, atol = 1e-4, rtol = 1e-3): string {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  const tol = atol + 1e-6 * scale;
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol + rtol * Math.abs(want[i]))) return `[${i}] ${got[i]} vs ${want[i]}`;
  }
  return 'ok';
}

/** The largest |value| of a row of the reference: its loss and its gradient. */
export const rowScale = (loss: number, grad: ArrayLike<number> = []) => Math.max(Math.abs(loss), ...Array.from(grad, Math.abs));
