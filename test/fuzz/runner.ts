/**
 * The differential fuzz runner: each generated case on a surface (`dl.run`; a framework adapter can
 * be another, see `Surface`) and on the float64 reference (`cpu.run`), compared under the rule of
 * ./tolerance.ts, and for a case with a NaN or an infinity in its inputs under ops.md's rule of
 * ./nonfinite.ts (NaN where the reference is NaN, the same infinity where it is infinite; gradients
 * skipped where a non-finite value reaches); a failure carries a self-contained repro (shrunk to the
 * offending row or pair when that still fails).
 */
import { cpu } from '../../src/cpu';
import { DetlossError } from '../../src/errors';
import { createDetloss, type DetlossContext } from '../../src/api';
import { FUZZ_OPS, generateCase, type FuzzCase, type FuzzInput, type HostData } from './cases';
import { LOGIT_OPS, PAIRWISE, RANKING_OPS, allowed, dataOf, kOf, pairCorners32, rankingTerms, termScale, upstreamOf } from './tolerance';
import { pairwiseValue, type IouVariant } from '../../src/cpu/iou';
import { ruleBreach } from './nonfinite';
import { TAL_OPS, checkTal } from './tal';
import { NMS_OPS, checkNms } from './nms';
import { planName, planRecordFor, planReproLines, refiled } from './plans';

const FLT_MAX = 3.4028234663852886e38;
const REGRESSION = new Set(['l1', 'mse', 'smooth_l1', 'huber', 'balanced_l1']);
const MARGIN = new Set(['hinge', 'hinge_embedding', 'margin_ranking', 'exponential']);

/** One defect found by the fuzzer. */
export interface Failure {
  /** Stable words for grouping: op, variant, kind of fault, where. */
  key: string;
  message: string;
  repro: string;
  seed: number;
  index: number;
}

/**
 * A result: the loss, its shape, the gradients, and the named outputs of the ops that have them
 * (tal_assign, yolo_detection_loss); for a case with a tuned plan, the tuned plan the call ran
 * (`stats().lastCall.tunedPlan`, null for none), where the surface can tell.
 */
type Res = { loss: ArrayLike<number>; shape: number[]; grad: Record<string, ArrayLike<number>>; outputs?: Record<string, ArrayLike<number>>; tunedPlan?: string | null };
type Outcome = { ok: true; res: Res } | { ok: false; err: unknown };

const errText = (e: unknown) => (e instanceof DetlossError ? `DetlossError(${e.code}${e.argument ? `, ${e.argument}` : ''}): ${e.message}` : `${(e as Error)?.name ?? typeof e}: ${(e as Error)?.message ?? String(e)}`);

function runCpu(c: FuzzCase, inputs = c.inputs, options = c.options): Outcome {
  try {
    return { ok: true, res: cpu.run(c.op, inputs as Record<string, unknown>, options) };
  } catch (err) {
    return { ok: false, err };
  }
}

/**
 * A way a user runs an op, held to the CPU reference case by case: `dl.run` (`dlSurface`), and
 * whatever else is added (the TF.js and ORT adapters). `name` prefixes its failures' keys ('' for
 * dl.run); `run` resolves with the result, or rejects as the surface refuses the case.
 */
export interface Surface {
  name: string;
  run(c: FuzzCase): Promise<Res>;
  /** Whether this surface runs the case (the adapters take a share of the cases, those tensors can express); all when absent. */
  takes?(c: FuzzCase): boolean;
  /**
   * The gradient is computed for an upstream of 1 and scaled by it afterwards (TF.js's customGrad):
   * a value float32 flushes at that stage is lost whatever the upstream, so `tiny` scales with it.
   */
  unitUpstream?: boolean;
}

/** The float64 reference's result rounded to float32: what a kernel without error of its own would return. */
export function referenceResult(c: FuzzCase): Res {
  const r = cpu.run(c.op, c.inputs as Record<string, unknown>, c.options);
  const outputs = r.outputs && { outputs: Object.fromEntries(Object.entries(r.outputs).map(([k, o]) => [k, o instanceof Int32Array ? o : Float32Array.from(o)])) };
  return { loss: Float32Array.from(r.loss), shape: r.shape, grad: Object.fromEntries(Object.entries(r.grad).map(([k, g]) => [k, Float32Array.from(g as ArrayLike<number>)])), ...outputs };
}

/**
 * `dl.run` on a context, or on the context a case asks for (`rows: 'wg'`). A case with a tuned plan
 * runs on a context of its own on that context's device, made with `createDetloss({ plans })` and a
 * record of the case's plan for the device's adapter, and reports the tuned plan the call ran.
 */
export function dlSurface(pick: DetlossContext | ((c: FuzzCase) => DetlossContext)): Surface {
  return {
    name: '',
    async run(c) {
      const on = typeof pick === 'function' ? pick(c) : pick;
      if (!c.plan) return on.run(c.op, c.inputs, c.options);
      const dl = await createDetloss({ device: on.device, plans: planRecordFor(c, on.adapter) });
      try {
        const res = await dl.run(c.op, c.inputs, c.options);
        return { ...res, tunedPlan: dl.stats().lastCall?.tunedPlan ?? null };
      } finally {
        dl.destroy();
      }
    },
  };
}

