/**
 * What any valid assignment of `tal_assign` keeps, whatever the float32 rounding decided at a near
 * tie (ops.md, "Task-aligned assignment and the YOLOv8 loss", steps 4 to 6), and what any result
 * of `yolo_detection_loss` keeps. The misuse suites hold results of non-finite inputs to these
 * (ops.md: unspecified numbers, but every index in range), and the fuzzer holds the cases it cannot
 * compare exactly (a decision within float32 rounding of a tie) to them.
 */

type Arr = ArrayLike<number>;
const data = (v: unknown): Arr => (ArrayBuffer.isView(v) ? (v as unknown as Arr) : (v as { data: Arr }).data);

/** Sizes of an assigner call: B images, A anchors, C classes, M gt rows. */
export interface TalDims {
  b: number;
  a: number;
  c: number;
  m: number;
}

/**
 * The first broken invariant of a `tal_assign` result, or undefined:
 * - lengths B*A (labels, foreground, gtIndex; Int32Array), B*A*4 (boxes), B*A*C (targetScores);
 * - M = 0: every anchor label C, boxes 0, targetScores 0, foreground 0, gtIndex 0;
 * - M > 0: foreground 0 or 1; gtIndex in [0, M), 0 at a background anchor; labels and boxes the
 *   row gtIndex names (bit for bit, NaN included); targetScores 0 outside the anchor's label, and
 *   0 at a background anchor; at most topk anchors per real gt row in the image are foreground in
 *   all (each is selected by a real gt, which selects at most topk); a foreground anchor's centre
 *   lies inside a real gt of its image (a slack of rounding allowed: the test is float32's; a gt
 *   with a NaN coordinate may hold any anchor, as WGSL's min may drop the NaN);
 * - with `finite` (finite inputs): targetScores in [0, 1 + 1e-6].
 */
export function assignmentBreach(
  inputs: Record<string, unknown>,
  out: Record<string, Arr> | undefined,
  d: TalDims,
  topk: number,
  o: { finite?: boolean; anchorsPx?: Arr } = {},
): string | undefined {
  if (!out) return 'no outputs';
  const { b: B, a: A, c: C, m: M } = d;
  const { labels, boxes, targetScores: ts, foreground: fg, gtIndex } = out;
  for (const [k, n] of [['labels', B * A], ['foreground', B * A], ['gtIndex', B * A], ['boxes', 4 * B * A], ['targetScores', B * A * C]] as const) {
    if (!out[k]) return `no output ${k}`;
    if (out[k].length !== n) return `${k}: length ${out[k].length}, want ${n}`;
  }
  for (const k of ['labels', 'foreground', 'gtIndex']) if (!(out[k] instanceof Int32Array)) return `${k}: not an Int32Array`;
  const gl = data(inputs.gtLabels);
  const gb = data(inputs.gtBoxes);
  const gm = data(inputs.gtMask);
  const anchors = o.anchorsPx ?? data(inputs.anchors);
  for (let b = 0; b < B; b++) {
    let fgCount = 0;
    let real = 0;
    for (let j = 0; j < M; j++) real += gm[b * M + j] === 1 ? 1 : 0;
    for (let a = 0; a < A; a++) {
      const i = b * A + a;
      const at = `image ${b} anchor ${a}`;
      if (M === 0) {
        if (labels[i] !== C || fg[i] !== 0 || gtIndex[i] !== 0) return `${at}: M = 0 wants label ${C}, foreground 0, gtIndex 0; got ${labels[i]}, ${fg[i]}, ${gtIndex[i]}`;
        for (let q = 0; q < 4; q++) if (!Object.is(boxes[4 * i + q], 0) && boxes[4 * i + q] !== 0) return `${at}: M = 0 wants box 0, got ${boxes[4 * i + q]}`;
        for (let c = 0; c < C; c++) if (ts[i * C + c] !== 0) return `${at}: M = 0 wants targetScores 0, got ${ts[i * C + c]}`;
        continue;
      }
      if (fg[i] !== 0 && fg[i] !== 1) return `${at}: foreground ${fg[i]}`;
      const j = gtIndex[i];
      if (!(Number.isInteger(j) && j >= 0 && j < M)) return `${at}: gtIndex ${j} outside [0, ${M})`;
      if (fg[i] === 0 && j !== 0) return `${at}: a background anchor with gtIndex ${j} (want 0)`;
      if (labels[i] !== gl[b * M + j]) return `${at}: label ${labels[i]}, but row ${j}'s is ${gl[b * M + j]}`;
      for (let q = 0; q < 4; q++) {
        const want = gb[(b * M + j) * 4 + q];
        if (!Object.is(Math.fround(want), boxes[4 * i + q]) && !(want === 0 && boxes[4 * i + q] === 0)) return `${at}: boxes[${q}] ${boxes[4 * i + q]}, but row ${j}'s is ${want}`;
      }
      for (let c = 0; c < C; c++) {
        const v = ts[i * C + c];
        if ((fg[i] === 0 || c !== labels[i]) && v !== 0) return `${at}: targetScores[${c}] = ${v} (foreground ${fg[i]}, label ${labels[i]}): want 0`;
        if (o.finite && !(v >= 0 && v <= 1 + 1e-6)) return `${at}: targetScores[${c}] = ${v}, not in [0, 1]`;
      }
      if (fg[i] === 1) {
        fgCount++;
        const [ax, ay] = [anchors[2 * a], anchors[2 * a + 1]];
        let inside = false;
        for (let r = 0; r < M && !inside; r++) {
          if (gm[b * M + r] !== 1) continue;
          const g = [0, 1, 2, 3].map((q) => gb[(b * M + r) * 4 + q]);
          const slack = 1e-6 * (1 + Math.abs(ax) + Math.abs(ay) + g.reduce((s, v) => s + Math.abs(v), 0));
          // (a NaN coordinate may drop out of WGSL's min: such a gt may hold any anchor)
          inside = g.some(Number.isNaN) || Math.min(ax - g[0], ay - g[1], g[2] - ax, g[3] - ay) > -slack;
        }
        if (!inside && Number.isFinite(ax) && Number.isFinite(ay)) return `${at}: foreground, but its centre (${ax}, ${ay}) is inside no real gt`;
      }
    }
    if (fgCount > topk * real) return `image ${b}: ${fgCount} foreground anchors, more than topk ${topk} x ${real} real gts`;
  }
  return undefined;
}

