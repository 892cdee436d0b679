/**
 * The fuzz case generator: for every op with a GPU kernel, random problems drawn around workgroup
 * and chunk boundaries, over every variant, format, mode and reduction, with and without weight,
 * gradOutput and avgFactor, params over their valid ranges (and, rarely, outside them, to hold the
 * GPU's refusals to the CPU's), value scales from 1e-6 to 1e5, logits to +-200, labels that are
 * ignored or background, and boxes from exact-integer grids as well as random ones; rotated boxes
 * (`rotatedPair`) random, thin (w/h to 1e4), tiny (to mmrotate's 1e-7 clamp and below), huge (to
 * 1e6), with zero or negative sides, identical, nearly identical, square, and turned by k pi (or
 * (h, w) by pi/2 + k pi), angles to 1e4, every rotated variant with its params. About one case
 * in seven (`NONFINITE_SHARE`) then has NaN, +Inf or -Inf put into one of its float inputs
 * (ops.md: non-finite input is never hidden; the runner holds it to test/fuzz/nonfinite.ts's rule;
 * for the assigner ops, whose numbers are unspecified then, to ./tal.ts's invariants). The
 * assigner's cases (`talCase`) draw heads, images and gt rows (crowded, small, on the grid,
 * padding, none). About one case in five of the fused ops (`TUNED_SHARE`, ./plans.ts) then gets a
 * random tuned launch plan for its op family and size class, run on a context holding it. Every
 * case is a pure function of (seed, index): `generateCase(seed, i)` regenerates case i alone.
 */
import { Rng, caseSeed } from './prng';
import { TUNED_SHARE, drawCasePlan, type CasePlan } from './plans';

export type HostData = Float32Array | Int32Array;
export type FuzzInput = HostData | { data: HostData; shape: number[] };

/** The share of cases with a NaN or an infinity put into an input. */
export const NONFINITE_SHARE = 0.15;

/** One generated problem. `inputs` and `options` go to `dl.run` and `cpu.run` unchanged. */
export interface FuzzCase {
  op: string;
  seed: number;
  index: number;
  inputs: Record<string, FuzzInput>;
  options: Record<string, unknown>;
  /**
   * `'wg'`: run on a context with `rowThreshold: 0` (a workgroup per row); `'default'`: 512.
   * `'hw'` (NMS): on a context with the hardware plan, whose passes are the decision bits of every
   * pair and the scan, where a software adapter's default runs nms_walk.
   */
  rows: 'default' | 'wg' | 'hw';
  /** Sizes of the symbolic dimensions (n, m, c, k, p). */
  dims: Record<string, number>;
  /** Short words on how the case was drawn (for the summary). */
  tags: string[];
  /** Where a NaN or an infinity was put, when one was (`nonFinite` below). */
  nonFinite?: { input: string; value: number; count: number };
  /**
   * A random tuned plan for the case's op family and size class (./plans.ts, a share of the fused
   * ops' cases): the case runs on a context holding it, whatever `rows` says, and must run it.
   */
  plan?: CasePlan;
}

/** Every op that has a GPU kernel (src/ops/registry.ts). */
export const FUZZ_OPS = [
  'l1', 'mse', 'smooth_l1', 'huber', 'balanced_l1',
  'iou_loss', 'pairwise_iou', 'rotated_iou_loss', 'pairwise_probiou',
  'sigmoid_focal', 'quality_focal', 'distribution_focal', 'varifocal', 'bce_with_logits', 'cross_entropy', 'kl_div', 'dice',
  'softmax_focal', 'class_balanced_focal', 'nll', 'hinge', 'hinge_embedding', 'margin_ranking', 'exponential',
  'ap_loss', 'rank_sort',
  'tal_assign', 'yolo_detection_loss',
  'nms', 'nms_onnx', 'nms_tfjs',
] as const;

const ROW_OPS = new Set(['quality_focal', 'distribution_focal', 'cross_entropy', 'kl_div', 'dice', 'softmax_focal', 'class_balanced_focal', 'nll']);

/** A target of the margin and ranking losses: -1 or +1. */
const sign = (r: Rng) => (r.chance(0.5) ? 1 : -1);
const f32 = (xs: ArrayLike<number>) => Float32Array.from(xs as ArrayLike<number>);

/** ops.md's "More box losses" params for an `iou_loss` case whose variant (and mode) are drawn (issue 14). */
function iouMoreParams(r: Rng, o: Record<string, unknown>): void {
  const v = o.variant as string;
  if (v === 'ciou' && r.chance(0.3)) o.ciouAlpha = 'mmdet';
  const linear = o.mode === undefined || o.mode === 'linear';
  if (['iou', 'giou', 'diou', 'ciou'].includes(v) && linear && o.ciouAlpha !== 'mmdet' && r.chance(0.35)) o.power = r.pick([1, 1.5, 2, 3, 5]);
  if (r.chance(0.25)) o.innerRatio = r.pick([0.5, 0.75, 0.9, 1.25, 1.5, 2]);
  if (r.chance(0.25)) o.focaler = r.pick([[0, 1], [0, 0.95], [0.1, 0.9], [0.2, 0.8], [0.5, 0.51]]);
  if (v === 'mpdiou') o.imageSize = r.pick([[640, 640], [1, 1], [100, 50], [1e-3, 1e-3], [1e5, 1e4]]);
  if (v === 'shape' && r.chance(0.8)) o.scale = r.pick([0, 0.5, 0.7, 1, 2]);
  if (v === 'wiou') {
    if (r.chance(0.8)) o.wiouVersion = r.pick([1, 2, 3]);
    if (r.chance(0.6)) o.iouMean = r.pick([0.05, 0.3, 0.6, 1, 2]);
    if (r.chance(0.3)) o.wiouAlpha = r.pick([1.1, 1.4, 1.9, 2.5]); // v3 refuses alpha <= 1
    if (r.chance(0.3)) o.wiouDelta = r.pick([0.5, 2, 3, 4]);
  }
}

/** n: the sizes that sit on workgroup (64), chunk and reduction boundaries; the big ones rarely. */
function drawN(r: Rng, big: boolean): number {
  return r.weighted<number>([
    [0, 2], [1, 8], [2, 4], [3, 2], [5, 2], [63, 1], [64, 1], [65, 1], [255, 2], [256, 2], [257, 2], [1000, 1], [4097, 1.5],
    [65537, big ? 0.6 : 0],
  ]);
}

/** Row length (c, k, p): small, and around the row threshold (512). */
function drawRow(r: Rng): number {
  return r.weighted<number>([[1, 2], [2, 3], [3, 1], [5, 2], [17, 2], [80, 2], [255, 0.5], [511, 1], [512, 1], [513, 1]]);
}

function drawScale(r: Rng): number {
  return r.weighted<number>([[1e-6, 1], [1e-3, 1], [1, 3], [30, 1], [1e3, 1], [1e5, 1]]);
}

/** A logit: mostly moderate, sometimes large (to +-200), sometimes exactly 0 or +-100/+-200. */
function logit(r: Rng, scale: number): number {
  const u = r.next();
  if (u < 0.05) return 0;
  if (u < 0.1) return r.pick([-200, -100, 100, 200, -88, 88]);
  return Math.max(-200, Math.min(200, scale * r.normal()));
}

/** A target in [0, 1]: hard 0/1 labels, soft values, and the middle. */
function unit(r: Rng): number {
  return r.weighted<number>([[0, 3], [1, 2], [0.5, 0.5], [r.next(), 4]]);
}

/** One xyxy-or-other-format box pair row from the integer grid: zero widths, inverted, shared edges, identical. */
function gridBox(r: Rng): number[] {
  return [r.int(-2, 4), r.int(-2, 4), r.int(-2, 4), r.int(-2, 4)];
}

/** A random box, positive size, in `format`, at offset up to 1e5 and size down to 1e-3. */
function randomBox(r: Rng, format: string, offset: number, size: number): number[] {
  const x = offset + size * r.uniform(-1, 1);
  const y = offset + size * r.uniform(-1, 1);
  const w = size * r.uniform(0, 2);
  const h = size * r.uniform(0, 2);
  if (format === 'cxcywh') return [x + w / 2, y + h / 2, w, h];
  if (format === 'xywh') return [x, y, w, h];
  return [x, y, x + w, y + h];
}

/** The recipes of box pairs (`boxPairs`); `mixed` draws one per row. */
export const BOX_RECIPES = ['grid', 'random', 'mixed', 'identical', 'far', 'tiny', 'thin'] as const;

/**
 * A thin overlap: a box and its copy moved along one axis by all but a sliver of its width (or a
 * box a sliver high), at the origin or far from it: the overlap width is 1e-4 to 1e-2 of the sizes.
 */
function thinPair(r: Rng, format: string): [number[], number[]] {
  const offset = r.pick([0, 100, 1e4]);
  const size = r.pick([1, 50]);
  const sliver = r.pick([1e-4, 1e-3, 1e-2]);
  const x = offset + size * r.uniform(-1, 1);
  const y = offset + size * r.uniform(-1, 1);
  const w = size * r.uniform(0.5, 2);
  const h = size * r.uniform(0.5, 2);
  let p = [x, y, x + w, y + h];
  let t: number[];
  if (r.chance(0.5)) {
    // moved by (1 - sliver) of the width, and a little in y
    const dx = (r.chance(0.5) ? 1 : -1) * w * (1 - sliver);
    const dy = h * 0.1 * r.uniform(-1, 1);
    t = [x + dx, y + dy, x + dx + w * r.uniform(0.9, 1.1), y + dy + h];
  } else {
    // a box a sliver high across the other
    const yy = y + h * r.uniform(0.1, 0.9);
    t = [x - w * 0.2, yy, x + w * r.uniform(0.5, 1.2), yy + h * sliver];
  }
  if (r.chance(0.5)) [p, t] = [t, p];
  const to = (q: number[]) => (format === 'cxcywh' ? [(q[0] + q[2]) / 2, (q[1] + q[3]) / 2, q[2] - q[0], q[3] - q[1]] : format === 'xywh' ? [q[0], q[1], q[2] - q[0], q[3] - q[1]] : q);
  return [to(p), to(t)];
}