const isSurface = (x: DetlossContext | Surface): x is Surface => typeof (x as Surface).name === 'string';

async function runOn(surface: Surface, c: FuzzCase): Promise<Outcome> {
  try {
    return { ok: true, res: await surface.run(c) };
  } catch (err) {
    return { ok: false, err };
  }
}

/** Whether any float input holds a NaN or an infinity (ops.md's rule for it applies). */
export function hasNonFinite(c: FuzzCase): boolean {
  for (const v of Object.values(c.inputs)) {
    const d = dataOf(v);
    if (d instanceof Float32Array) for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return true;
  }
  return false;
}

/** A finite stand-in for an infinity: its square is still finite in float64. */
const HUGE = 2 ** 500;

/**
 * The 'none' elements whose infinity is a tie in float32: where an input's +-Inf multiplies a
 * number within float32's error of 0 (a loss that underflows, a log-probability of a class whose
 * probability rounds to 1, a probability that underflows), float64 gives +-Inf where float32 may
 * give 0 * Inf = NaN, or the other sign, and where float64's number is exactly 0 (NaN), float32's
 * may not be. Found by putting +-2^500 for each infinity: the element's value over 2^500 is that
 * number, held to the element's tolerance of 0. Only elements the reference gives as NaN or +-Inf
 * (`none`, weighted) are looked at.
 */
function looseElements(c: FuzzCase, k: number, lossTerms: Float64Array, none: ArrayLike<number>): Set<number> {
  const out = new Set<number>();
  let infinite = false;
  const inputs: Record<string, FuzzInput> = {};
  for (const [name, v] of Object.entries(c.inputs)) {
    if (name === 'gradOutput') continue;
    const d = dataOf(v)!;
    const t = d instanceof Float32Array ? Float64Array.from(d, (x) => (x === Infinity ? HUGE : x === -Infinity ? -HUGE : x)) : d;
    if (d instanceof Float32Array && d.some((x) => x === Infinity || x === -Infinity)) infinite = true;
    inputs[name] = ('data' in v ? { data: t, shape: v.shape } : t) as FuzzInput;
  }
  if (!infinite) return out;
  if (c.op === 'kl_div') klUnderflow(c, out);
  const big = runCpu(c, inputs, { ...c.options, reduction: 'none', avgFactor: undefined, grad: false });
  if (!big.ok) return out;
  const w = dataOf(c.inputs.weight);
  for (let i = 0; i < big.res.loss.length; i++) {
    if (Number.isFinite(none[i])) continue;
    const f = big.res.loss[i] / HUGE;
    // an infinite weight is the one multiplied: the number is then the element's loss itself
    const wi = w && Number.isFinite(w[i]) ? Math.abs(w[i]) : 1;
    if (Number.isFinite(f) && Math.abs(f) <= allowed(k, Math.abs(f), wi * (lossTerms[i] ?? 0), 1, LOGIT_OPS.has(c.op) ? 1 : 0)) out.add(i);
  }
  return out;
}

/**
 * kl_div's rows where a student logit of -Infinity (q_j = 0) meets a teacher probability p_j that
 * float64 keeps and float32 flushes to 0 (below 2^-126): the reference's p_j log(p_j / 0) is +Inf,
 * float32's 0 log 0 - 0 * log 0 is NaN (PyTorch's too). Either holds there.
 */
function klUnderflow(c: FuzzCase, out: Set<number>): void {
  const s = dataOf(c.inputs.student)!;
  const t = dataOf(c.inputs.teacher)!;
  const len = c.dims.c;
  const T = (c.options.temperature as number | undefined) ?? 1;
  for (let i = 0; i < c.dims.n; i++) {
    let m = -Infinity;
    for (let j = 0; j < len; j++) if (Number.isFinite(t[i * len + j])) m = Math.max(m, t[i * len + j] / T);
    let sum = 0;
    for (let j = 0; j < len; j++) if (Number.isFinite(t[i * len + j])) sum += Math.exp(t[i * len + j] / T - m);
    for (let j = 0; j < len; j++) {
      const p = Math.exp(t[i * len + j] / T - m) / sum;
      if (s[i * len + j] === -Infinity && p > 0 && p < 2 ** -126) out.add(i);
    }
  }
}

/** The case with every NaN replaced by 0 and every infinity by `infinity` (0: what the tolerance's terms are taken from). */
function tamed(c: FuzzCase, infinity = 0): FuzzCase {
  const inputs: Record<string, FuzzInput> = {};
  for (const [name, v] of Object.entries(c.inputs)) {
    const d = dataOf(v)!;
    const t = d instanceof Float32Array ? d.map((x) => (Number.isFinite(x) ? x : Number.isNaN(x) ? 0 : infinity)) : d;
    inputs[name] = 'data' in v ? { data: t, shape: v.shape } : t;
  }
  return { ...c, inputs };
}