/**
 * The first broken invariant of a `yolo_detection_loss` result: a loss of one number and three
 * components; gradients of their inputs' lengths; with `finite` (finite inputs), every number
 * finite, and with gains >= 0 each component >= 0 and the loss B * their sum (to float32 rounding).
 */
export function yoloBreach(
  res: { loss: Arr; grad: Record<string, Arr>; outputs?: Record<string, Arr> },
  lengths: { predDist: number; predScores: number },
  b: number,
  o: { finite?: boolean; gains?: [number, number, number]; grad?: boolean } = {},
): string | undefined {
  if (res.loss.length !== 1) return `loss: length ${res.loss.length}, want 1`;
  const comps = res.outputs?.components;
  if (!comps || comps.length !== 3) return `components: ${comps ? `length ${comps.length}` : 'missing'}, want 3`;
  if (o.grad !== false) {
    for (const k of ['predDist', 'predScores'] as const) if (res.grad[k]?.length !== lengths[k]) return `grad.${k}: length ${res.grad[k]?.length}, want ${lengths[k]}`;
  }
  if (!o.finite) return undefined;
  if (!Number.isFinite(res.loss[0])) return `loss ${res.loss[0]} for finite input`;
  for (let k = 0; k < 3; k++) if (!Number.isFinite(comps[k])) return `components[${k}] ${comps[k]} for finite input`;
  for (const [k, g] of Object.entries(res.grad)) for (let i = 0; i < g.length; i++) if (!Number.isFinite(g[i])) return `grad.${k}[${i}] ${g[i]} for finite input`;
  if (o.gains && o.gains.every((x) => x >= 0)) {
    for (let k = 0; k < 3; k++) if (comps[k] < 0) return `components[${k}] = ${comps[k]} < 0 with gains >= 0`;
    const sum = b * (comps[0] + comps[1] + comps[2]);
    if (Math.abs(res.loss[0] - sum) > 1e-5 * (1 + Math.abs(sum))) return `loss ${res.loss[0]}, but B * sum(components) = ${sum}`;
  }
  return undefined;
}
