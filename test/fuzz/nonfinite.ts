/**
 * ops.md's rule for non-finite input ("Non-finite input is never hidden"), as the fuzzer and the
 * test/runtime/nonfinite-*.test.ts files hold the GPU to the float64 reference:
 *
 * - where the reference is NaN, the GPU must be NaN;
 * - where it is +Inf or -Inf, the GPU must be the same infinity;
 * - where it is finite, the GPU must be finite, and within the caller's tolerance.
 *
 * Gradients are unspecified where a non-finite value reaches: a gradient element is skipped where
 * the reference's is not finite, or where the output element it belongs to is not (its loss,
 * weighted, as `'none'` gives it). Everywhere else the usual comparison applies.
 *
 * Also here: small valid problems of every element-wise and row op (not the box and ranking ops,
 * whose kernels are others'), for the tests to put NaN, +-Inf or invalid device values into, and
 * helpers to run them on tensors that live on the device.
 */
import type { Detloss } from '../../src/runtime/context';
import type { DetlossOptions } from '../../src/runtime/public';
import type { ResidentResult } from '../../src/runtime/public';
import { rand } from '../helpers/counting';

/** What breaks the rule for one value (null where it holds, or where both are finite: then the caller's tolerance decides). */
export function ruleBreach(gpu: number, ref: number): string | null {
  if (Number.isNaN(ref)) return Number.isNaN(gpu) ? null : `the reference is NaN, the GPU ${gpu}`;
  if (!Number.isFinite(ref)) return gpu === ref ? null : `the reference is ${ref}, the GPU ${gpu}`;
  if (!Number.isFinite(gpu)) return `the reference is finite (${ref}), the GPU ${gpu}`;
  return null;
}

/**
 * Whether gradient element k is unspecified: its reference is not finite, or its output element's
 * weighted `'none'` loss is not (`perOut` gradient elements per output element, in order).
 */
export function gradUnspecified(refGrad: ArrayLike<number>, k: number, refNone: ArrayLike<number>, perOut: number): boolean {
  return !Number.isFinite(refGrad[k]) || !Number.isFinite(refNone[Math.floor(k / perOut)]);
}

export type Got = { loss: ArrayLike<number>; grad: Record<string, ArrayLike<number>> };

/** Everything in `got` that breaks the rule against `ref` (the loss to 1e-4 relative, gradients where specified). */
export function breaches(got: Got, ref: { loss: ArrayLike<number>; grad: Record<string, ArrayLike<number>> }, refNone: ArrayLike<number>): string[] {
  const out: string[] = [];
  const close = (g: number, c: number) => Math.abs(g - c) <= 1e-4 * (1 + Math.abs(c));
  for (let i = 0; i < ref.loss.length; i++) {
    const b = ruleBreach(got.loss[i], ref.loss[i]);
    if (b) out.push(`loss[${i}]: ${b}`);
    else if (Number.isFinite(ref.loss[i]) && !close(got.loss[i], ref.loss[i])) out.push(`loss[${i}]: GPU ${got.loss[i]}, reference ${ref.loss[i]}`);
  }
  for (const [name, rg] of Object.entries(ref.grad)) {
    const gg = got.grad[name];
    if (!gg || gg.length !== rg.length) {
      out.push(`grad.${name}: missing or of another length`);
      continue;
    }
    const perOut = rg.length / Math.max(refNone.length, 1);
    for (let k = 0; k < rg.length; k++) {
      if (gradUnspecified(rg, k, refNone, perOut)) continue;
      if (!Number.isFinite(gg[k]) || !close(gg[k], rg[k])) out.push(`grad.${name}[${k}]: GPU ${gg[k]}, reference ${rg[k]}`);
    }
  }
  return out;
}

export type T = { data: Float32Array | Int32Array; shape: number[] };
export interface Problem {
  inputs: Record<string, T>;
  options: Record<string, unknown>;
}

/** Every op whose kernel this rule is checked on here (the box and ranking ops have their own). */
export const NONFINITE_OPS = [
  'l1', 'mse', 'smooth_l1', 'huber', 'balanced_l1',
  'sigmoid_focal', 'varifocal', 'bce_with_logits', 'quality_focal', 'distribution_focal', 'cross_entropy', 'kl_div', 'dice',
  'softmax_focal', 'class_balanced_focal', 'nll', 'hinge', 'hinge_embedding', 'margin_ranking', 'exponential',
] as const;

/** The row ops: a thread, a workgroup or a subgroup per row. */
export const ROW_OPS = new Set(['quality_focal', 'distribution_focal', 'cross_entropy', 'kl_div', 'dice', 'softmax_focal', 'nll']);

const f = (shape: number[], seed: number, lo = -2, hi = 2): T => ({ data: rand(shape.reduce((a, b) => a * b, 1), seed, lo, hi), shape });
const i32 = (shape: number[], v: number[]): T => ({ data: Int32Array.from(v), shape });
const pm1 = (n: number): T => ({ data: Float32Array.from({ length: n }, (_, i) => (i % 3 === 1 ? -1 : 1)), shape: [n] });

/**
 * A valid problem of `op` with n rows (rows of width c for the row ops): labels that name every
 * class, an ignored row (every fifth) and background rows (every fourth) where the op has them,
 * soft and hard targets. `options` are the op's params, merged over its defaults here.
 */
