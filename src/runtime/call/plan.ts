import reduceWgsl from '../../../shaders/reduce.wgsl?raw';
import { DetlossError } from '../../errors';
import { snake, type GpuKernel, type OpDescriptor } from '../../ops/types';
import type { Resolved } from '../../ops/validate';
import { FLAG, PARAMS_AT, SLOT } from '../compile/abi';
import { rowStrategy, shaderInfo, subgroupLanes, useVec4 } from '../compile/kernel-choice';
import { packUniform, reflectShader } from '../compile/reflect';
import { sizeClassOf, type PlanBook, type SizeClass } from '../device/plan-book';
import type { OutputSizes } from '../memory/staging';
import type { AdapterFacts, ContextLimits, LaunchPlan } from '../public';
import { planChunks, reduceLevels, type Chunk, type ReduceLevel } from './chunks';

/** What planning a call reads from its context. */
export interface PlanContext {
  readonly device: GPUDevice;
  readonly adapter: AdapterFacts;
  readonly limits: ContextLimits;
  readonly plan: LaunchPlan;
}

/** One call's work as plain data: chunks, partials, reduction levels and the packed uniform bytes. */
export interface CallPlan {
  chunks: Chunk[];
  perRow: Record<string, number>;
  totalPartials: number;
  /** The reduction tree's levels (none for reduction 'none'). */
  levels: ReduceLevel[];
  uniforms: ArrayBuffer;
  uniformBytes: number;
  /** Offset of the first reduction level's uniform slot (one slot per level after it). */
  redAt: number;
  /** Offset of the denominator tree's first slot, when the 'mean' denominator is summed on the GPU. */
  denomAt?: number;
  /** Offset of the aux number's tree's first slot (GpuKernel.aux), when the call reports one. */
  auxAt?: number;
  /** The tuned plan the call runs (`'<family> <size>'`), where one applies. */
  tuned?: string;
}

/** A call's size class: its output elements, and a row op's row length. */
export function callSize(gk: GpuKernel, r: Resolved): SizeClass {
  return sizeClassOf(r.outCount, gk.rows && r.dims && Object.keys(r.dims).length ? gk.rows.length(r.dims) : undefined);
}

/**
 * The launch plan of one call: `force` (the tuner's candidate), else the plan tuned for the op's
 * family (its kernel module) and the call's size class, else the context's. A program op (its
 * passes fixed per plan kind) always runs the context's.
 */
export function launchFor(ctx: PlanContext & { book?: PlanBook; force?: LaunchPlan }, gk: GpuKernel, r: Resolved, size: SizeClass = callSize(gk, r)): { plan: LaunchPlan; tuned?: string } {
  if (gk.program) return { plan: ctx.plan };
  if (ctx.force) return { plan: ctx.force };
  const found = ctx.book?.find(gk.shaderId, size);
  return found ? { plan: found.plan, tuned: `${found.choice.family} ${found.choice.size}` } : { plan: ctx.plan };
}

/** The options of a call that tuning repeats: the op's params, the reduction and `grad` (no arrays, no avgFactor). */
export function tunableOptions(desc: OpDescriptor, options: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).filter(([k, v]) => v !== undefined && (Object.hasOwn(desc.params, k) || k === 'reduction' || k === 'grad')));
}