/**
 * The CPU on the kernel's float32-rounded input transform (see the rule), gradients chained back:
 * regression losses on d = fround(pred - target); boxes on the corners the kernel forms, in each
 * pair's frame (tolerance.ts pairCorners32).
 */
function roundedReference(c: FuzzCase): Res | undefined {
  const format = (c.options.format as string) ?? 'xyxy';
  if (REGRESSION.has(c.op)) {
    const p = dataOf(c.inputs.pred)!;
    const t = dataOf(c.inputs.target)!;
    const d = Float32Array.from(p, (v, i) => v - t[i]);
    const o = runCpu(c, { ...c.inputs, pred: d, target: new Float32Array(d.length) });
    return o.ok ? o.res : undefined;
  }
  if (c.op !== 'iou_loss' && c.op !== 'pairwise_iou') return undefined;
  if (format === 'xyxy') return undefined;
  const n = c.dims.n;
  if (c.op === 'pairwise_iou') {
    // each pair in its own frame, formed as the kernel forms it: the overlap and the enclosing box
    // from the float32 corners there, the sizes and the centre offset from the input
    const A = dataOf(c.inputs.a)!;
    const B = dataOf(c.inputs.b)!;
    const m = c.dims.m;
    const loss = new Float64Array(n * m);
    const variant = (c.options.variant as IouVariant) ?? 'iou';
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) {
        const [pa, pb] = pairCorners32(A, i, B, j, format);
        const d = [0, 1].map((k) => (format === 'cxcywh' ? A[4 * i + k] - B[4 * j + k] : A[4 * i + k] - B[4 * j + k] + (A[4 * i + k + 2] - B[4 * j + k + 2]) / 2));
        loss[i * m + j] = pairwiseValue(pa, pb, variant, { sa: [A[4 * i + 2], A[4 * i + 3]], sb: [B[4 * j + 2], B[4 * j + 3]], d });
      }
    }
    return { loss, shape: [n, m], grad: {} };
  }
  const P = dataOf(c.inputs.pred)!;
  const T = dataOf(c.inputs.target)!;
  const pred = new Float32Array(4 * n);
  const target = new Float32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const [pa, pb] = pairCorners32(P, i, T, i, format);
    pred.set(pa, 4 * i);
    target.set(pb, 4 * i);
  }
  const inputs: Record<string, FuzzInput> = { ...c.inputs, pred, target };
  const o = runCpu(c, inputs, { ...c.options, format: 'xyxy' });
  if (!o.ok) return undefined;
  const g = o.res.grad.pred as Float64Array | undefined;
  if (g) {
    for (let at = 0; at < g.length; at += 4) {
      const [g1, g2, g3, g4] = [g[at], g[at + 1], g[at + 2], g[at + 3]];
      g[at] = g1 + g3;
      g[at + 1] = g2 + g4;
      if (format === 'cxcywh') {
        g[at + 2] = 0.5 * (g3 - g1);
        g[at + 3] = 0.5 * (g4 - g2);
      }
    }
  }
  return o.res;
}

/**
 * What `checkCase` held one value to: its output (`loss`, `grad.<name>`), index, the reference value,
 * the allowed |error| and the reference on the kernel's rounded input transform where there is one
 * (a value passes within the allowed error of either). For the tolerance audit (test/fuzz/audit.fuzz.ts); only values of finite
 * inputs under the rule of ./tolerance.ts are reported.
 */
export type Probe = (out: string, i: number, cpu: number, allowed: number, rounded?: number) => void;

