/**
 * The benchmark's cases: what `detloss bench` times (ops, sizes, contenders), as the harness
 * (bench/harness.ts) takes them. Imports nothing else of the bench.
 */

/** One benchmark case, as the page takes it (bench/page.ts). */
export interface BenchCase {
  op: string;
  params: Record<string, unknown>;
  n: number;
  width?: number;
  tfjs: string;
  /** Ranking losses: the fraction of scores that are positives. */
  positives?: number;
}

/**
 * `detloss-gpu-rows`: the same call with a workgroup per row forced (row ops only), to measure the
 * choice. `detloss-gpu-pipelined`: 10 resident calls back to back and one wait, time per call.
 */
export const CONTENDERS = ['detloss-gpu', 'detloss-gpu-rows', 'detloss-gpu-resident', 'detloss-gpu-pipelined', 'detloss-cpu', 'tfjs-webgpu', 'tfjs-cpu', 'js-authors-loop', 'copy'] as const;
export type Contender = (typeof CONTENDERS)[number];
/** What each driver times: Chromium as before issue 10, Node with the pipelined calls and without the forced rows. */
export const DRIVER_CONTENDERS: Record<BenchDriverKind, readonly Contender[]> = {
  chromium: ['detloss-gpu', 'detloss-gpu-rows', 'detloss-gpu-resident', 'detloss-cpu', 'tfjs-webgpu', 'tfjs-cpu', 'js-authors-loop', 'copy'],
  node: ['detloss-gpu', 'detloss-gpu-resident', 'detloss-gpu-pipelined', 'detloss-cpu', 'tfjs-webgpu', 'tfjs-cpu', 'js-authors-loop', 'copy'],
};

/** Where the harness runs: headless Chromium (the default) or Node's WebGPU in this process. */
export type BenchDriverKind = 'chromium' | 'node';

/**
 * The rotated-box losses: ultralytics' ProbIoU and mmrotate's KLD (GDLoss's defaults), against the
 * same formulas composed from TF.js ops (bench/tfjs-losses.ts). Up to 1e6 boxes in either driver.
 */
export const ROTATED_ROWS: readonly Omit<BenchCase, 'n'>[] = [
  { op: 'rotated_iou_loss', params: { variant: 'probiou' }, tfjs: 'probiou' },
  { op: 'rotated_iou_loss', params: { variant: 'kld' }, tfjs: 'kld' },
];

/** The cases of issue 5: ops at N = 1e4, 1e5, 1e6 rows; pairwise at n = m = 1000 and 4000. */
export function defaultCases(ns = [1e4, 1e5, 1e6], pairwiseNs = [1000, 4000]): BenchCase[] {
  const rows: Omit<BenchCase, 'n'>[] = [
    { op: 'smooth_l1', params: {}, tfjs: 'smooth_l1' },
    { op: 'iou_loss', params: { variant: 'giou' }, tfjs: 'giou' },
    { op: 'iou_loss', params: { variant: 'ciou' }, tfjs: 'ciou' },
    { op: 'iou_loss', params: { variant: 'siou' }, tfjs: 'siou' },
    { op: 'iou_loss', params: { variant: 'shape' }, tfjs: 'shape' },
    { op: 'iou_loss', params: { variant: 'wiou' }, tfjs: 'wiou' },
    ...ROTATED_ROWS,
    { op: 'sigmoid_focal', params: {}, tfjs: 'sigmoid_focal' },
    { op: 'quality_focal', params: {}, width: 80, tfjs: 'quality_focal' },
    { op: 'cross_entropy', params: {}, width: 80, tfjs: 'cross_entropy' },
    { op: 'softmax_focal', params: {}, width: 80, tfjs: 'softmax_focal' },
    { op: 'class_balanced_focal', params: {}, width: 80, tfjs: 'class_balanced_focal' },
    { op: 'distribution_focal', params: {}, width: 17, tfjs: 'distribution_focal' },
  ];
  const out: BenchCase[] = [];
  for (const r of rows) for (const n of ns) out.push({ ...r, n });
  for (const variant of ['iou', 'giou']) for (const n of pairwiseNs) out.push({ op: 'pairwise_iou', params: { variant }, n, tfjs: `pairwise:${variant}` });
  out.push(...yoloCases());
  return out;
}

/** What a ranking case times. */
export const RANKING_CONTENDERS: readonly Contender[] = ['detloss-gpu', 'detloss-cpu', 'js-authors-loop', 'copy'];

/** The ranking losses (issue 15), which have no TF.js peer: their baseline is the authors' loop in plain JavaScript. */
export const RANKING_BENCH_OPS: readonly string[] = ['ap_loss', 'rank_sort'];