export function problem(op: string, n: number, c: number, options: Record<string, unknown> = {}): Problem {
  const labels = () => i32([n], Array.from({ length: n }, (_, i) => (i % 5 === 4 ? -100 : i % c)));
  const background = () => i32([n], Array.from({ length: n }, (_, i) => (i % 4 === 3 ? c : i % c)));
  const p = (inputs: Record<string, T>, own: Record<string, unknown> = {}): Problem => ({ inputs, options: { ...own, ...options } });
  switch (op) {
    case 'l1': case 'mse': case 'smooth_l1': case 'huber': case 'balanced_l1':
      return p({ pred: f([n], 1), target: f([n], 2) });
    case 'sigmoid_focal':
      return p({ logits: f([n], 1, -4, 4), targets: { data: Float32Array.from({ length: n }, (_, i) => [1, 0, 0.3][i % 3]), shape: [n] } });
    case 'varifocal':
      return p({ logits: f([n, c], 1, -4, 4), targets: { data: Float32Array.from({ length: n * c }, (_, i) => [1, 0, 0.3, 0][i % 4]), shape: [n, c] } });
    case 'bce_with_logits':
      return p({ logits: f([n, c], 1, -4, 4), targets: f([n, c], 2, 0, 1), posWeight: f([c], 3, 0.5, 2) });
    case 'quality_focal':
      return p({ logits: f([n, c], 1), labels: background(), scores: f([n], 2, 0, 1) });
    case 'distribution_focal':
      return p({ logits: f([n, c], 1), targets: f([n], 2, 0, c - 1.01) });
    case 'cross_entropy':
      return p({ logits: f([n, c], 1), labels: labels(), classWeight: f([c], 3, 0.5, 2) }, { labelSmoothing: 0.1 });
    case 'kl_div':
      return p({ student: f([n, c], 1), teacher: f([n, c], 2) }, { temperature: 2 });
    case 'dice':
      return p({ logits: f([n, c], 1), targets: f([n, c], 2, 0, 1) });
    case 'softmax_focal':
      return p({ logits: f([n, c], 1), labels: labels(), classWeight: f([c], 3, 0.5, 2) }, { gamma: 1.5 });
    case 'class_balanced_focal':
      return p({ logits: f([n, c], 1), labels: background(), samplesPerClass: { data: Float32Array.from({ length: c }, (_, j) => [10, 0, 300, 2, 7][j % 5]), shape: [c] } }, { beta: 0.99 });
    case 'nll':
      return p({ logProbs: f([n, c], 1, -5, 0), labels: labels(), classWeight: f([c], 3, 0.5, 2) });
    case 'hinge':
      return p({ logits: f([n], 1), targets: pm1(n) }, { margin: 0.5 });
    case 'hinge_embedding':
      return p({ pred: f([n], 1), targets: pm1(n) });
    case 'margin_ranking':
      return p({ input1: f([n], 1), input2: f([n], 2), targets: pm1(n) }, { margin: 0.1 });
    case 'exponential':
      return p({ logits: f([n], 1), targets: pm1(n) });
  }
  throw new Error(`no problem for ${op}`);
}

/** A copy of `t` with `value` at the given flat positions. */
export function withValue(t: T, value: number, at: readonly number[]): T {
  const data = t.data.slice();
  for (const k of at) data[k] = value;
  return { data, shape: t.shape };
}

/** One position per row of a tensor with `rows` rows, at column row mod width, every `step` rows; one position for a tensor of another shape. */
export function spread(t: T, rows: number, step = 2): number[] {
  if (t.shape[0] !== rows) return [0];
  const width = t.data.length / Math.max(rows, 1);
  const at: number[] = [];
  for (let r = 0; r < rows; r += step) at.push(r * width + (r % width));
  return at;
}

/** Uploads every input as a storage buffer, `{ buffer, shape }` (the host checks none of its values). */
export function upload(dl: Detloss, inputs: Record<string, T>): Record<string, { buffer: GPUBuffer; shape: number[] }> {
  const out: Record<string, { buffer: GPUBuffer; shape: number[] }> = {};
  for (const [name, t] of Object.entries(inputs)) {
    const buffer = dl.device.createBuffer({ size: Math.max(16, t.data.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    dl.device.queue.writeBuffer(buffer, 0, t.data as Float32Array<ArrayBuffer>);
    out[name] = { buffer, shape: t.shape };
  }
  return out;
}

/** Destroys what `upload` made. */
export function destroyUploads(u: Record<string, { buffer: GPUBuffer }>) {
  for (const v of Object.values(u)) v.buffer.destroy();
}

/** Reads a `runResident` result back (loss and gradients), then releases it. */
export async function readResident(dl: Detloss, r: ResidentResult): Promise<{ loss: Float32Array; grad: Record<string, Float32Array> }> {
  const parts: [string, GPUBuffer, number][] = [['loss', r.loss, r.lossBytes], ...Object.entries(r.grad).map(([k, b]) => [k, b, r.gradBytes[k]] as [string, GPUBuffer, number])];
  const out: Record<string, Float32Array> = {};
  for (const [name, buffer, bytes] of parts) {
    if (bytes === 0) {
      out[name] = new Float32Array(0);
      continue;
    }
    const staging = dl.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = dl.device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, 0, staging, 0, bytes);
    dl.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    out[name] = new Float32Array(staging.getMappedRange().slice(0));
    staging.unmap();
    staging.destroy();
  }
  r.release();
  const { loss, ...grad } = out;
  return { loss, grad };
}

/** Contexts of each kernel kind the non-finite tests cover: scalar and vec4 element-wise kernels, a workgroup and a subgroup per row. */
export async function kernelContexts(make: (o: DetlossOptions) => Promise<Detloss>): Promise<Record<string, Detloss>> {
  return {
    scalar: await make({ plan: { kind: 'software', vectorWidth: 1 } }),
    vec4: await make({ plan: { kind: 'software', vectorWidth: 4 } }),
    workgroup: await make({ plan: { kind: 'software' }, rowThreshold: 0 }),
    subgroup: await make({ plan: { kind: 'hardware', rowThreshold: 0, rowLanes: 'subgroup' } }),
  };
}