/** The chunks, partials and packed uniforms of one call under `plan`: plain data, no GPU work. */
export function planCall(ctx: PlanContext, plan: LaunchPlan, desc: OpDescriptor, gk: GpuKernel, r: Resolved, scale: number, present: ReadonlySet<string>, gpuDenominator = false, aux = false): CallPlan {
  const info = shaderInfo(desc, gk);
  const wg = plan.workgroupSize;
  const rows = r.dims[desc.rows] ?? 0;
  // Bytes per row of every tensor split along the rows.
  const perRow: Record<string, number> = {};
  for (const [name, spec] of Object.entries(desc.inputs)) {
    if (spec.shape[0] !== desc.rows) continue;
    perRow[name] = spec.shape.slice(1).reduce<number>((a, d) => a * (typeof d === 'number' ? d : r.dims[d]), 1) * 4;
  }
  const outRowBytes = r.outPerRow * 4;
  const rowBytes = [outRowBytes, ...Object.values(perRow)];
  const chunks = planChunks({
    rows,
    maxBytesPerRow: Math.max(4, ...rowBytes),
    rowBytes,
    outPerRow: r.outPerRow,
    wg,
    maxThreads: plan.maxThreads,
    limits: ctx.limits,
    label: desc.name,
    threadsPerOutput: { thread: 1, workgroup: wg, subgroup: subgroupLanes(ctx.adapter, wg) }[rowStrategy(plan, ctx.device, ctx.adapter, gk, r)],
    outputsPerStep: useVec4(plan, gk, r) ? 4 : 1,
  });
  const reduced = r.reduction !== 'none';
  const totalPartials = chunks.reduce((a, c) => a + c.threads, 0);

  // An aux number (GpuKernel.aux) is summed by the same tree, so a 'none' call with one has a tree too.
  const levels = reduced || aux ? reduceLevels(totalPartials, plan, ctx.limits.maxComputeWorkgroupsPerDimension) : [];
  // Uniforms: one slot per chunk, then one per reduction level (then the denominator's levels, then the aux number's).
  const uniformBytes = (chunks.length + Math.max(1, levels.length) + (gpuDenominator ? levels.length : 0) + (aux ? levels.length : 0)) * SLOT;
  const uniforms = new ArrayBuffer(uniformBytes);
  const view = new DataView(uniforms);
  let flags = FLAG.grad * +r.wantGrad + FLAG.weight * +r.hasWeight + FLAG.gradOutput * +r.hasGradOutput;
  if (!reduced) flags |= FLAG.storeLoss;
  if (r.hasGradOutput && !reduced) flags |= FLAG.gradOutputElementwise;
  const paramValues: Record<string, number> = { ...r.dims, ...(gk.uniforms?.(r.params, r.dims) ?? {}) };
  for (const name of Object.keys(desc.inputs)) paramValues[`has_${snake(name)}`] = present.has(name) ? 1 : 0;
  const runLayout = info.uniforms.run;
  const paramsLayout = info.uniforms.params;
  chunks.forEach((c, i) => {
    if (runLayout) {
      // A NaN scale (a NaN weight in a 'mean' denominator) is the one non-finite number a uniform
      // takes: packed as 0, then written as NaN, so every scaled loss and gradient is NaN.
      packUniform(runLayout, { n: c.outCount, threads: c.threads, flags, scale: Number.isNaN(scale) ? 0 : scale }, view, i * SLOT, desc.name);
      if (Number.isNaN(scale)) view.setFloat32(i * SLOT + runLayout.members.find((m) => m.name === 'scale')!.offset, NaN, true);
    }
    if (paramsLayout) packUniform(paramsLayout, paramValues, view, i * SLOT + PARAMS_AT, desc.name);
  });
  const redAt = chunks.length * SLOT;
  const red = reflectShader(reduceWgsl).uniforms.red;
  // The fused pass scales each loss before adding it (run.scale), so the tree only adds.
  levels.forEach((l, i) => packUniform(red, { count: l.count, per: l.per, scale: 1, invert: 0 }, view, redAt + i * SLOT, desc.name));
  // The denominator's tree has the same shape (the same partials); its last level writes 1/sum,
  // which is copied into every `scale` above (0 until then) before the passes that read it.
  const denomAt = gpuDenominator ? redAt + levels.length * SLOT : undefined;
  if (denomAt !== undefined) levels.forEach((l, i) => packUniform(red, { count: l.count, per: l.per, scale: 1, invert: +(i === levels.length - 1) }, view, denomAt + i * SLOT, desc.name));
  // The aux number's tree: the same shape again, its last level scaled by 1 / (output elements): a mean.
  const auxAt = aux ? redAt + (Math.max(1, levels.length) + (gpuDenominator ? levels.length : 0)) * SLOT : undefined;
  const last = levels.length - 1;
  if (auxAt !== undefined) levels.forEach((l, i) => packUniform(red, { count: l.count, per: l.per, scale: i === last && r.outCount ? 1 / r.outCount : 1, invert: 0 }, view, auxAt + i * SLOT, desc.name));
  return { chunks, perRow, totalPartials, levels, uniforms, uniformBytes, redAt, denomAt, auxAt };
}