/**
 * The ranking cases of issue 15: ap_loss and rank_sort at N = 1e5 and 1e6 scores with 0.1% and 1%
 * positives. Not in the quick preset: `--ops ap_loss,rank_sort` (or `--full --node`) runs them.
 */
export function rankingCases(ns = [1e5, 1e6]): BenchCase[] {
  const out: BenchCase[] = [];
  for (const op of RANKING_BENCH_OPS) for (const n of ns) for (const positives of [0.001, 0.01]) out.push({ op, params: {}, n, tfjs: '', positives });
  return out;
}

/** The assigner and the YOLO loss: what a YOLO case times (the CPU reference at a smaller B). */
export const YOLO_BENCH_OPS: readonly string[] = ['yolo_detection_loss', 'tal_assign'];

/**
 * The YOLO cases: YOLOv8n's training shapes, a 640 x 640 image (A = 8400 at strides 8/16/32), C = 80,
 * R = 16, M = 50 padded with 8 real boxes per image, at B images (`n`, default 16): the whole
 * `yolo_detection_loss` forward and backward, and `tal_assign` alone. Not in the quick preset:
 * `--ops yolo_detection_loss,tal_assign` (or `--full`) runs them.
 */
export function yoloCases(ns = [16]): BenchCase[] {
  return ns.flatMap((n) => [
    { op: 'yolo_detection_loss', params: {}, n, tfjs: 'yolo' },
    { op: 'tal_assign', params: {}, n, tfjs: 'tal' },
  ]);
}

/** Non-maximum suppression: `nms` on single-class boxes, and the YOLO post-process. */
export const NMS_BENCH_OPS: readonly string[] = ['nms', 'yolo_nms'];

/**
 * The NMS cases: `nms` on n clustered single-class boxes (IoU 0.5, no score threshold), and the
 * YOLO post-process (`yolo_nms`) of B images of an exported detector's output [B, 84, 8400]
 * (640 px, C = 80) with ultralytics' defaults: conf 0.25, IoU 0.45, at most 300 per image. Each
 * against `tf.image.nonMaxSuppressionAsync` on TF.js's WebGPU backend (the readback it forces
 * included) and the CPU reference. `ns`: the box counts; `bs`: the images.
 */
export function nmsCases(ns = [1000, 20000], bs = [1]): BenchCase[] {
  return [...ns.map((n) => ({ op: 'nms', params: { iouThreshold: 0.5 }, n, tfjs: 'nms' })), ...bs.map((n) => ({ op: 'yolo_nms', params: {}, n, tfjs: 'yolo_nms' }))];
}

/**
 * The cases of `detloss bench --node` (issue 10): element-wise and box ops at N = 1e4 to 1e7 (rotated
 * boxes to 1e6),
 * row ops (c = 80 logits, k = 17 bins; sigmoid_focal shaped [N, 80]) at 1e4 to 1e6 rows, pairwise
 * at n = m = 1e3, 4e3, 1e4. `ns` replaces every list (pairwise keeps the N <= 1e4 of it).
 */
export function nodeCases(ns?: number[]): BenchCase[] {
  const flat = ns ?? [1e4, 1e5, 1e6, 1e7];
  const rowNs = ns ?? [1e4, 1e5, 1e6];
  const pairNs = ns ? ns.filter((n) => n <= 1e4) : [1e3, 4e3, 1e4];
  const rows: [Omit<BenchCase, 'n'>, number[]][] = [
    [{ op: 'smooth_l1', params: {}, tfjs: 'smooth_l1' }, flat],
    [{ op: 'iou_loss', params: { variant: 'giou' }, tfjs: 'giou' }, flat],
    [{ op: 'iou_loss', params: { variant: 'ciou' }, tfjs: 'ciou' }, flat],
    [{ op: 'iou_loss', params: { variant: 'siou' }, tfjs: 'siou' }, flat],
    [{ op: 'iou_loss', params: { variant: 'shape' }, tfjs: 'shape' }, flat],
    [{ op: 'iou_loss', params: { variant: 'wiou' }, tfjs: 'wiou' }, flat],
    ...ROTATED_ROWS.map((r): [Omit<BenchCase, 'n'>, number[]] => [r, rowNs]),
    [{ op: 'sigmoid_focal', params: {}, width: 80, tfjs: 'sigmoid_focal' }, rowNs],
    [{ op: 'quality_focal', params: {}, width: 80, tfjs: 'quality_focal' }, rowNs],
    [{ op: 'cross_entropy', params: {}, width: 80, tfjs: 'cross_entropy' }, rowNs],
    [{ op: 'softmax_focal', params: {}, width: 80, tfjs: 'softmax_focal' }, rowNs],
    [{ op: 'class_balanced_focal', params: {}, width: 80, tfjs: 'class_balanced_focal' }, rowNs],
    [{ op: 'distribution_focal', params: {}, width: 17, tfjs: 'distribution_focal' }, rowNs],
  ];
  const out: BenchCase[] = [];
  for (const [r, list] of rows) for (const n of list) out.push({ ...r, n });
  for (const variant of ['iou', 'giou']) for (const n of pairNs) out.push({ op: 'pairwise_iou', params: { variant }, n, tfjs: `pairwise:${variant}` });
  out.push(...rankingCases(ns));
  out.push(...yoloCases(ns ? ns.filter((n) => n <= 64) : undefined));
  out.push(...nmsCases(ns, ns ? ns.filter((n) => n <= 64) : undefined));
  return out;
}