/** n rows of (pred, target) boxes, each row drawn by its own recipe (`recipe` forces one). */
function boxPairs(r: Rng, n: number, format: string, forced?: string): { a: number[]; b: number[]; tags: string[] } {
  const a: number[] = [];
  const b: number[] = [];
  const drawn = r.pick(BOX_RECIPES);
  const recipe = forced ?? drawn;
  for (let i = 0; i < n; i++) {
    const k = recipe === 'mixed' ? r.pick(['grid', 'random', 'identical', 'far', 'tiny', 'zero', 'thin']) : recipe;
    let p: number[];
    let t: number[];
    if (k === 'grid') {
      p = gridBox(r);
      t = r.chance(0.2) ? p.slice() : gridBox(r);
    } else if (k === 'identical') {
      p = r.chance(0.5) ? gridBox(r) : randomBox(r, format, r.pick([0, 100, 1e4]), r.pick([1, 50]));
      t = p.slice();
    } else if (k === 'thin') {
      [p, t] = thinPair(r, format);
    } else if (k === 'zero') {
      // one box has a zero (possibly -0 after a fold) width or height
      p = gridBox(r);
      if (format === 'xyxy') p[2] = p[0];
      else p[2] = r.pick([0, -0]);
      t = gridBox(r);
    } else {
      const offset = k === 'far' ? r.pick([1e4, 1e5]) : r.pick([0, 0, 10, 100]);
      const size = k === 'tiny' ? r.pick([1e-3, 1e-2]) : k === 'far' ? r.pick([1, 30, 1e3]) : r.pick([1, 5, 50]);
      p = randomBox(r, format, offset, size);
      t = r.chance(0.2) ? p.map((v) => v + size * 1e-3 * r.normal()) : randomBox(r, format, offset, size);
    }
    a.push(...p);
    b.push(...t);
  }
  return { a, b, tags: [recipe] };
}

/** The recipes of rotated box pairs (`rotatedPair`); `mixed` draws one per row. */
export const ROTATED_RECIPES = ['random', 'thin', 'tiny', 'huge', 'degenerate', 'identical', 'near', 'square', 'turned', 'mixed'] as const;

/** An angle: in [-pi, pi], or far outside it (to 1e4: float32 still holds its place in the period there). */
function rotAngle(r: Rng, far: boolean): number {
  const k = far ? r.weighted<number>([[10, 1], [100, 1], [1e3, 1], [1e4, 1]]) : Math.PI;
  return r.chance(0.05) ? r.pick([0, Math.PI / 2, -Math.PI / 4, Math.PI]) : k * r.uniform(-1, 1);
}

/**
 * One rotated (pred, target) pair `(cx, cy, w, h, theta)` by recipe: random; thin (w/h 10 to 1e4);
 * tiny (sides 1e-3 to 1e-1, or about mmrotate's clamp at 1e-7); huge (sides 1e4 to 1e6, centres to
 * 1e6: the range where ops.md keeps every intermediate finite); degenerate (a side 0 or negative);
 * identical; near (each component moved by 1e-7 to 1e-3 of its size, the angle by 1e-6 to 1e-2);
 * square; turned (the target at theta + k pi, or (h, w) at theta + pi/2 + k pi: the same Gaussian).
 * Angles are drawn far outside [-pi, pi] (to 1e4) a third of the time.
 */
function rotatedPair(r: Rng, recipe: string): [number[], number[]] {
  const far = r.chance(0.35);
  const sz = r.pick([1, 10, 100]);
  const off = r.pick([0, 0, 100, 1e4]);
  const box = (s: number, o: number, ratio = r.uniform(0.2, 5)) => {
    const w = s * r.uniform(0.3, 2);
    return [o + s * r.uniform(-2, 2), o + s * r.uniform(-2, 2), w, w / ratio, rotAngle(r, far)];
  };
  // a target about pred (overlapping) or anywhere near
  const about = (p: number[], s: number) =>
    r.chance(0.6) ? [p[0] + s * 0.3 * r.normal(), p[1] + s * 0.3 * r.normal(), p[2] * r.uniform(0.5, 1.5), p[3] * r.uniform(0.5, 1.5), p[4] + r.uniform(-1, 1)] : box(s, p[0] - s * r.uniform(-2, 2));
  let p: number[];
  let t: number[];
  switch (recipe) {
    case 'thin': {
      const ratio = r.pick([10, 30, 100, 300, 1e3, 1e4]);
      p = box(sz, off, r.chance(0.5) ? ratio : 1 / ratio);
      t = r.chance(0.5) ? box(sz, p[0], r.chance(0.5) ? ratio : 1 / ratio) : about(p, sz);
      if (r.chance(0.3)) t = [p[0] + sz * 1e-2 * r.normal(), p[1], p[2], p[3], p[4] + r.pick([1e-4, 1e-2, 0.3])];
      break;
    }
    case 'tiny': {
      const s = r.pick([1e-3, 1e-2, 1e-1]);
      p = box(s, r.pick([0, 1, 100]));
      t = about(p, s);
      // a side about mmrotate's clamp at 1e-7 (below, at, just above it)
      for (const q of [p, t]) if (r.chance(0.4)) q[r.pick([2, 3])] = r.pick([1e-7, 0.99e-7, 1.01e-7, 2e-7, 1e-6, 1e-8, 1e-9]);
      break;
    }
    case 'huge': {
      const s = r.pick([1e4, 1e5, 1e6]);
      p = box(s, r.pick([0, 1e5, 1e6]), r.uniform(0.5, 2));
      t = about(p, s);
      for (const q of [p, t]) for (const k of [2, 3]) q[k] = Math.min(q[k], 1e6);
      break;
    }
    case 'degenerate': {
      p = box(sz, off);
      t = about(p, sz);
      const q = r.chance(0.6) ? p : t;
      q[r.pick([2, 3])] = r.pick([0, -0, -1, -sz * r.uniform(0.1, 2)]);
      if (r.chance(0.2)) q[2] = q[3] = 0;
      break;
    }
    case 'identical':
      p = box(sz, off);
      t = p.slice();
      break;
    case 'near': {
      p = box(sz, off, r.chance(0.3) ? r.pick([30, 1 / 30, 100]) : r.uniform(0.3, 3));
      const rel = r.pick([1e-7, 1e-6, 1e-5, 1e-4, 1e-3]);
      const dth = r.pick([0, 1e-6, 1e-4, 1e-2]);
      t = [p[0] + rel * p[2] * r.normal(), p[1] + rel * p[2] * r.normal(), p[2] * (1 + rel * r.normal()), p[3] * (1 + rel * r.normal()), p[4] + dth * r.normal()];
      if (r.chance(0.5)) [p, t] = [t, p];
      break;
    }
    case 'square': {
      p = box(sz, off, 1);
      t = r.chance(0.5) ? box(sz, p[0], 1) : about(p, sz);
      if (r.chance(0.5)) t[3] = t[2];
      break;
    }
    case 'turned': {
      p = box(sz, off);
      const k = r.pick([1, -1, 2, 3, -7, 100, 1000]);
      t = r.chance(0.5) ? [p[0], p[1], p[2], p[3], p[4] + k * Math.PI] : [p[0], p[1], p[3], p[2], p[4] + Math.PI / 2 + k * Math.PI];
      if (r.chance(0.4)) t[0] += sz * 1e-3 * r.normal();
      if (r.chance(0.5)) [p, t] = [t, p];
      break;
    }
    default:
      p = box(sz, off);
      t = about(p, sz);
  }
  return [p, t];
}

/** n rows of rotated pairs, each by its own recipe (`forced` for all). */
function rotatedPairs(r: Rng, n: number, forced?: string): { a: number[]; b: number[]; tags: string[] } {
  const recipe = forced ?? r.pick(ROTATED_RECIPES);
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = recipe === 'mixed' ? r.pick(ROTATED_RECIPES.filter((x) => x !== 'mixed')) : recipe;
    const [p, t] = rotatedPair(r, k);
    a.push(...p);
    b.push(...t);
  }
  return { a, b, tags: [recipe] };
}

/** ops.md's params of `rotated_iou_loss`, those of the drawn variant, over their ranges. */
function rotatedParams(r: Rng, o: Record<string, unknown>): void {
  const v = r.pick(['probiou', 'gwd', 'kld', 'jd', 'kld_symmax', 'kld_symmin', 'kfiou']);
  o.variant = v;
  if (v === 'probiou') {
    if (r.chance(0.35)) o.eps = r.pick([1e-9, 1e-7, 1e-5, 1e-3]);
    if (r.chance(0.4)) o.ciou = r.chance(0.7);
  } else if (v === 'kfiou') {
    if (r.chance(0.6)) o.fun = r.pick(['none', 'ln', 'exp']);
    if (r.chance(0.4)) o.beta = r.pick([1 / 9, 1e-3, 0.5, 1, 10]);
    if (r.chance(0.3)) o.eps = r.pick([1e-9, 1e-6, 1e-3]);
  } else {
    if (r.chance(0.7)) o.fun = r.pick(['log1p', 'sqrt', 'none']);
    if (r.chance(0.5)) o.tau = r.pick([0, 0.5, 1, 2, 10]);
    if (r.chance(0.35)) o.alpha = r.pick([0.5, 1, 2, 1e-2]);
    if (v === 'gwd' && r.chance(0.4)) o.normalize = r.chance(0.5);
    if (v !== 'gwd' && r.chance(0.4)) o.sqrt = r.chance(0.5);
  }
}