/** The first violation of a case on a surface (or `dl.run` on a context), or null. Exported for tests of the fuzzer itself. */
export async function checkCase(on: DetlossContext | Surface, c: FuzzCase, probe?: Probe): Promise<{ key: string; message: string; row?: number; col?: number } | null> {
  const surface = isSurface(on) ? on : dlSurface(on);
  const ref = runCpu(c);
  const gpu = await runOn(surface, c);
  const variant = c.options.variant ? `/${String(c.options.variant)}` : '';
  const where = `${surface.name ? `${surface.name}: ` : ''}${c.op}${variant}`;
  if (!ref.ok) {
    if (!(ref.err instanceof DetlossError)) return { key: `${where} cpu-throws-non-DetlossError`, message: `cpu.run threw ${errText(ref.err)}` };
    if (gpu.ok) return { key: `${where} gpu-accepts-what-cpu-refuses(${ref.err.code})`, message: `cpu.run refused (${errText(ref.err)}) but dl.run resolved` };
    if (!(gpu.err instanceof DetlossError)) return { key: `${where} gpu-throws-non-DetlossError`, message: `dl.run threw ${errText(gpu.err)}; cpu.run: ${errText(ref.err)}` };
    if (gpu.err.code !== ref.err.code) return { key: `${where} refusal-code-differs(${gpu.err.code}!=${ref.err.code})`, message: `dl.run: ${errText(gpu.err)}; cpu.run: ${errText(ref.err)}` };
    return null;
  }
  if (!gpu.ok) {
    const code = gpu.err instanceof DetlossError ? gpu.err.code : 'non-DetlossError';
    return { key: `${where} gpu-refuses-valid-input(${code})`, message: `dl.run threw ${errText(gpu.err)}; cpu.run resolved` };
  }
  const g = gpu.res;
  // A case with a tuned plan must run it (a call with no output launches nothing).
  if (c.plan && c.plan.outCount > 0 && g.tunedPlan !== undefined && g.tunedPlan !== planName(c.plan)) {
    return { key: `${where} tuned-plan-not-run`, message: `the call ran tuned plan ${String(g.tunedPlan)}, not ${planName(c.plan)} (${JSON.stringify(c.plan.plan)})` };
  }
  const r = ref.res;
  if (JSON.stringify(g.shape) !== JSON.stringify(r.shape) || g.loss.length !== r.loss.length) {
    return { key: `${where} shape-differs`, message: `GPU shape [${g.shape}] (${g.loss.length}) vs CPU [${r.shape}] (${r.loss.length})` };
  }
  const gk = Object.keys(g.grad).sort().join(',');
  const rk = Object.keys(r.grad).sort().join(',');
  if (gk !== rk) return { key: `${where} grad-names-differ`, message: `GPU grad {${gk}} vs CPU grad {${rk}}` };
  for (const name of Object.keys(r.grad)) {
    if (g.grad[name].length !== r.grad[name].length) return { key: `${where} grad-length-differs`, message: `grad.${name}: GPU ${g.grad[name].length} vs CPU ${r.grad[name].length}` };
  }

  const nonFinite = hasNonFinite(c);
  if (RANKING_OPS.has(c.op)) return checkRanking(c, where, g, r, nonFinite, probe);
  // the assigner's integer outputs exactly, but where a decision is within float32 rounding of a tie (./tal.ts)
  if (TAL_OPS.has(c.op)) return checkTal(c, where, g, r, nonFinite);
  // NMS's indices exactly, but where a comparison is within float32 rounding of its threshold (./nms.ts)
  if (NMS_OPS.has(c.op)) return checkNms(c, where, g, r);
  const alt = roundedReference(c);
  const k = kOf(c);
  const reduction = (c.options.reduction as string) ?? (PAIRWISE.has(c.op) ? 'none' : 'mean');
  const outCount = reduction === 'none' ? r.loss.length : rawCount(c);
  // The tolerance's terms from the finite values only (a NaN term would excuse any error).
  const tc = nonFinite ? tamed(c) : c;
  const { up, denom } = upstreamOf(tc, outCount);
  // The largest |gradOutput| as given (before weight and the mean's scale): see Surface.unitUpstream.
  const rawUp = Math.max(1, ...Array.from(dataOf(tc.inputs.gradOutput) ?? [1], (v) => Math.abs(v)));
  const gradName = Object.keys(r.grad)[0];
  const terms = termScale(tc, r.grad[gradName] as Float64Array | undefined, up);
  const w = dataOf(tc.inputs.weight);
  // Gradients are unspecified where a non-finite value reaches: rows whose weighted loss is not finite.
  // (taken when first asked: 'none' has it already)
  let weightedNone: Float64Array | ArrayLike<number> | null | undefined;
  const noneLoss = () => {
    if (weightedNone === undefined) {
      const o = reduction === 'none' ? ref : runCpu(c, { ...stripShared(c.inputs), ...(c.inputs.weight ? { weight: c.inputs.weight } : {}) }, { ...c.options, reduction: 'none', avgFactor: undefined, grad: false });
      weightedNone = o.ok ? o.res.loss : null;
    }
    return weightedNone;
  };

  const finiteBeyond = () => {
    const none = noneLoss();
    let sum = 0;
    if (none) for (let q = 0; q < none.length; q++) if (Number.isFinite(none[q])) sum += Math.abs(none[q]);
    return sum > FLT_MAX;
  };
  let loose: Set<number> | undefined;
  // (the terms of what multiplies an infinity: taken with it as 1, where the tolerance's terms take it as 0)
  const looseOnes = () => (loose ??= noneLoss() ? looseElements(c, k, termScale(tamed(c, 1), undefined, up).loss, noneLoss()!) : new Set());

  let worst: { ratio: number; out: string; i: number; gv: number; cv: number; av?: number; tol: number } | undefined;
  const judge = (out: string, i: number, gv: number, cv: number, av: number | undefined, s: number, upv: number) => {
    if (nonFinite && (!Number.isFinite(cv) || !Number.isFinite(gv)) && !(Number.isFinite(cv) && Math.abs(cv) > FLT_MAX)) {
      // ops.md: NaN where the reference is NaN, the same infinity where it is infinite
      const b = ruleBreach(gv, cv);
      // ... or any of them where float32 cannot tell what multiplies the infinity from 0
      // ... or, for a reduced loss, where the finite terms alone sum beyond float32's range: float32's
      // partial sum is then an infinity that may meet the other sign's (NaN)
      const tie = !!b && out === 'loss' && !Number.isFinite(gv) && !Number.isFinite(cv) && (reduction === 'none' ? looseOnes().has(i) : looseOnes().size > 0 || finiteBeyond());
      return b && !tie ? `${out}[${i}]: ${b}` : null;
    }
    if (!Number.isFinite(cv)) return `${out}[${i}]: the CPU reference is ${cv} for finite input (GPU ${gv})`;
    if (!Number.isFinite(gv)) return Math.abs(cv) > FLT_MAX ? null : `${out}[${i}]: GPU ${gv} where the CPU is finite (${cv})`;
    if (Math.abs(cv) > FLT_MAX) return null;
    const tol = allowed(k, Math.max(Math.abs(cv), Math.abs(av ?? 0)), s, upv, LOGIT_OPS.has(c.op) ? 1 : 0);
    // a tolerance that is not a number would excuse any error: with non-finite input, say so
    if (nonFinite && !Number.isFinite(tol) && gv !== cv && !rowUntouched(c, out, i, reduction)) return `${out}[${i}]: no tolerance (${tol}) for GPU ${gv}, CPU ${cv}`;
    const err = Math.min(Math.abs(gv - cv), av === undefined ? Infinity : Math.abs(gv - av));
    if (!nonFinite) probe?.(out, i, cv, tol, av);
    if (err > tol) {
      const ratio = err / tol;
      if (!worst || ratio > worst.ratio) worst = { ratio, out, i, gv, cv, av, tol };
    }
    return null;
  };
  let msg: string | null = null;
  if (reduction === 'none') {
    // (a value float32 flushes to 0 before the weight multiplies it: `tiny` scales with the weight)
    for (let i = 0; i < r.loss.length && !msg; i++) msg = judge('loss', i, g.loss[i], r.loss[i], alt?.loss[i], Math.abs(w ? w[i] : 1) * terms.loss[i], Math.abs(w ? w[i] : 1));
  } else {
    const raw = runCpu(tc, stripShared(tc.inputs), { ...tc.options, reduction: 'none', avgFactor: undefined, grad: false });
    let s = 0;
    if (raw.ok) for (let i = 0; i < raw.res.loss.length; i++) s += Math.abs(w ? w[i] : 1) * (Math.abs(raw.res.loss[i]) + terms.loss[i]);
    let wsum = 0;
    for (let i = 0; i < rawCount(tc); i++) wsum += Math.abs(w ? w[i] : 1);
    const flushUp = reduction === 'sum' ? wsum : denom === 0 ? 0 : wsum / Math.abs(denom);
    msg = judge('loss', 0, g.loss[0], r.loss[0], alt?.loss[0], reduction === 'sum' ? s : denom === 0 ? 0 : s / Math.abs(denom), flushUp);
  }
  for (const name of Object.keys(r.grad)) {
    const gg = g.grad[name];
    const rg = r.grad[name];
    const own = dataOf(c.inputs[name]);
    const tn = terms.byName?.[name] ?? terms;
    for (let i = 0; i < rg.length && !msg; i++) {
      const row = tn.rowOf(i);
      // unspecified: where the reference is not finite, in a row whose loss is not, at an input that is not
      if (nonFinite && (!Number.isFinite(rg[i]) || !Number.isFinite(own![i]) || !Number.isFinite(noneLoss()?.[row] ?? NaN))) continue;
      msg = judge(`grad.${name}`, i, gg[i], rg[i], alt?.grad[name]?.[i], up[row] * tn.grad[i], surface.unitUpstream ? Math.max(up[row], rawUp) : up[row]);
    }
  }
  if (msg) {
    const out = msg.split('[')[0];
    const kind = nonFinite ? 'non-finite-rule' : msg.includes('CPU reference') ? 'cpu-non-finite' : 'gpu-non-finite';
    const i = Number(msg.split('[')[1].split(']')[0]);
    return { key: `${where} ${kind} ${out}`, message: msg, ...rowCol(c, out, i, reduction) };
  }
  if (worst) {
    const w2 = worst;
    return {
      key: `${where} mismatch ${w2.out}${reduction === 'none' ? '' : ` (${reduction})`}`,
      message: `${w2.out}[${w2.i}]: GPU ${w2.gv}, CPU ${w2.cv}${w2.av !== undefined ? ` (CPU on the rounded transform ${w2.av})` : ''}, |diff| ${Math.abs(w2.gv - w2.cv).toExponential(3)} > allowed ${w2.tol.toExponential(3)} (${w2.ratio.toFixed(1)}x)`,
      ...rowCol(c, w2.out, w2.i, reduction),
    };
  }
  return null;
}