/** The scale of a 'mean' (1/denominator) computed on the host; 1 for the other reductions. */
export function meanScale(desc: OpDescriptor, r: Resolved, data: Record<string, ArrayLike<number> | undefined>): number {
  if (r.reduction !== 'mean') return 1;
  let denom = r.avgFactor;
  if (denom === undefined && desc.meanDenominator) {
    const f64: Record<string, Float64Array | Int32Array | undefined> = {};
    for (const [name, spec] of Object.entries(desc.inputs)) {
      const d = data[name];
      f64[name] = d === undefined ? undefined : spec.dtype === 'i32' ? (d as Int32Array) : Float64Array.from(d);
    }
    denom = desc.meanDenominator(f64, data.weight ? Float64Array.from(data.weight) : undefined, r.params, r.dims);
    // A NaN weight or classWeight: the loss is NaN, as cpu.run gives it (ops.md: never hidden).
    if (Number.isNaN(denom)) return NaN;
    const scale = denom === 0 ? 0 : 1 / denom;
    if (!Number.isFinite(Math.fround(scale))) {
      // The kernels scale by it in float32: say which data made it NaN or out of range.
      const suspects = ['weight', ...Object.entries(desc.inputs).filter(([, s]) => s.dtype === 'f32' && !s.grad).map(([k]) => k)].filter((k) => data[k]);
      const bad = suspects.find((k) => Array.prototype.some.call(data[k], (v: number) => !Number.isFinite(v))) ?? suspects[0] ?? 'weight';
      throw new DetlossError(
        'invalid_value',
        `${desc.name}: the 'mean' denominator computed from ${bad} is ${denom}, so 1/denominator is not a finite float32 (non-finite or tiny ${bad} values?); fix ${bad} or pass avgFactor`,
        bad,
      );
    }
    return scale;
  }
  denom ??= r.outCount;
  return denom === 0 ? 0 : 1 / denom;
}

/** Refuses a buffer larger than the device's maxBufferSize. */
export function checkSize(limits: ContextLimits, desc: OpDescriptor, name: string, bytes: number): void {
  if (bytes > limits.maxBufferSize) {
    throw new DetlossError('too_large', `${desc.name}: ${name} takes ${bytes} bytes, more than the device's maxBufferSize (${limits.maxBufferSize})`, name);
  }
}

/** Output sizes, checked against the device's limits (nothing is allocated). */
export function outputSizes(limits: ContextLimits, desc: OpDescriptor, r: Resolved): OutputSizes {
  const lossBytes = r.reduction === 'none' ? r.outCount * 4 : 4;
  if (lossBytes > limits.maxBufferSize) {
    throw new DetlossError('too_large', `${desc.name}: the output takes ${lossBytes} bytes, more than the device's maxBufferSize (${limits.maxBufferSize})`, 'output');
  }
  if (r.outCount > 2 ** 31 - 1) throw new DetlossError('too_large', `${desc.name}: the output has ${r.outCount} elements, too many for one JavaScript typed array`, 'output');
  const grads: Record<string, number> = {};
  const emptyGrads: string[] = [];
  if (r.wantGrad) {
    for (const [name, spec] of Object.entries(desc.inputs)) {
      // An optional input the call left out has no gradient (rotated_iou_loss's predDelta).
      if (!spec.grad || (spec.optional && !r.present.has(name))) continue;
      const count = spec.shape.reduce<number>((a, d) => a * (typeof d === 'number' ? d : r.dims[d]), 1);
      if (count === 0) {
        emptyGrads.push(name);
        continue;
      }
      checkSize(limits, desc, `grad.${name}`, count * 4);
      grads[name] = count * 4;
    }
  }
  const aux = desc.gpu?.aux?.when(r.params) ? desc.gpu.aux.name : undefined;
  return { lossBytes, grads, emptyGrads, ...(aux ? { aux } : {}) };
}