/** The rotated ops' own refusals (ops.md "Refused"). */
function rotatedInvalid(r: Rng, c: FuzzCase): (() => void)[] {
  if (c.op === 'pairwise_probiou') return [() => (c.options.eps = r.pick([0, -1e-7, 1e-40])), () => (c.options.reduction = r.pick(['sum', 'mean'])), () => (c.options.variant = 'gwd')];
  const n = c.dims.n;
  const d2 = () => f32(Array.from({ length: 2 * n }, () => r.normal()));
  return [
    () => (c.options.variant = r.pick(['riou', 'kl'])),
    () => (c.options.variant === 'probiou' ? (c.options.tau = 1) : (c.options.ciou = true)),
    () => (c.options.fun = c.options.variant === 'kfiou' ? 'log1p' : r.pick(['exp', 'ln'])),
    () => (c.options.eps = r.pick([0, -1, 1e-40])),
    () => { c.options.variant = 'kfiou'; c.options.beta = r.pick([0, -1]); },
    () => { c.options.variant = r.pick(['kld', 'gwd']); c.options.alpha = r.pick([0, -1, 1e-30]); },
    () => { c.options.variant = 'kld'; c.options.tau = Infinity; },
    () => { c.inputs.predDelta = d2(); c.inputs.targetDelta = d2(); c.options.variant = r.pick(['probiou', 'gwd']); delete c.options.eps; delete c.options.fun; delete c.options.beta; },
    () => { c.options.variant = 'kfiou'; delete c.inputs.targetDelta; c.inputs.predDelta = d2(); },
    () => (c.inputs.target = f32(new Array(5 * n + 5).fill(1))),
  ];
}

/** The shared options: reduction, weight, gradOutput, avgFactor, grad. */
function shared(r: Rng, c: FuzzCase, outCount: number, reductions: readonly string[] = ['none', 'mean', 'sum']) {
  const reduction = r.pick(reductions);
  c.options.reduction = reduction;
  if (r.chance(0.35)) {
    const w = Array.from({ length: outCount }, () => (r.chance(0.15) ? 0 : r.uniform(0, 2) * (r.chance(0.1) ? 1e3 : 1)));
    c.inputs.weight = f32(w);
    c.tags.push('weight');
  }
  if (reduction !== 'none' || r.chance(0.5)) {
    if (r.chance(0.35)) {
      const scale = r.pick([1, 0.5, 1e-3, 1e3]);
      const len = reduction === 'none' ? outCount : 1;
      c.inputs.gradOutput = f32(Array.from({ length: len }, () => (r.chance(0.1) ? 0 : scale * r.normal())));
      c.tags.push('gradOutput');
    }
  }
  if (reduction === 'mean' && r.chance(0.25)) {
    c.options.avgFactor = r.weighted<number>([[0.5, 1], [3, 1], [1e-3, 1], [1e4, 1], [Math.max(1, outCount), 1], [1e-310, 0.05], [1e-40, 0.05]]);
    c.tags.push('avgFactor');
  }
  if (r.chance(0.08)) c.options.grad = false;
}

/** Shapes `[n, c]` input as `{ data, shape }` or bare, both ways. */
function shaped(r: Rng, data: HostData, shape: number[]): FuzzInput {
  return r.chance(0.5) || shape.length === 1 ? { data, shape } : data;
}

/** Total elements a row op may use (SwiftShader time), smaller with a workgroup per row. */
function fitRows(n: number, c: number, wg: boolean): number {
  const cap = wg ? 6000 : 80000;
  return Math.min(n, Math.max(1, Math.floor(cap / Math.max(c, 1))));
}

/**
 * The ranking losses' own refusals (ops.md "Ranking losses"): a reduction other than 'mean', a
 * weight, an avgFactor, a target outside the op's set, delta 0.
 */
function rankingInvalid(r: Rng, c: FuzzCase, badTargets: number[]): (() => void)[] {
  const n = c.dims.n;
  return [
    () => (c.options.reduction = r.pick(['none', 'sum'])),
    () => (c.inputs.weight = f32(Array.from({ length: n }, () => r.uniform(0, 2)))),
    () => (c.options.avgFactor = r.pick([1, 3, Math.max(1, n)])),
    () => {
      // at least one element, so that the bad target is there to refuse
      if (n === 0) c.inputs = { logits: f32([0.5]), targets: f32([0]) };
      const t = c.inputs.targets as Float32Array;
      t[r.int(0, t.length - 1)] = r.pick(badTargets);
    },
    () => (c.options.delta = r.pick([0, -0.5])),
  ];
}

/**
 * The assigner's own refusals (ops.md "Refusals (both ops)"): a reduction (even 'mean'), a weight,
 * an avgFactor, topk above A with gt rows or below 1, alpha < 0, beta 0, eps 0, a label that is no
 * class (a padding row's too), a mask of 2, a stride of 0, a score above 1 with check: true.
 */
function talInvalid(r: Rng, c: FuzzCase): (() => void)[] {
  const { b: B, a: A, m: M } = c.dims;
  // (built for every case, drawn from only when picked)
  const some = (name: string, values: number[]) => () => {
    const t = c.inputs[name] as { data: HostData; shape: number[] };
    if (t.data.length) t.data[r.int(0, t.data.length - 1)] = r.pick(values);
  };
  const out: (() => void)[] = [
    () => (c.options.reduction = r.pick(['mean', 'sum', 'none'])),
    () => (c.inputs.weight = f32(Array.from({ length: r.pick([1, B * A]) }, () => 1))),
    () => (c.options.avgFactor = r.pick([1, 2])),
    () => (c.options.topk = M > 0 ? A + r.int(1, 3) : 0),
    () => (c.options.topk = r.pick([0, -1, 1.5])),
    () => (c.options.alpha = -0.5),
    () => (c.options.beta = 0),
    some('gtLabels', [-1, c.dims.c, 1000]),
    some('gtMask', [2, -1]),
  ];
  if (c.op === 'tal_assign') {
    out.push(() => (c.options.eps = 0), () => {
      some('scores', [1.5])();
      c.options.check = true;
    });
  } else out.push(some('strides', [0, -8, NaN]), () => (c.options.boxGain = NaN));
  return out;
}

/**
 * A mutation that makes the case invalid: both the GPU and the CPU must refuse it with the same
 * `DetlossError` code. Applied to a few percent of cases.
 */
function invalidate(r: Rng, c: FuzzCase): void {
  const choices: (() => void)[] = [
    () => (c.options.reduction = 'avg'),
    () => (c.options.unknownThing = 1),
    () => (c.options.avgFactor = r.pick([0, -1, Infinity])),
    () => {
      const [name, v] = Object.entries(c.inputs)[0];
      const d = 'data' in v ? v.data : v;
      if (d instanceof Float32Array && d.length > 0) {
        const bad = d.slice();
        bad[r.int(0, bad.length - 1)] = r.pick([NaN, Infinity, -Infinity]);
        c.inputs[name] = 'data' in v ? { data: bad, shape: v.shape } : bad;
        c.options.check = true;
      }
    },
    () => {
      const [name, v] = Object.entries(c.inputs)[0];
      const d = 'data' in v ? v.data : v;
      c.inputs[name] = (d instanceof Float32Array ? new Float32Array(d.length + 1) : new Int32Array(d.length + 1)) as HostData;
    },
  ];
  const perOp: Record<string, (() => void)[]> = {
    smooth_l1: [() => (c.options.beta = -0.5)],
    huber: [() => (c.options.delta = 0)],
    balanced_l1: [() => (c.options.alpha = 0), () => (c.options.beta = -1)],
    iou_loss: [
      () => (c.options.variant = 'yolo'), () => (c.options.eps = 0), () => { c.options.variant = 'giou'; c.options.mode = 'log'; },
      () => { c.options.variant = 'mpdiou'; delete c.options.imageSize; }, () => (c.options.focaler = [0.6, 0.6]),
      () => { c.options.variant = 'eiou'; c.options.power = 2; }, () => { c.options.variant = 'ciou'; c.options.ciouAlpha = 'mmdet'; c.options.power = 3; },
    ],
    pairwise_iou: [() => (c.options.reduction = 'sum'), () => (c.options.variant = 'eiou')],
    sigmoid_focal: [() => (c.options.gamma = -1)],
    quality_focal: [() => (c.options.beta = -1)],
    varifocal: [() => (c.options.iouWeighted = 1)],
    distribution_focal: [() => {
      const t = c.inputs.targets as Float32Array;
      if (t.length) t[r.int(0, t.length - 1)] = r.pick([-0.5, c.dims.k - 1, c.dims.k + 3]);
    }],
    cross_entropy: [
      () => (c.options.labelSmoothing = 1.5),
      () => (c.options.ignoreIndex = 1.5),
      () => {
        const l = c.inputs.labels as Int32Array;
        if (l.length) l[r.int(0, l.length - 1)] = c.dims.c + 7;
      },
    ],
    kl_div: [() => (c.options.temperature = 0), () => (c.options.classReduction = 'max')],
    dice: [() => (c.options.eps = -1), () => (c.options.naive = 'yes')],
    softmax_focal: [() => (c.options.gamma = -1)],
    class_balanced_focal: [() => (c.options.beta = 1), () => (c.options.gamma = -1)],
    hinge: [() => {
      const t = c.inputs.targets as Float32Array;
      if (t.length) t[r.int(0, t.length - 1)] = r.pick([0, 2, 0.5]);
    }],
    hinge_embedding: [() => {
      const t = c.inputs.targets as Float32Array;
      if (t.length) t[r.int(0, t.length - 1)] = r.pick([0, 2, 0.5]);
    }],
    margin_ranking: [() => {
      const t = c.inputs.targets as Float32Array;
      if (t.length) t[r.int(0, t.length - 1)] = r.pick([0, -2]);
    }],
    exponential: [() => {
      const t = c.inputs.targets as Float32Array;
      if (t.length) t[r.int(0, t.length - 1)] = r.pick([0, 3]);
    }],
    ap_loss: rankingInvalid(r, c, [0.5, 2]),
    rank_sort: rankingInvalid(r, c, [1.5]),
    tal_assign: talInvalid(r, c),
    yolo_detection_loss: talInvalid(r, c),
    nms: nmsInvalid(r, c),
    nms_onnx: nmsInvalid(r, c),
    nms_tfjs: nmsInvalid(r, c),
    rotated_iou_loss: rotatedInvalid(r, c),
    pairwise_probiou: rotatedInvalid(r, c),
  };
  r.pick([...choices, ...(perOp[c.op] ?? [])])();
  c.tags.push('invalid');
}