/**
 * The ranking losses (tolerance.ts rankingTerms): every loss element (one, or two for rank_sort)
 * and every update element, the update scaled by |gradOutput| (one number). No shrinking: the whole
 * array is one ranking problem.
 */
function checkRanking(c: FuzzCase, where: string, g: Res, r: Res, nonFinite: boolean, probe?: Probe): { key: string; message: string } | null {
  const k = kOf(c);
  const tc = nonFinite ? tamed(c) : c;
  const terms = rankingTerms(tc);
  const go = dataOf(tc.inputs.gradOutput);
  const up = Math.abs(go ? go[0] : 1);
  let worst: { ratio: number; out: string; i: number; gv: number; cv: number; tol: number } | undefined;
  const judge = (out: string, i: number, gv: number, cv: number, s: number, upv: number): string | null => {
    if (nonFinite && (!Number.isFinite(cv) || !Number.isFinite(gv))) {
      const b = ruleBreach(gv, cv);
      return b ? `${out}[${i}]: ${b}` : null;
    }
    if (!Number.isFinite(cv)) return `${out}[${i}]: the CPU reference is ${cv} for finite input (GPU ${gv})`;
    if (!Number.isFinite(gv)) return `${out}[${i}]: GPU ${gv} where the CPU is finite (${cv})`;
    const tol = allowed(k, Math.abs(cv), s, upv);
    const err = Math.abs(gv - cv);
    if (!nonFinite) probe?.(out, i, cv, tol);
    if (err > tol && (!worst || err / tol > worst.ratio)) worst = { ratio: err / tol, out, i, gv, cv, tol };
    return null;
  };
  let msg: string | null = null;
  for (let i = 0; i < r.loss.length && !msg; i++) msg = judge('loss', i, g.loss[i], r.loss[i], terms.loss[i], 1);
  const rg = r.grad.logits;
  const gg = g.grad.logits;
  // The whole array is one ranking problem: a loss that is not finite leaves no update specified.
  const updates = !nonFinite || Array.from(r.loss).every(Number.isFinite);
  const x = dataOf(c.inputs.logits);
  for (let i = 0; updates && rg && i < rg.length && !msg; i++) {
    // unspecified: where the reference is not finite, and at a score that is not
    if (nonFinite && (!Number.isFinite(rg[i]) || !Number.isFinite(x![i]))) continue;
    msg = judge('grad.logits', i, gg[i], rg[i], up * terms.grad[i], up);
  }
  if (msg) return { key: `${where} ${nonFinite ? 'non-finite-rule' : msg.includes('CPU reference') ? 'cpu-non-finite' : 'gpu-non-finite'} ${msg.split('[')[0]}`, message: msg };
  if (!worst) return null;
  const w = worst;
  return {
    key: `${where} mismatch ${w.out}${w.out === 'loss' ? `[${w.i}]` : ''}`,
    message: `${w.out}[${w.i}]: GPU ${w.gv}, CPU ${w.cv}, |diff| ${Math.abs(w.gv - w.cv).toExponential(3)} > allowed ${w.tol.toExponential(3)} (${w.ratio.toFixed(1)}x)`,
  };
}