/** The ops of the quick preset (`detloss bench` without `--full`): one of each family. */
export const QUICK_OPS: readonly { op: string; variant?: string }[] = [{ op: 'iou_loss', variant: 'ciou' }, { op: 'smooth_l1' }, { op: 'sigmoid_focal' }, { op: 'cross_entropy' }];

/**
 * The cases `detloss bench` runs. `full`: {@link defaultCases} (Chromium) or {@link nodeCases}
 * (Node). Otherwise the quick preset, which finishes in a couple of minutes on a software adapter:
 * the {@link QUICK_OPS} at N = 1e4 and 1e5 (row ops, c = 80: 1e4 rows). `ops` picks ops from the
 * whole list instead (every variant of each, at the preset's sizes); `ns` replaces every size
 * (pairwise keeps those up to 4e3 in Chromium, 1e4 on Node).
 */
export function benchCases(opts: { driver: BenchDriverKind; full?: boolean; ops?: string[]; ns?: number[] }): BenchCase[] {
  const { driver, ns } = opts;
  const pairMax = driver === 'node' ? 1e4 : 4000;
  let cases: BenchCase[];
  if (opts.full) cases = driver === 'node' ? nodeCases(ns) : defaultCases(ns, ns ? ns.filter((n) => n <= pairMax) : undefined);
  else {
    // The shapes of the driver's full list, one case per op and variant, at the quick sizes.
    const base = driver === 'node' ? nodeCases([1]) : [...defaultCases([1], [1]), ...rankingCases([1]), ...yoloCases([1]), ...nmsCases([1], [1])];
    const shapes = base.filter((c, i, all) => all.findIndex((d) => caseLabel(d) === caseLabel(c)) === i);
    const picked = opts.ops ? shapes : shapes.filter((c) => QUICK_OPS.some((q) => q.op === c.op && q.variant === c.params.variant));
    cases = [];
    for (const c of picked) {
      const yolo = YOLO_BENCH_OPS.includes(c.op) || c.op === 'yolo_nms';
      const quick = c.op === 'nms' ? [1000, 20000] : c.op === 'yolo_nms' ? [1] : yolo ? [16] : c.op === 'pairwise_iou' ? [1000] : c.positives ? [1e5, 1e6] : c.width ? [1e4] : [1e4, 1e5];
      const sizes = ns ? (c.op === 'pairwise_iou' ? ns.filter((n) => n <= pairMax) : yolo ? ns.filter((n) => n <= 64) : ns) : quick;
      for (const n of sizes) cases.push({ ...c, n });
    }
  }
  return opts.ops ? cases.filter((c) => opts.ops!.includes(c.op)) : cases;
}

export const caseLabel = (c: BenchCase) => c.op === 'yolo_nms' ? `yolo_nms B=${c.n} [B, 84, 8400] conf 0.25 IoU 0.45` : c.op === 'nms' ? `nms single-class IoU 0.5` : YOLO_BENCH_OPS.includes(c.op) ? `${c.op} B=${c.n} 640px A=8400 C=80${c.op === 'yolo_detection_loss' ? ' R=16' : ''} M=50` : `${c.op}${c.params.variant ? `{${c.params.variant}}` : ''}${c.width ? ` c=${c.width}` : ''}${c.positives ? ` p=${+(c.positives * 100).toFixed(2)}%` : ''}`;

/** A launch plan the plan probe times: a name, and the `plan` option of createDetloss. */
export interface ProbePlan {
  name: string;
  plan: string | Record<string, unknown>;
}

/** A case of `detloss bench --probe-plans`, with the names of the plans it is timed under (see {@link probePlan}). */
export interface ProbeCase extends BenchCase {
  plans: string[];
}