/**
 * A ranking-loss case (`ap_loss`, `rank_sort`): the whole array is one ranking problem, so n is
 * drawn around the kernel's BLOCK (256) and SORT_B (4096) and now and then up to ~20k (with few
 * positives there: the work is |P| x n, and rank_sort's sorting error |P|^2); positives none, one,
 * all, or a fraction; scores to +-50 with ties (a grid, repeats, and pairs exactly delta apart, on
 * the ramp's edge); ignored targets; rank_sort IoUs in (0, 1] with repeats; delta over its range;
 * 'mean' given or not; gradOutput one number.
 */
function rankingCase(r: Rng, c: FuzzCase, big: boolean): void {
  const ap = c.op === 'ap_loss';
  let n = r.weighted<number>([
    [0, 1], [1, 3], [2, 3], [3, 1], [5, 1], [63, 1], [64, 1], [65, 1], [255, 1], [256, 1], [257, 1],
    [1000, 1], [4095, 0.6], [4096, 0.6], [4097, 0.6], [8193, big ? 0.3 : 0], [20000, big ? 0.25 : 0],
  ]);
  if (n === 20000) n += r.int(-3, 3);
  const frac = r.weighted<string | number>([['none', 1], ['one', 2], ['all', n <= 4097 ? 1 : 0], [0.001, 1], [0.01, 2], [0.1, 2], [0.3, n <= 4097 ? 2 : 0], [0.5, n <= 1000 ? 1 : 0]]);
  const ignoredFrac = r.pick([0, 0, 0.02, 0.2]);
  const delta = r.weighted<number | undefined>([[undefined, 3], [1e-3, 0.5], [0.05, 1], [0.25, 1], [0.5, 1], [1, 1], [0.3, 1], [2, 1], [10, 0.5], [100, 0.3]]);
  if (delta !== undefined) c.options.delta = delta;
  const d = delta ?? (ap ? 1 : 0.5);
  const scale = r.pick([0.1, 1, 3, 10, 50]);
  const recipe = r.pick(['random', 'grid', 'repeat', 'edge', 'mixed', 'far']);
  c.tags.push(recipe, `pos ${frac}`);
  const s: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = recipe === 'mixed' ? r.pick(['random', 'grid', 'repeat', 'edge']) : recipe;
    let v: number;
    if (k === 'grid') v = r.int(-8, 8) * r.pick([0.125, 1, d / 2]);
    else if (k === 'repeat' && i > 0) v = r.chance(0.7) ? s[r.int(0, i - 1)] : scale * r.normal();
    else if (k === 'edge' && i > 0) v = s[r.int(0, i - 1)] + r.pick([-1, 1, -2, 2, 0]) * d;
    else if (k === 'far') v = r.pick([-1, 1]) * (50 - r.next() * r.pick([0, 1e-3, 1]));
    else v = scale * r.normal();
    s.push(Math.max(-50, Math.min(50, v)));
  }
  const t = new Float32Array(n);
  const one = r.int(0, Math.max(0, n - 1));
  const iouPool = [1, 0.5, 0.25, 0.75, 1e-3, r.next() || 1];
  for (let i = 0; i < n; i++) {
    const pos = frac === 'all' ? true : frac === 'none' ? false : frac === 'one' ? i === one : r.chance(frac as number);
    if (pos) t[i] = ap ? 1 : r.chance(0.4) ? r.pick(iouPool) : 1 - r.next();
    else if (r.chance(ignoredFrac) && frac !== 'all') t[i] = ap ? -1 : r.pick([-1, -0.5, -100, -1e-3]);
    else t[i] = r.chance(0.01) ? -0 : 0;
  }
  // Positives a little above the negatives, now and then (the usual state of training).
  const lift = r.pick([0, 0, 1, 3 * d]);
  const logits = Float32Array.from(s, (v, i) => Math.max(-50, Math.min(50, v + (t[i] > 0 ? lift : 0))));
  c.dims = { n };
  c.inputs = { logits, targets: t };
  if (r.chance(0.3)) c.options.reduction = 'mean';
  if (r.chance(0.35)) {
    c.inputs.gradOutput = f32([r.chance(0.1) ? 0 : r.pick([1, 0.5, 1e-3, 1e3]) * r.normal()]);
    c.tags.push('gradOutput');
  }
  if (r.chance(0.08)) c.options.grad = false;
}

/** A gt box of an image `w` x `h` (pixels), by kind; coordinates on a grid of 2^-4 now and then. */
function gtBox(r: Rng, kind: string, w: number, h: number, strides: number[], near?: number[]): number[] {
  const s0 = Math.min(...strides);
  let box: number[];
  if (kind === 'small') {
    // smaller than a stride: it may hold no anchor centre at all (ops.md: such a gt gets none)
    const x = r.uniform(0, w), y = r.uniform(0, h);
    box = [x, y, x + r.uniform(0.25, 1) * s0, y + r.uniform(0.25, 1) * s0];
  } else if (kind === 'grid') {
    // edges on anchor centres (a centre on an edge is outside), or 2^-12 to either side of one
    const s = r.pick(strides);
    const e = () => r.pick([0, 0, 2 ** -12, -(2 ** -12)]);
    const cx = (r.int(0, Math.max(0, Math.floor(w / s) - 1)) + 0.5) * s;
    const cy = (r.int(0, Math.max(0, Math.floor(h / s) - 1)) + 0.5) * s;
    box = [cx + e(), cy + e(), cx + r.int(1, 4) * s + e(), cy + r.int(1, 4) * s + e()];
  } else if (kind === 'crowd' && near) {
    // about another gt: a shifted, grown or shrunk copy, or the very same box
    if (r.chance(0.2)) return near.slice();
    const bw = near[2] - near[0], bh = near[3] - near[1];
    const dx = bw * r.uniform(-0.4, 0.4), dy = bh * r.uniform(-0.4, 0.4);
    const g = r.uniform(0.6, 1.5);
    box = [near[0] + dx, near[1] + dy, near[0] + dx + bw * g, near[1] + dy + bh * g];
  } else if (kind === 'whole') {
    box = [r.uniform(-4, 2), r.uniform(-4, 2), w - r.uniform(-4, 2), h - r.uniform(-4, 2)];
  } else {
    const bw = r.uniform(1, w / 1.5), bh = r.uniform(1, h / 1.5);
    const x = r.uniform(-0.1 * w, w - bw / 2), y = r.uniform(-0.1 * h, h - bh / 2);
    box = [x, y, x + bw, y + bh];
  }
  return r.chance(0.3) ? box.map((v) => Math.round(v * 16) / 16) : box;
}

/**
 * An assigner case (`tal_assign`, `yolo_detection_loss`; ops.md "Task-aligned assignment and the
 * YOLOv8 loss"): a head of one to three levels on an image of 8 to 128 pixels a side (A up to a
 * few hundred anchors, now and then 0), B of 0 to 3 images, C of 1 to 80 classes, M of 0 to 16 gt
 * rows with padding rows anywhere (junk boxes, labels still classes) and all-padding images; gts
 * at random, smaller than a stride, with edges on anchor centres, crowded (overlapping, sometimes
 * duplicated) or the whole image. tal_assign's predictions: boxes about the anchors, near the gts,
 * anywhere or degenerate, scores in [0, 1] (exact 0 and 1, sigmoids, tiny ones). The YOLO loss's:
 * DFL logits of R = 2 to 16 bins and class logits at several scales, gradOutput and grad: false now
 * and then. topk over [1, A] (above A when M = 0), alpha, beta, eps and the gains over their ranges.
 */