/** Element count of the 'none' output. */
function rawCount(c: FuzzCase): number {
  if (PAIRWISE.has(c.op)) return c.dims.n * c.dims.m;
  if (c.op === 'varifocal' || c.op === 'bce_with_logits' || c.op === 'class_balanced_focal') return c.dims.n * c.dims.c;
  return c.dims.n;
}

function stripShared(inputs: Record<string, FuzzInput>) {
  const { weight: _w, gradOutput: _g, ...rest } = inputs;
  return rest;
}

/** The row (and pairwise column) an offending value belongs to, for shrinking. */
function rowCol(c: FuzzCase, out: string, i: number, reduction: string): { row?: number; col?: number } {
  if (out === 'loss' && reduction !== 'none') return {};
  if (PAIRWISE.has(c.op)) return { row: Math.floor(i / c.dims.m), col: i % c.dims.m };
  if (out === 'loss') {
    if (c.op === 'varifocal' || c.op === 'bce_with_logits' || c.op === 'class_balanced_focal') return { row: Math.floor(i / c.dims.c) };
    return { row: i };
  }
  const per = c.op === 'rotated_iou_loss' ? (out === 'grad.predDelta' ? 2 : 5) : c.op === 'iou_loss' ? 4 : c.op === 'sigmoid_focal' || REGRESSION.has(c.op) || MARGIN.has(c.op) ? 1 : (c.dims.c ?? c.dims.k ?? c.dims.p);
  return { row: Math.floor(i / Math.max(per, 1)) };
}