/** Every case's plans: the software plan and the hardware plan at four thread counts (256k is its default). */
export const PROBE_PLANS: readonly ProbePlan[] = [
  { name: 'software', plan: 'software' },
  { name: 'hw 64k', plan: { kind: 'hardware', maxThreads: 65536 } },
  { name: 'hw 256k (default)', plan: { kind: 'hardware', maxThreads: 262144 } },
  { name: 'hw 1M', plan: { kind: 'hardware', maxThreads: 1 << 20 } },
  { name: 'hw 4M', plan: { kind: 'hardware', maxThreads: 1 << 22 } },
];

/** Row ops besides: who computes a row (a thread, a subgroup, a workgroup), at several thread counts. */
export const PROBE_ROW_PLANS: readonly ProbePlan[] = [
  { name: 'hw 256k thread/row', plan: { kind: 'hardware', maxThreads: 262144, rowThreshold: Infinity } },
  { name: 'hw 1M thread/row', plan: { kind: 'hardware', maxThreads: 1 << 20, rowThreshold: Infinity } },
  { name: 'hw 1M subgroup/row', plan: { kind: 'hardware', maxThreads: 1 << 20, rowThreshold: 0, rowLanes: 'subgroup' } },
  { name: 'hw 4M subgroup/row', plan: { kind: 'hardware', maxThreads: 1 << 22, rowThreshold: 0, rowLanes: 'subgroup' } },
  { name: 'hw 1M wg/row', plan: { kind: 'hardware', maxThreads: 1 << 20, rowThreshold: 0, rowLanes: 'workgroup' } },
  { name: 'hw 4M wg/row', plan: { kind: 'hardware', maxThreads: 1 << 22, rowThreshold: 0, rowLanes: 'workgroup' } },
];

/** Element-wise ops with vec4 kernels besides: their scalar kernels, beside the vec4 ones the plans above take. */
export const PROBE_SCALAR_PLANS: readonly ProbePlan[] = [
  { name: 'software scalar', plan: { kind: 'software', vectorWidth: 1 } },
  { name: 'hw 256k scalar', plan: { kind: 'hardware', maxThreads: 262144, vectorWidth: 1 } },
  { name: 'hw 1M scalar', plan: { kind: 'hardware', maxThreads: 1 << 20, vectorWidth: 1 } },
];

/**
 * The cases of `detloss bench --probe-plans`: launch overhead (l1 at 1e4), element-wise, box, row and
 * pairwise ops at sizes that fill a large GPU (up to 8e7 elements), or a tenth of them with `quick`
 * (row ops at 1e5 rows either way). `ops` keeps only those ops.
 */
export function probeCases(opts: { quick?: boolean; ops?: string[] } = {}): ProbeCase[] {
  const big = opts.quick ? 0.1 : 1;
  // Two sizes, or one where `quick` makes them equal.
  const sizes = (a: number, b: number) => (a === b ? [a] : [a, b]);
  const names = (...lists: (readonly ProbePlan[])[]) => lists.flat().map((p) => p.name);
  const flat = (op: string, n: number, vec4: boolean, params: Record<string, unknown> = {}): ProbeCase => ({ op, params, n, tfjs: '', plans: names(PROBE_PLANS, vec4 ? PROBE_SCALAR_PLANS : []) });
  const rows = (op: string, n: number, width: number): ProbeCase => ({ op, params: {}, n, width, tfjs: '', plans: names(PROBE_PLANS, PROBE_ROW_PLANS) });
  const cases: ProbeCase[] = [
    flat('l1', 1e4, true),
    flat('smooth_l1', 4e7 * big, true),
    ...['giou', 'ciou'].flatMap((variant) => sizes(1e6, 1e7 * big).map((n) => flat('iou_loss', n, false, { variant }))),
    flat('sigmoid_focal', 8e7 * big, true),
    ...['quality_focal', 'cross_entropy'].flatMap((op) => sizes(1e6 * big, 1e5).map((n) => rows(op, n, 80))),
    rows('distribution_focal', 1e6 * big, 17),
    flat('pairwise_iou', opts.quick ? 2000 : 1e4, false, { variant: 'iou' }),
  ];
  return opts.ops ? cases.filter((c) => opts.ops!.includes(c.op)) : cases;
}

/**
 * The `plan` option of the probe's plan `name`. Cases name their plans, since a plan can hold
 * `Infinity`, which does not survive the JSON that carries a case to the harness.
 */
export function probePlan(name: string): ProbePlan['plan'] {
  const p = [...PROBE_PLANS, ...PROBE_ROW_PLANS, ...PROBE_SCALAR_PLANS].find((q) => q.name === name);
  if (!p) throw new Error(`no probe plan named ${name}`);
  return p.plan;
}