function talCase(r: Rng, c: FuzzCase): void {
  const yolo = c.op === 'yolo_detection_loss';
  const strides = r.pick([[8], [8, 16], [8, 16, 32], [16, 32], [4, 8]]);
  const w = r.pick([8, 16, 32, 48, 64, 96, 128]);
  const h = r.chance(0.5) ? w : r.pick([16, 32, 64, 96]);
  // ultralytics' make_anchors: level after level, row-major
  const anchorsGrid: number[] = [];
  const anchorStride: number[] = [];
  for (const s of strides) {
    const [gw, gh] = [Math.floor(w / s), Math.floor(h / s)];
    for (let y = 0; y < gh; y++) for (let x = 0; x < gw; x++) anchorsGrid.push(x + 0.5, y + 0.5), anchorStride.push(s);
  }
  let A = anchorStride.length;
  if (r.chance(0.03)) {
    anchorsGrid.length = 0;
    anchorStride.length = 0;
    A = 0;
  }
  const B = r.weighted<number>([[0, 0.3], [1, 5], [2, 3], [3, 1]]);
  const C = r.weighted<number>([[1, 2], [2, 1], [3, 3], [5, 1], [17, 0.5], [80, 0.3]]);
  let M = A === 0 ? 0 : r.weighted<number>([[0, 0.7], [1, 3], [2, 2], [3, 2], [5, 2], [8, 1], [16, 0.5]]);
  // keep SwiftShader's work small: pairs B*M*A and the heads' elements
  while (M > 1 && B * M * A > 12000) M = Math.floor(M / 2);
  const R = r.pick([2, 4, 8, 16]);
  c.dims = { b: B, a: A, c: C, m: M, ...(yolo ? { r: R } : {}) };
  c.tags.push(`B=${B} A=${A} C=${C} M=${M}${yolo ? ` R=${R}` : ''}`);

  const gtLabels = new Int32Array(B * M);
  const gtBoxes = new Float32Array(B * M * 4);
  const gtMask = new Int32Array(B * M);
  const gtKinds = ['random', 'random', 'small', 'grid', 'crowd', 'whole'];
  for (let b = 0; b < B; b++) {
    const allPadding = r.chance(0.12);
    const crowded = r.chance(0.3);
    const placed: number[][] = [];
    for (let j = 0; j < M; j++) {
      const kind = crowded && placed.length ? 'crowd' : r.pick(gtKinds);
      const box = gtBox(r, kind, w, h, strides, placed.length ? r.pick(placed) : undefined);
      const real = !allPadding && !r.chance(0.2);
      // a padding row: a box of its own (or zeros) and a class label: ultralytics reads row 0
      const row = real ? box : r.chance(0.5) ? [0, 0, 0, 0] : box;
      gtBoxes.set(row, 4 * (b * M + j));
      gtLabels[b * M + j] = r.int(0, C - 1);
      gtMask[b * M + j] = real ? 1 : 0;
      if (real) placed.push(Array.from(Float32Array.from(box)));
    }
    if (allPadding) c.tags.push(`image ${b} all padding`);
    if (crowded && M > 1) c.tags.push(`image ${b} crowded`);
  }
  const topk = M === 0 ? r.pick([10, 13, A + 5]) : Math.max(1, Math.min(A, r.pick([1, 3, 5, 10, 10, 13, A])));
  c.options.topk = topk;
  if (r.chance(0.5)) c.options.alpha = r.pick([0, 0.25, 0.5, 1, 1.5, 2]);
  if (r.chance(0.5)) c.options.beta = r.pick([0.5, 1, 2, 2.5, 4, 6]);
  const gts = { gtLabels: { data: gtLabels, shape: [B, M] }, gtBoxes: { data: gtBoxes, shape: [B, M, 4] }, gtMask: { data: gtMask, shape: [B, M] } };

  if (!yolo) {
    if (r.chance(0.4)) c.options.eps = r.pick([1e-9, 1e-6, 1e-3, 1]);
    const anchors = Float32Array.from(anchorsGrid, (v, i) => v * anchorStride[i >> 1]);
    const predBoxes = new Float32Array(B * A * 4);
    const kind = r.pick(['anchor', 'anchor', 'near', 'random', 'degenerate', 'collapsed']);
    const one = [r.uniform(0, w / 2), r.uniform(0, h / 2), r.uniform(w / 2, w), r.uniform(h / 2, h)];
    for (let b = 0; b < B; b++) {
      for (let a = 0; a < A; a++) {
        const [ax, ay, s] = [anchors[2 * a], anchors[2 * a + 1], anchorStride[a]];
        let box: number[];
        const k = kind === 'near' && M > 0 ? 'near' : kind;
        if (k === 'near') {
          const j = r.int(0, M - 1);
          const g = Array.from(gtBoxes.subarray(4 * (b * M + j), 4 * (b * M + j) + 4));
          const sz = Math.max(1, g[2] - g[0], g[3] - g[1]);
          box = g.map((v) => v + sz * 0.15 * r.normal());
        } else if (k === 'random') {
          const x = r.uniform(-8, w), y = r.uniform(-8, h);
          box = [x, y, x + r.uniform(0, w / 2), y + r.uniform(0, h / 2)];
        } else if (k === 'degenerate') {
          box = [ax - r.uniform(0, 2 * s), ay - r.uniform(0, 2 * s), ax + r.uniform(0, 2 * s), ay + r.uniform(0, 2 * s)];
          box[r.pick([0, 1])] = box[r.pick([2, 3])] = r.chance(0.5) ? box[0] : box[1];
        } else if (k === 'collapsed') box = one;
        else box = [ax - r.uniform(0.2, 3) * s, ay - r.uniform(0.2, 3) * s, ax + r.uniform(0.2, 3) * s, ay + r.uniform(0.2, 3) * s];
        predBoxes.set(box, 4 * (b * A + a));
      }
    }
    const sk = r.pick(['uniform', 'hard', 'sigmoid', 'tiny']);
    const scores = Float32Array.from({ length: B * A * C }, () => {
      if (sk === 'hard') return r.pick([0, 1, r.next()]);
      if (sk === 'sigmoid') return 1 / (1 + Math.exp(-r.pick([1, 4, 12]) * r.normal()));
      if (sk === 'tiny') return r.chance(0.5) ? r.pick([1e-30, 1e-12, 1e-6]) : r.next();
      return r.next();
    });
    c.tags.push(`boxes ${kind}`, `scores ${sk}`);
    c.inputs = { scores: { data: scores, shape: [B, A, C] }, predBoxes: shaped(r, predBoxes, [B, A, 4]) as FuzzInput, anchors: { data: anchors, shape: [A, 2] }, ...gts };
    return;
  }
  if (r.chance(0.4)) c.options.boxGain = r.pick([0, 0.5, 7.5, 10, -1]);
  if (r.chance(0.4)) c.options.clsGain = r.pick([0, 0.5, 1, 2]);
  if (r.chance(0.4)) c.options.dflGain = r.pick([0, 0.5, 1.5, 3]);
  const ds = r.pick([0.5, 2, 5, 20]);
  const predDist = Float32Array.from({ length: B * A * 4 * R }, () => (r.chance(0.05) ? r.pick([-30, 30, 0]) : ds * r.normal()));
  const xs = r.pick([1, 3, 8, 30]);
  const predScores = Float32Array.from({ length: B * A * C }, () => (r.chance(0.03) ? r.pick([-100, 100, -88, 0]) : xs * r.normal() - r.pick([0, 2])));
  c.inputs = {
    predDist: { data: predDist, shape: [B, A, 4 * R] },
    predScores: { data: predScores, shape: [B, A, C] },
    anchors: { data: Float32Array.from(anchorsGrid), shape: [A, 2] },
    strides: { data: Float32Array.from(anchorStride), shape: [A] },
    ...gts,
  };
  if (r.chance(0.3)) {
    c.inputs.gradOutput = f32([r.chance(0.1) ? 0 : r.pick([1, 0.5, 1e-3, 1e3]) * r.normal()]);
    c.tags.push('gradOutput');
  }
  if (r.chance(0.08)) c.options.grad = false;
}

/** The NMS ops (ops.md "Non-maximum suppression"). */
const NMS_OPS = new Set(['nms', 'nms_onnx', 'nms_tfjs']);
/** The share of NMS cases given NaN or infinite scores or coordinates (`putNonFiniteNms`). */
export const NMS_NONFINITE_SHARE = 0.35;

/**
 * n boxes as corners (x1, y1, x2, y2) in float64, by a recipe: clusters (a few objects, each with
 * copies jittered by 0 to 30% of its size: exact duplicates among them), integer grids (overlaps
 * that are exact rationals: IoU exactly 0.5, 1/3, 0 at shared edges), random, far from the origin
 * with small sizes, or a mix. Now and then a box is an exact copy of an earlier one, has zero
 * width or height, or is flipped (x2 < x1 or y2 < y1: overlap 0 where corners are not sorted, the
 * same box where they are).
 */
function nmsBoxes(r: Rng, n: number): { boxes: number[][]; object: number[]; tags: string[] } {
  const recipe = r.pick(['clusters', 'clusters', 'clusters', 'grid', 'random', 'far', 'mixed']);
  const far = recipe === 'far';
  const size = far ? r.pick([1e-2, 1, 30]) : r.pick([1, 10, 100]);
  const offset = far ? r.pick([1e3, 1e4, 1e5]) : r.pick([0, 0, -50, 1000]);
  const world = size * r.pick([1, 3, 10]);
  const objects = Math.max(1, Math.ceil(n / r.pick([2, 4, 8, 30])));
  const jitter = r.pick([0, 1e-4, 1e-2, 0.05, 0.15, 0.3]);
  const base: number[][] = [];
  for (let k = 0; k < objects; k++) {
    const x = offset + world * r.uniform(-1, 1), y = offset + world * r.uniform(-1, 1);
    base.push([x, y, x + size * r.uniform(0.2, 2), y + size * r.uniform(0.2, 2)]);
  }
  const gridBoxOf = () => {
    const [x, y] = [r.int(-3, 5), r.int(-3, 5)];
    return [x, y, x + r.int(0, 4), y + r.int(0, 4)];
  };
  const boxes: number[][] = [];
  const object: number[] = [];
  let dups = 0, zeros = 0, flips = 0;
  for (let i = 0; i < n; i++) {
    const k = recipe === 'mixed' ? r.pick(['clusters', 'grid', 'random']) : recipe;
    let o = r.int(0, objects - 1);
    let b: number[];
    if (i > 0 && r.chance(0.08)) {
      // an exact copy of an earlier box
      const j = r.int(0, i - 1);
      b = boxes[j].slice();
      o = object[j];
      dups++;
    } else if (k === 'grid') b = gridBoxOf();
    else if (k === 'random') {
      const x = offset + world * r.uniform(-1, 1), y = offset + world * r.uniform(-1, 1);
      b = [x, y, x + size * r.uniform(0, 2), y + size * r.uniform(0, 2)];
    } else {
      const s = base[o];
      const [w, h] = [s[2] - s[0], s[3] - s[1]];
      const j = jitter * r.pick([0, 1, 1, 1, 0.1]);
      b = [s[0] + j * w * r.normal(), s[1] + j * h * r.normal(), s[2] + j * w * r.normal(), s[3] + j * h * r.normal()];
    }
    if (r.chance(0.05)) {
      // zero width or height
      if (r.chance(0.5)) b[2] = b[0];
      else b[3] = b[1];
      zeros++;
    } else if (r.chance(0.06)) {
      // flipped corners
      if (r.chance(0.5)) [b[0], b[2]] = [b[2], b[0]];
      else [b[1], b[3]] = [b[3], b[1]];
      flips++;
    }
    boxes.push(b);
    object.push(o);
  }
  const tags = [`${recipe}${recipe === 'clusters' || recipe === 'mixed' ? ` ${objects} objects, jitter ${jitter}` : ''}`];
  if (dups) tags.push(`${dups} copies`);
  if (zeros) tags.push(`${zeros} zero-area`);
  if (flips) tags.push(`${flips} flipped`);
  return { boxes, object, tags };
}

/**
 * n scores: uniform, few distinct values (ties), a grid of eighths, signed and large, all negative
 * (logits: in Soft-NMS a negative score rises as it decays), exact 0 and -0 among them.
 */
function nmsScores(r: Rng, n: number): number[] {
  const kind = r.weighted<string>([['uniform', 2], ['ties', 1.5], ['grid', 1], ['signed', 1], ['negative', 1], ['sigmoid', 1]]);
  const pool = [r.next(), r.next(), 0.5, r.pick([0, -0, 1])];
  return Array.from({ length: n }, () => {
    if (r.chance(0.03)) return r.pick([0, -0]);
    if (kind === 'ties') return r.pick(pool);
    if (kind === 'grid') return r.int(0, 8) / 8;
    if (kind === 'signed') return r.pick([1, 100, 1e-3]) * r.normal();
    if (kind === 'negative') return -r.pick([1, 10]) * r.next();
    if (kind === 'sigmoid') return 1 / (1 + Math.exp(-r.pick([1, 10, 30]) * r.normal()));
    return r.next();
  });
}