/** Case `c` cut down to row `row` (and column `col` of pairwise), reduction 'none', the upstream kept. */
function shrink(c: FuzzCase, row: number, col?: number): FuzzCase {
  const reduction = (c.options.reduction as string) ?? 'mean';
  const outCount = rawCount(c);
  const { up } = upstreamOf(c, outCount);
  const perRowOut = c.op === 'varifocal' || c.op === 'bce_with_logits' || c.op === 'class_balanced_focal' ? c.dims.c : 1;
  const inputs: Record<string, FuzzInput> = {};
  const sliceRows = (v: FuzzInput, rows: number, r0: number): FuzzInput => {
    const d = dataOf(v)!;
    const per = d.length / Math.max(rows, 1);
    const data = d.slice(r0 * per, (r0 + 1) * per) as HostData;
    return 'data' in v ? { data, shape: [1, ...v.shape.slice(1)] } : data;
  };
  for (const [name, v] of Object.entries(c.inputs)) {
    if (name === 'weight' || name === 'gradOutput') continue;
    if (['posWeight', 'classWeight', 'samplesPerClass'].includes(name)) inputs[name] = v;
    else if (name === 'b' && col !== undefined) inputs[name] = sliceRows(v, c.dims.m, col);
    else inputs[name] = sliceRows(v, c.dims.n, row);
  }
  const options: Record<string, unknown> = { ...c.options, reduction: 'none' };
  delete options.avgFactor;
  if (!PAIRWISE.has(c.op)) {
    const go = new Float32Array(perRowOut);
    const w = dataOf(c.inputs.weight);
    const g = dataOf(c.inputs.gradOutput);
    for (let j = 0; j < perRowOut; j++) {
      const at = row * perRowOut + j;
      // keep the sign of the upstream: gradOutput * weight (/ denominator for reductions)
      const sign = Math.sign((reduction === 'none' ? (g ? g[at] : 1) : g ? g[0] : 1) * (w ? w[at] : 1)) || 1;
      go[j] = sign * up[at];
    }
    if (go.some((v) => v !== 1)) inputs.gradOutput = go;
  } else delete options.reduction;
  const dims = { ...c.dims, n: 1, ...(col !== undefined ? { m: 1 } : {}) };
  const cut: FuzzCase = { ...c, inputs, options, dims, tags: [...c.tags, 'shrunk'] };
  // The same tuned plan, filed under the cut case's size class (the case must still run it).
  return c.plan ? { ...cut, plan: refiled(cut) } : cut;
}

const num = (v: number) => (Object.is(v, -0) ? '-0' : String(v));
function literal(v: FuzzInput, max = Infinity): string {
  const d = dataOf(v)!;
  const ctor = d instanceof Int32Array ? 'Int32Array' : 'Float32Array';
  const xs = Array.from(d.slice(0, Math.min(d.length, max)), num).join(', ');
  const arr = `new ${ctor}([${xs}${d.length > max ? `, /* ... ${d.length - max} more: regenerate with the seed */` : ''}])`;
  return 'data' in v ? `{ data: ${arr}, shape: [${v.shape.join(', ')}] }` : arr;
}

/**
 * A script one can paste (with `gpu`, `createDetloss` and `cpu` in scope): context (with the case's
 * tuned plan record, where it has one), inputs as literals, the call on both sides, and what each gave.
 */
export function repro(c: FuzzCase, note: string, max = Infinity): string {
  const opts = JSON.stringify(c.options, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? `__${v}__` : typeof v === 'bigint' ? `__${v}n__` : v)).replace(/"__(.*?)__"/g, '$1');
  const inputs = Object.entries(c.inputs).map(([name, v]) => `  ${name}: ${literal(v, max)},`).join('\n');
  return [
    `// detloss fuzz: seed ${c.seed}, case ${c.index} (${c.op}; ${c.tags.join(', ') || 'plain'}; regenerate with generateCase(${c.seed}, ${c.index}))`,
    `// ${note}`,
    ...(c.plan ? planReproLines(c) : [`const dl = await createDetloss({ gpu${c.rows === 'wg' ? ', rowThreshold: 0' : c.rows === 'hw' ? ", plan: 'hardware'" : ''} });`]),
    `const inputs = {\n${inputs}\n};`,
    `const options = ${opts};`,
    `const got = await dl.run('${c.op}', inputs, options);`,
    `const want = cpu.run('${c.op}', inputs, options);`,
  ].join('\n');
}

/**
 * Runs case `c` on `dl.run` (on the context `ctx` picks for it) and on each of `surfaces`, and
 * returns the first failure (with a repro, shrunk where the shrunk case still fails), or null.
 */
export async function fuzzOne(ctx: (c: FuzzCase) => DetlossContext, c: FuzzCase, surfaces: readonly Surface[] = []): Promise<Failure | null> {
  for (const surface of [dlSurface(ctx), ...surfaces]) {
    if (surface.takes && !surface.takes(c)) continue;
    const v = await checkCase(surface, c);
    if (!v) continue;
    let text = repro(c, v.message, 64);
    if (v.row !== undefined && c.dims.n > 1 || (v.col !== undefined && c.dims.m > 1)) {
      const s = shrink(c, v.row ?? 0, v.col);
      const sv = await checkCase(surface, s).catch(() => null);
      text = sv ? repro(s, `shrunk to row ${v.row}${v.col !== undefined ? `, column ${v.col}` : ''}: ${sv.message}`) : `${text}\n// (the single-row case passes: it fails only in the batch)`;
    }
    return { key: v.key, message: v.message, repro: text, seed: c.seed, index: c.index };
  }
  return null;
}

/** Counts and failures of a fuzz run. */
export interface FuzzReport {
  cases: Record<string, number>;
  /** Of those, the cases with a NaN or an infinity in an input, per op. */
  nonFinite: Record<string, number>;
  /** Of those, the cases run under a random tuned plan, per op. */
  tuned: Record<string, number>;
  /** Cases each added surface ran (the adapters), over how many ops, and how many under a tuned plan. */
  bySurface: Record<string, { cases: number; ops: Set<string>; tuned: number }>;
  failures: Failure[];
  ran: number;
  ms: number;
}