/** An IoU threshold: 0 and 1, the usual ones (some not float32 numbers: 0.45, 0.7), any. */
const nmsIouThreshold = (r: Rng) => r.weighted<number>([[0, 1], [1, 1], [0.5, 2], [0.45, 1], [0.7, 1], [0.3, 1], [0.1, 0.5], [0.9, 0.5], [r.next(), 1]]);

/** A score threshold: a score of the case itself (a tie with it), common ones (0.3 is no float32 number), 0, the extremes and the infinities. */
function nmsScoreThreshold(r: Rng, scores: ArrayLike<number>): number {
  const own = scores.length ? scores[r.int(0, scores.length - 1)] : 0.5;
  return r.weighted<number>([[own, 2], [0.25, 1], [0.3, 1], [0.5, 1], [0, 1], [-0.5, 0.5], [-Infinity, 1], [Infinity, 0.5], [-3.4028234663852886e38, 0.3], [1e39, 0.1]]);
}

/**
 * An NMS case (`nms`, `nms_onnx`, `nms_tfjs`): n from 0 to 513 (around the kernel's blocks of 32
 * places and a sort's powers of two), boxes by `nmsBoxes` in the op's layout (`nms`: its format, the corners not
 * sorted; ONNX and TF.js: `[y1, x1, y2, x2]` with either diagonal, or ONNX's centre boxes), scores
 * by `nmsScores`, `nms`'s classes (few, negative, the extremes of int32), and every param over its
 * range: thresholds 0 and 1, scoreThreshold absent, finite, +-Infinity, DIoU, maxOutputBoxesPerClass
 * 0, past n, negative and a bigint, maxOutputSize 0 to past n, softNmsSigma 0 and 1e-5 to 1, and
 * for `nms_onnx` b and c of 0 to 3. (Below sigma = v^2 / 1490 the reference's float64 factor
 * exp(-v^2 / (2 sigma)) underflows to 0, and it drops a +Infinity score as TF.js does (Infinity * 0
 * is NaN), where ops.md says +Infinity never decays and the kernel keeps it: a disagreement of the
 * reference and ops.md, not of float32, so not drawn.)
 */