/**
 * Runs cases `from, from+1, ...` of `seed` until `count` cases or the `deadline` (ms since epoch),
 * on `contexts.default` and `contexts.wg` (a workgroup per row); a case with a tuned plan on a
 * context of its own on `contexts.tuned`'s device (`dlSurface`). Ops rotate with the index.
 */
export async function fuzzRun(
  contexts: { default: DetlossContext; wg: DetlossContext; hw?: DetlossContext; tuned?: DetlossContext },
  o: {
    seed: number;
    count?: number;
    deadline: number;
    from?: number;
    big?: boolean;
    /** Surfaces held to the reference beside dl.run. */
    surfaces?: readonly Surface[];
    /** Only these ops: case i is of ops[i % ops.length] (all of FUZZ_OPS, in turn, when absent). */
    ops?: readonly string[];
    onCase?: (c: FuzzCase, f: Failure | null, report: FuzzReport) => void;
  },
): Promise<FuzzReport> {
  const report: FuzzReport = {
    cases: Object.fromEntries((o.ops ?? FUZZ_OPS).map((op) => [op, 0])),
    nonFinite: Object.fromEntries((o.ops ?? FUZZ_OPS).map((op) => [op, 0])),
    tuned: Object.fromEntries((o.ops ?? FUZZ_OPS).map((op) => [op, 0])),
    bySurface: Object.fromEntries((o.surfaces ?? []).map((s) => [s.name, { cases: 0, ops: new Set<string>(), tuned: 0 }])),
    failures: [],
    ran: 0,
    ms: 0,
  };
  const t0 = Date.now();
  for (let i = o.from ?? 0; o.count === undefined || i < (o.from ?? 0) + o.count; i++) {
    if (Date.now() >= o.deadline) break;
    const c = generateCase(o.seed, i, { big: o.big, op: o.ops?.length ? o.ops[i % o.ops.length] : undefined });
    let f: Failure | null;
    try {
      f = await fuzzOne((x) => (x.plan ? (contexts.tuned ?? contexts.default) : x.rows === 'wg' ? contexts.wg : x.rows === 'hw' ? (contexts.hw ?? contexts.default) : contexts.default), c, o.surfaces);
    } catch (e) {
      f = { key: `${c.op} fuzzer-crash`, message: errText(e), repro: repro(c, errText(e), 64), seed: o.seed, index: i };
    }
    report.cases[c.op]++;
    if (hasNonFinite(c)) report.nonFinite[c.op]++;
    if (c.plan) report.tuned[c.op]++;
    for (const sf of o.surfaces ?? []) {
      if (sf.takes && !sf.takes(c)) continue;
      report.bySurface[sf.name].cases++;
      report.bySurface[sf.name].ops.add(c.op);
      if (c.plan) report.bySurface[sf.name].tuned++;
    }
    report.ran++;
    if (f) report.failures.push(f);
    o.onCase?.(c, f, report);
  }
  report.ms = Date.now() - t0;
  return report;
}

/** Groups failures by `key`: count and the smallest repro of each class. */
export function failureClasses(fs: Failure[]): { key: string; count: number; first: Failure }[] {
  const m = new Map<string, { key: string; count: number; first: Failure }>();
  for (const f of fs) {
    const e = m.get(f.key);
    if (!e) m.set(f.key, { key: f.key, count: 1, first: f });
    else {
      e.count++;
      if (f.repro.length < e.first.repro.length) e.first = f;
    }
  }
  return [...m.values()];
}

/**
 * Whether element i of `out` comes from rows of the rotated ops that hold no NaN or infinity: their
 * rows are independent, so such an element is judged as in a finite case, where the model's
 * tolerance may be unbounded (a form at a floor, or identical boxes) and excuses what it excuses there.
 * Other ops: false (a non-finite value may reach any element).
 */
function rowUntouched(c: FuzzCase, out: string, i: number, reduction: string): boolean {
  const fin = (v: FuzzInput | undefined, row: number, w: number) => {
    const d = dataOf(v);
    if (!d) return true;
    for (let q = 0; q < w; q++) if (!Number.isFinite(d[row * w + q])) return false;
    return true;
  };
  if (c.op === 'pairwise_probiou') return out === 'loss' && fin(c.inputs.a, Math.floor(i / c.dims.m), 5) && fin(c.inputs.b, i % c.dims.m, 5);
  if (c.op !== 'rotated_iou_loss') return false;
  if (out === 'loss' && reduction !== 'none') return false;
  const row = out === 'loss' ? i : out === 'grad.predDelta' ? i >> 1 : Math.floor(i / 5);
  const w = dataOf(c.inputs.weight);
  const go = dataOf(c.inputs.gradOutput);
  if (go && !Number.isFinite(reduction === 'none' && go.length > 1 ? go[row] : go[0])) return false;
  return fin(c.inputs.pred, row, 5) && fin(c.inputs.target, row, 5) && fin(c.inputs.predDelta, row, 2) && fin(c.inputs.targetDelta, row, 2) && (!w || Number.isFinite(w[row]));
}