function nmsCase(r: Rng, c: FuzzCase): void {
  // (around the scan's blocks of 32 places and a sort's powers of two)
  let n = r.weighted<number>([
    [0, 1], [1, 2], [2, 2], [3, 1], [5, 2], [8, 1], [17, 1], [31, 1], [32, 1], [33, 1], [63, 0.5], [64, 1], [65, 1], [100, 1],
    [127, 0.3], [128, 0.4], [129, 0.3], [200, 0.8], [255, 0.3], [256, 0.4], [257, 0.3], [300, 0.5], [511, 0.2], [512, 0.3], [513, 0.2],
  ]);
  if (c.op === 'nms_onnx') {
    const B = r.weighted<number>([[0, 0.4], [1, 4], [2, 2], [3, 1]]);
    const C = r.weighted<number>([[0, 0.4], [1, 3], [2, 2], [3, 1]]);
    // (SwiftShader's time: the groups' pairs)
    while (B * C * n > 900 && n > 1) n = Math.ceil(n / 2);
    c.dims = { b: B, c: C, n };
    const center = r.weighted<number | undefined>([[undefined, 2], [0, 1], [1, 2]]);
    if (center !== undefined) c.options.centerPointBox = center;
    const boxes: number[] = [];
    const tags = new Set<string>();
    for (let b = 0; b < B; b++) {
      const d = nmsBoxes(r, n);
      d.tags.forEach((t) => tags.add(t));
      for (const [x1, y1, x2, y2] of d.boxes) {
        if (center === 1) boxes.push((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1);
        else if (r.chance(0.3)) boxes.push(y2, x2, y1, x1);
        else if (r.chance(0.2)) boxes.push(y1, x2, y2, x1);
        else boxes.push(y1, x1, y2, x2);
      }
    }
    const scores = f32(Array.from({ length: B * C }, () => nmsScores(r, n)).flat());
    c.inputs = { boxes: { data: f32(boxes), shape: [B, n, 4] }, scores: { data: scores, shape: [B, C, n] } };
    c.options.maxOutputBoxesPerClass = r.weighted<number | bigint | undefined>([
      [undefined, 0.5], [0, 0.5], [1, 1], [2, 1], [3, 1], [n, 1], [n + 7, 1], [100, 1], [-1, 0.5], [2n ** 63n - 1n, 1], [BigInt(r.int(0, 4)), 0.5], [2 ** 40, 0.3],
    ]);
    if (c.options.maxOutputBoxesPerClass === undefined) delete c.options.maxOutputBoxesPerClass;
    if (r.chance(0.8)) c.options.iouThreshold = nmsIouThreshold(r);
    if (r.chance(0.45)) c.options.scoreThreshold = nmsScoreThreshold(r, scores);
    c.tags.push(`B=${B} C=${C} n=${n}`, ...tags);
    return;
  }
  c.dims = { n };
  const d = nmsBoxes(r, n);
  const scores = f32(nmsScores(r, n));
  c.tags.push(`n=${n}`, ...d.tags);
  if (c.op === 'nms') {
    const format = r.pick(['xyxy', 'cxcywh', 'xywh']);
    if (format !== 'xyxy' || r.chance(0.5)) c.options.format = format;
    const rows = d.boxes.map(([x1, y1, x2, y2]) => (format === 'cxcywh' ? [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1] : format === 'xywh' ? [x1, y1, x2 - x1, y2 - y1] : [x1, y1, x2, y2]));
    c.inputs = { boxes: shaped(r, f32(rows.flat()), [n, 4]), scores };
    c.options.iouThreshold = nmsIouThreshold(r);
    if (r.chance(0.3)) c.options.variant = 'diou';
    else if (r.chance(0.2)) c.options.variant = 'iou';
    if (r.chance(0.45)) c.options.scoreThreshold = nmsScoreThreshold(r, scores);
    if (r.chance(0.4)) {
      // classes: mostly the object's own (so that copies meet), any int32
      const pool = r.pick([[0, 1], [0, 1, 2], [-1, 0, 7], [2 ** 31 - 1, -(2 ** 31), 0], [1000, 3], [5]]);
      c.inputs.classes = Int32Array.from(d.object, (o) => (r.chance(0.7) ? pool[o % pool.length] : r.pick(pool)));
      c.tags.push(`classes ${pool.join('/')}`);
    }
    return;
  }
  // nms_tfjs: [y1, x1, y2, x2], either diagonal
  const rows = d.boxes.map(([x1, y1, x2, y2]) => (r.chance(0.3) ? [y2, x2, y1, x1] : r.chance(0.2) ? [y1, x2, y2, x1] : [y1, x1, y2, x2]));
  c.inputs = { boxes: shaped(r, f32(rows.flat()), [n, 4]), scores };
  c.options.maxOutputSize = r.weighted<number | bigint>([[0, 0.5], [1, 1], [3, 1], [n, 2], [n + 3, 1], [1000, 1], [-1, 0.5], [BigInt(r.int(0, 6)), 0.3], [2n ** 40n, 0.3]]);
  if (r.chance(0.7)) c.options.iouThreshold = nmsIouThreshold(r);
  if (r.chance(0.6)) c.options.scoreThreshold = nmsScoreThreshold(r, scores);
  const sigma = r.weighted<number | undefined>([[undefined, 3], [0, 1], [0.5, 2], [1, 1], [0.25, 1], [0.1, 1], [0.05, 1], [0.01, 1], [1e-3, 0.5], [1e-5, 0.3]]);
  if (sigma !== undefined) {
    c.options.softNmsSigma = sigma;
    if (sigma > 0) c.tags.push('soft');
  }
}

/** NMS's own refusals (ops.md "Refusals and defined values"): thresholds outside [0, 1] or NaN, missing required params, non-integer limits, unknown formats and variants, a weight, classes of the wrong length. */
function nmsInvalid(r: Rng, c: FuzzCase): (() => void)[] {
  const out: (() => void)[] = [
    () => (c.options.iouThreshold = r.pick([-0.1, 1.5, NaN, -1e-30])),
    () => (c.options.scoreThreshold = NaN),
    () => (c.inputs.weight = f32(Array.from({ length: Math.max(1, c.dims.n) }, () => 1))),
    () => (c.options.reduction = r.pick(['none', 'mean'])),
  ];
  if (c.op === 'nms') {
    out.push(
      () => delete c.options.iouThreshold,
      () => (c.options.format = 'yxyx'),
      () => (c.options.variant = 'giou'),
      () => (c.inputs.classes = new Int32Array(c.dims.n + 1)),
    );
  } else if (c.op === 'nms_onnx') {
    out.push(() => (c.options.centerPointBox = r.pick([2, -1, 0.5])), () => (c.options.maxOutputBoxesPerClass = r.pick([2.5, NaN])));
  } else {
    out.push(() => delete c.options.maxOutputSize, () => (c.options.maxOutputSize = r.pick([0.5, NaN])), () => (c.options.softNmsSigma = r.pick([-0.1, 1.5, NaN])));
  }
  return out;
}

/**
 * NaN, +Inf or -Inf into an NMS case (ops.md: a NaN score is never a candidate, infinite scores
 * order as numbers, a box with a non-finite coordinate overlaps nothing): into the scores (one,
 * several, a quarter of them: infinite ties) or the boxes (one coordinate, a row, a few rows).
 */
function putNonFiniteNms(r: Rng, c: FuzzCase): void {
  const name = r.chance(0.7) ? 'scores' : 'boxes';
  const v = c.inputs[name];
  if (!v) return;
  const data = ('data' in v ? v.data : v).slice() as Float32Array;
  if (data.length === 0) return;
  const value = r.weighted<number>([[NaN, 4], [Infinity, 3], [-Infinity, 3]]);
  let count = 0;
  if (name === 'scores') {
    const k = r.weighted<number>([[1, 4], [r.int(2, 6), 3], [Math.max(1, Math.floor(data.length / 4)), 1]]);
    for (let q = 0; q < k; q++) data[r.int(0, data.length - 1)] = value;
  } else {
    const rows = data.length / 4;
    const how = r.weighted<string>([['one', 4], ['row', 2], ['rows', 1]]);
    if (how === 'one') data[r.int(0, data.length - 1)] = value;
    else {
      for (let q = how === 'row' ? 1 : r.int(2, 4); q > 0; q--) {
        const row = r.int(0, rows - 1);
        data.fill(value, 4 * row, 4 * row + 4);
      }
    }
  }
  for (let q = 0; q < data.length; q++) if (Object.is(data[q], value)) count++;
  c.inputs[name] = 'data' in v ? { data, shape: v.shape } : data;
  c.nonFinite = { input: name, value, count };
  c.tags.push(`${name}=${value}${count > 1 ? ` x${count}` : ''}`);
}

/** The inputs a gradient is taken for, by name (every op's predictions). */
const PREDICTIONS = new Set(['pred', 'predDelta', 'logits', 'logProbs', 'input1', 'input2', 'student', 'a', 'scores', 'predBoxes', 'predDist', 'predScores']);

/**
 * Puts NaN, +Inf or -Inf into one float input of `c`: a prediction more often than a target, a
 * weight or gradOutput; one element, a few, or a whole row (every element of a short input).
 * Inputs whose host validators refuse such values (the margin losses' targets, say) are drawn
 * too: both sides must then refuse alike.
 */
function putNonFinite(r: Rng, c: FuzzCase): void {
  const floats = Object.entries(c.inputs).filter(([, v]) => ('data' in v ? v.data : v) instanceof Float32Array && ('data' in v ? v.data : v).length > 0);
  if (floats.length === 0) return;
  const [name, v] = r.weighted(floats.map((e) => [e, PREDICTIONS.has(e[0]) ? 3 : 1] as const));
  const data = ('data' in v ? v.data : v).slice() as Float32Array;
  const value = r.weighted<number>([[NaN, 4], [Infinity, 3], [-Infinity, 3]]);
  const how = r.weighted<string>([['one', 6], ['few', 3], ['row', 1]]);
  let count = 0;
  if (how === 'row') {
    const rows = Math.max(1, c.dims.n ?? 1);
    const width = data.length % rows === 0 ? data.length / rows : data.length;
    const row = r.int(0, Math.floor(data.length / width) - 1);
    data.fill(value, row * width, (row + 1) * width);
    count = width;
  } else {
    count = how === 'one' ? 1 : r.int(2, 4);
    for (let k = 0; k < count; k++) data[r.int(0, data.length - 1)] = value;
  }
  c.inputs[name] = 'data' in v ? { data, shape: v.shape } : data;
  c.nonFinite = { input: name, value, count };
  c.tags.push(`${name}=${value}${count > 1 ? ` x${count}` : ''}`);
}

/**
 * Case `index` of the run with `seed`. `big` allows the 65537-sized problems (slow on SwiftShader);
 * `nonFinite` is the share of cases given a NaN or an infinity (`NONFINITE_SHARE`; 0: none);
 * `tuned` the share of the fused ops' cases given a random tuned plan (`TUNED_SHARE`; 0: none);
 * `boxes` forces the recipe of box pairs (`BOX_RECIPES`) of `iou_loss` and `pairwise_iou`, `rotated`
 * that of rotated pairs (`ROTATED_RECIPES`) of `rotated_iou_loss` and `pairwise_probiou`.
 *
 * @example
 * const c = generateCase(1, 42);
 * await dl.run(c.op, c.inputs, c.options);
 */
export function generateCase(seed: number, index: number, opts: { big?: boolean; op?: string; nonFinite?: number; tuned?: number; boxes?: (typeof BOX_RECIPES)[number]; rotated?: (typeof ROTATED_RECIPES)[number] } = {}): FuzzCase {
  const r = new Rng(caseSeed(seed, index));
  const op = opts.op ?? FUZZ_OPS[index % FUZZ_OPS.length];
  const c: FuzzCase = { op, seed, index, inputs: {}, options: {}, rows: 'default', dims: {}, tags: [] };
  const big = opts.big ?? true;
  const wg = ROW_OPS.has(op) && r.chance(0.35);
  if (wg) c.rows = 'wg';
  if (op.startsWith('nms') && r.chance(0.4)) c.rows = 'hw';

  switch (op) {
    case 'l1': case 'mse': case 'smooth_l1': case 'huber': case 'balanced_l1': {
      const n = drawN(r, big);
      c.dims = { n };
      if (op === 'smooth_l1') c.options.beta = r.pick([0, 1e-3, 0.11, 1, 5, 100]);
      if (op === 'huber') c.options.delta = r.pick([1e-3, 0.5, 1, 5, 100]);
      if (op === 'balanced_l1') {
        c.options.alpha = r.pick([0.01, 0.05, 0.1, 0.5, 1, 2]);
        c.options.gamma = r.pick([0.1, 0.5, 1, 1.5, 3]);
        c.options.beta = r.pick([0.1, 0.5, 1, 2]);
      }
      const kink = (c.options.beta ?? c.options.delta ?? 1) as number;
      const s = drawScale(r);
      const pred: number[] = [];
      const target: number[] = [];
      for (let i = 0; i < n; i++) {
        const k = r.pick(['random', 'near', 'equal', 'grid', 'kink', 'small']);
        const p = k === 'grid' ? r.int(-3, 3) : s * r.normal();
        let t: number;
        if (k === 'equal') t = p;
        else if (k === 'near') t = p + s * 1e-3 * r.normal();
        else if (k === 'grid') t = r.int(-3, 3);
        else if (k === 'kink') t = p - (r.chance(0.5) ? 1 : -1) * kink * (1 + r.pick([0, 1e-7, -1e-7, 1e-3]));
        else if (k === 'small') t = p + r.pick([1e-6, -1e-6, 1e-4, 1e-8]);
        else t = drawScale(r) * r.normal();
        pred.push(p);
        target.push(t);
      }
      c.inputs = { pred: f32(pred), target: f32(target) };
      shared(r, c, n);
      break;
    }
    case 'iou_loss': {
      const n = r.chance(0.4) ? 1 : drawN(r, big);
      const variant = r.pick(['iou', 'giou', 'diou', 'ciou', 'eiou', 'siou', 'mpdiou', 'shape', 'wiou']);
      const format = r.pick(['xyxy', 'cxcywh', 'xywh']);
      c.options.variant = variant;
      c.options.format = format;
      if (variant === 'iou') c.options.mode = r.pick(['linear', 'square', 'log']);
      if (r.chance(0.3)) c.options.eps = r.pick([1e-9, 1e-7, 1e-3]);
      iouMoreParams(r, c.options);
      const { a, b, tags } = boxPairs(r, n, format, opts.boxes);
      c.tags.push(...tags);
      c.dims = { n };
      c.inputs = { pred: shaped(r, f32(a), [n, 4]), target: shaped(r, f32(b), [n, 4]) };
      shared(r, c, n);
      break;
    }
    case 'pairwise_iou': {
      const n = r.chance(0.3) ? 1 : r.pick([0, 1, 2, 3, 17, 63, 64, 65, 200]);
      const m = r.chance(0.3) ? 1 : r.pick([0, 1, 2, 5, 64, 65, 255, 256, 257]);
      c.options.variant = r.pick(['iou', 'giou', 'diou', 'ciou']);
      c.options.format = r.pick(['xyxy', 'cxcywh', 'xywh']);
      if (r.chance(0.5)) c.options.reduction = 'none';
      const ab = boxPairs(r, Math.max(n, m), c.options.format as string, opts.boxes);
      c.tags.push(...ab.tags);
      c.dims = { n, m };
      c.inputs = { a: shaped(r, f32(ab.a.slice(0, 4 * n)), [n, 4]), b: { data: f32(ab.b.slice(0, 4 * m)), shape: [m, 4] } };
      break;
    }
    case 'rotated_iou_loss': {
      const n = r.chance(0.4) ? 1 : drawN(r, big);
      rotatedParams(r, c.options);
      const { a, b, tags } = rotatedPairs(r, n, opts.rotated);
      c.tags.push(...tags);
      c.dims = { n };
      c.inputs = { pred: shaped(r, f32(a), [n, 5]), target: shaped(r, f32(b), [n, 5]) };
      if (c.options.variant === 'kfiou' && r.chance(0.4)) {
        // the box coder's deltas: small, at beta's scale, sometimes equal
        const s = r.pick([1e-2, 0.1, 1, 10]);
        const pd = Array.from({ length: 2 * n }, () => s * r.normal());
        const td = pd.map((v) => (r.chance(0.2) ? v : v + s * r.normal()));
        c.inputs.predDelta = shaped(r, f32(pd), [n, 2]);
        c.inputs.targetDelta = { data: f32(td), shape: [n, 2] };
        c.tags.push('deltas');
      }
      shared(r, c, n);
      break;
    }
    case 'pairwise_probiou': {
      const n = r.chance(0.3) ? 1 : r.pick([0, 1, 2, 3, 17, 63, 64, 65, 200]);
      const m = r.chance(0.3) ? 1 : r.pick([0, 1, 2, 5, 64, 65, 255, 256, 257]);
      if (r.chance(0.35)) c.options.eps = r.pick([1e-9, 1e-7, 1e-5, 1e-3]);
      if (r.chance(0.3)) c.options.reduction = 'none';
      const ab = rotatedPairs(r, Math.max(n, m), opts.rotated);
      c.tags.push(...ab.tags);
      c.dims = { n, m };
      c.inputs = { a: shaped(r, f32(ab.a.slice(0, 5 * n)), [n, 5]), b: { data: f32(ab.b.slice(0, 5 * m)), shape: [m, 5] } };
      break;
    }
    case 'sigmoid_focal': case 'varifocal': case 'bce_with_logits': {
      const c0 = op === 'sigmoid_focal' ? 1 : drawRow(r);
      const ncls = Math.min(c0, 80);
      const n = Math.min(drawN(r, big), Math.max(1, Math.floor(80000 / ncls)));
      const s = r.pick([1e-3, 1, 8, 30, 100]);
      const x = Array.from({ length: n * ncls }, () => logit(r, s));
      let t = Array.from({ length: n * ncls }, () => unit(r));
      if (op === 'varifocal') t = t.map((v) => (r.chance(0.5) ? 0 : v));
      if (op === 'sigmoid_focal') {
        c.options.alpha = r.pick([0.25, -1, 0, 1, 0.75, -0.5]);
        c.options.gamma = r.pick([0, 0.5, 1, 2, 3]);
        c.dims = { n };
        c.inputs = { logits: f32(x), targets: f32(t) };
      } else {
        c.dims = { n, c: ncls };
        c.inputs = { logits: { data: f32(x), shape: [n, ncls] }, targets: { data: f32(t), shape: [n, ncls] } };
        if (op === 'varifocal') {
          c.options.alpha = r.pick([0.75, 0, 1, 2]);
          c.options.gamma = r.pick([0, 0.5, 2, 3]);
          c.options.iouWeighted = r.chance(0.5);
        } else if (r.chance(0.4)) {
          c.inputs.posWeight = f32(Array.from({ length: ncls }, () => r.pick([0.1, 1, 5, r.uniform(0, 3)])));
          c.tags.push('posWeight');
        }
      }
      shared(r, c, n * (op === 'sigmoid_focal' ? 1 : ncls));
      break;
    }
    case 'quality_focal': case 'cross_entropy': case 'kl_div': case 'dice': case 'distribution_focal': {
      const len = drawRow(r) + (op === 'distribution_focal' ? 1 : 0);
      const n = fitRows(drawN(r, big), len, wg);
      const s = r.pick([1e-3, 1, 8, 30, 100, 200]);
      const x = Array.from({ length: n * len }, () => logit(r, s));
      if (op === 'quality_focal') {
        c.options.beta = r.pick([0, 0.5, 1, 2, 3]);
        const labels = Array.from({ length: n }, () => (r.chance(0.3) ? r.pick([len, -1, 1000, -100]) : r.int(0, len - 1)));
        c.inputs = { logits: shaped(r, f32(x), [n, len]), labels: Int32Array.from(labels), scores: f32(Array.from({ length: n }, () => unit(r))) };
        c.dims = { n, c: len };
      } else if (op === 'cross_entropy') {
        const ignore = r.weighted<number>([[-100, 3], [-1, 1], [0, 1], [len, 1], [2 ** 31, 0.2], [2 ** 32, 0.2], [-(2 ** 31) - 1, 0.2]]);
        if (ignore !== -100 || r.chance(0.3)) c.options.ignoreIndex = ignore;
        c.options.labelSmoothing = r.pick([0, 0, 0.1, 0.5, 1]);
        const labels = Array.from({ length: n }, () => (r.chance(0.2) && ignore >= -(2 ** 31) && ignore < 2 ** 31 ? ignore : r.int(0, len - 1)));
        c.inputs = { logits: shaped(r, f32(x), [n, len]), labels: Int32Array.from(labels) };
        if (r.chance(0.4)) {
          c.inputs.classWeight = f32(Array.from({ length: len }, () => r.pick([0, 0.1, 1, 3, r.uniform(0, 2)])));
          c.tags.push('classWeight');
        }
        c.dims = { n, c: len };
      } else if (op === 'kl_div') {
        c.options.temperature = r.pick([0.5, 1, 2, 4, 10]);
        c.options.classReduction = r.pick(['sum', 'mean']);
        const near = r.chance(0.4);
        const t = near ? x.map((v) => v + r.pick([1e-3, 1e-5, 0]) * r.normal()) : Array.from({ length: n * len }, () => logit(r, s));
        if (near) c.tags.push('near');
        c.inputs = { student: shaped(r, f32(x), [n, len]), teacher: { data: f32(t), shape: [n, len] } };
        c.dims = { n, c: len };
      } else if (op === 'dice') {
        c.options.eps = r.pick([0, 1e-6, 1e-3, 1]);
        c.options.naive = r.chance(0.5);
        c.inputs = { logits: shaped(r, f32(x), [n, len]), targets: { data: f32(Array.from({ length: n * len }, () => unit(r))), shape: [n, len] } };
        c.dims = { n, p: len };
      } else {
        const k = len;
        const targets = Array.from({ length: n }, () => (r.chance(0.3) ? r.int(0, k - 2) : Math.fround(r.uniform(0, k - 1) * 0.999999)));
        c.inputs = { logits: shaped(r, f32(x), [n, k]), targets: f32(targets) };
        c.dims = { n, k };
      }
      shared(r, c, n);
      break;
    }
    case 'softmax_focal': case 'nll': case 'class_balanced_focal': {
      const len = drawRow(r);
      const n = fitRows(drawN(r, big), len, wg);
      const s = r.pick([1e-3, 1, 8, 30, 100, 200]);
      let x = Array.from({ length: n * len }, () => logit(r, s));
      c.dims = { n, c: len };
      if (op === 'class_balanced_focal') {
        c.options.beta = r.pick([0, 0.9, 0.99, 0.9999, 0.999999]);
        c.options.gamma = r.pick([0, 0.5, 1, 2, 3]);
        // Labels outside 0..c-1 are background rows; counts include 0 (weight 0) and large ones.
        const labels = Array.from({ length: n }, () => (r.chance(0.25) ? r.pick([len, -1, 1000]) : r.int(0, len - 1)));
        const counts = Array.from({ length: len }, () => r.pick([0, 1, 5, 100, 1e4, r.int(0, 50)]));
        c.inputs = { logits: shaped(r, f32(x), [n, len]), labels: Int32Array.from(labels), samplesPerClass: f32(counts) };
        shared(r, c, n * len);
        break;
      }
      const ignore = r.weighted<number>([[-100, 3], [-1, 1], [0, 1], [len, 1]]);
      if (ignore !== -100 || r.chance(0.3)) c.options.ignoreIndex = ignore;
      if (op === 'softmax_focal') c.options.gamma = r.pick([0, 0.5, 1, 2, 5]);
      const labels = Array.from({ length: n }, () => (r.chance(0.2) ? ignore : r.int(0, len - 1)));
      if (op === 'nll') {
        // log-probabilities: a log-softmax of the logits, sometimes any numbers (F.nll_loss does not check).
        if (r.chance(0.7)) {
          for (let i = 0; i < n; i++) {
            const row = x.slice(i * len, (i + 1) * len);
            const m = Math.max(...row);
            const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
            for (let j = 0; j < len; j++) x[i * len + j] = row[j] - lse;
          }
        } else x = x.map((v) => -Math.abs(v));
        c.inputs = { logProbs: shaped(r, f32(x), [n, len]), labels: Int32Array.from(labels) };
      } else c.inputs = { logits: shaped(r, f32(x), [n, len]), labels: Int32Array.from(labels) };
      if (r.chance(0.4)) {
        c.inputs.classWeight = f32(Array.from({ length: len }, () => r.pick([0, 0.1, 1, 3, r.uniform(0, 2)])));
        c.tags.push('classWeight');
      }
      shared(r, c, n);
      break;
    }
    case 'hinge': case 'hinge_embedding': case 'margin_ranking': case 'exponential': {
      const n = drawN(r, big);
      c.dims = { n };
      const s = drawScale(r);
      if (op !== 'exponential') c.options.margin = r.pick([0, 0.5, 1, 2, -1]);
      const margin = (c.options.margin as number | undefined) ?? (op === 'margin_ranking' ? 0 : 1);
      const y = Array.from({ length: n }, () => sign(r));
      // Values drawn at the kink (z = 0) as well as anywhere; exponential also past its cap of 80.
      const at = (i: number, z: number) => {
        if (op === 'hinge') return (margin - z) / y[i];
        if (op === 'hinge_embedding') return margin - z;
        return z;
      };
      const x = Array.from({ length: n }, (_, i) => {
        const k = r.pick(['random', 'kink', 'grid', 'far']);
        if (k === 'kink') return op === 'exponential' ? r.pick([-80, 80, 0]) * y[i] : at(i, 0);
        if (k === 'grid') return r.int(-3, 3);
        if (k === 'far') return r.pick([-200, -90, 90, 200]);
        return s * r.normal();
      });
      if (op === 'margin_ranking') {
        const x2 = x.map((v, i) => (r.chance(0.25) ? v + margin * y[i] : s * r.normal()));
        c.inputs = { input1: f32(x), input2: f32(x2), targets: f32(y) };
      } else if (op === 'hinge_embedding') c.inputs = { pred: f32(x), targets: f32(y) };
      else c.inputs = { logits: f32(x), targets: f32(y) };
      shared(r, c, n);
      break;
    }
    case 'ap_loss': case 'rank_sort':
      rankingCase(r, c, big);
      break;
    case 'tal_assign': case 'yolo_detection_loss':
      talCase(r, c);
      break;
    case 'nms': case 'nms_onnx': case 'nms_tfjs':
      nmsCase(r, c);
      break;
    default:
      throw new Error(`fuzz: no generator for ${op}`);
  }
  // From a stream of its own, so that the cases drawn before (their finite inputs) stay as they were.
  const nf = new Rng(caseSeed(seed ^ 0x6e616e21, index));
  if (NMS_OPS.has(op)) {
    // (NaN and infinite scores are part of what NMS orders: more often, and several at a time)
    if (nf.chance(opts.nonFinite === undefined ? NMS_NONFINITE_SHARE : Math.min(1, 2 * opts.nonFinite))) putNonFiniteNms(nf, c);
  } else if (nf.chance(opts.nonFinite ?? NONFINITE_SHARE)) putNonFinite(nf, c);
  // the ranking losses have more ways to be refused (ops.md): invalid more often
  if (r.chance(op === 'ap_loss' || op === 'rank_sort' ? 0.1 : 0.04)) invalidate(r, c);
  // A random tuned plan, last and from a stream of its own: the case is the one drawn without it.
  const plan = drawCasePlan(c, opts.tuned ?? TUNED_SHARE);
  if (plan) {
    c.plan = plan;
    c.tags.push(`plan ${plan.size} wg${plan.plan.workgroupSize}`);
  }
  return c;
}
