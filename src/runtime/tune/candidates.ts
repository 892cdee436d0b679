import { DetlossError } from '../../errors';
import type { GpuKernel } from '../../ops/types';
import type { Resolved } from '../../ops/validate';
import { subgroupsFit } from '../compile/kernel-choice';
import type { AdapterFacts, TunedPlan, TuneOptions } from '../public';

// The candidate values of each plan field, as the device and the op allow them, and the order in
// which the descent tries the fields.

/** Every value tuning tries by default. */
export const DEFAULT_CANDIDATES: { readonly [K in keyof TunedPlan]: readonly TunedPlan[K][] } = {
  maxThreads: [1024, 4096, 16384, 65536, 262144, 1048576],
  workgroupSize: [32, 64, 128, 256],
  vectorWidth: [1, 4],
  reduceLanes: [64, 256],
  reducePer: [0, 4, 16],
  rows: ['thread', 'workgroup', 'subgroup'],
};

/** The fields in the order the descent varies them: the ones that move time most first. */
export const FIELD_ORDER: readonly (keyof TunedPlan)[] = ['maxThreads', 'rows', 'workgroupSize', 'vectorWidth', 'reduceLanes', 'reducePer'];

export type Candidates = { [K in keyof TunedPlan]: TunedPlan[K][] };

/**
 * The candidates of one op and call: the caller's lists (each checked) or the defaults, less the
 * values that cannot differ here (a row strategy for an element-wise op, vec4 for an op without a
 * vec4 kernel) or that the device cannot run (workgroups larger than it allows, subgroups it lacks).
 */
export function candidatesFor(given: TuneOptions['candidates'], device: GPUDevice, adapter: AdapterFacts, gk: GpuKernel, r: Resolved): Candidates {
  const out = {} as Record<keyof TunedPlan, unknown[]>;
  // (The lists given were checked with the options: tune/options.ts.)
  for (const k of Object.keys(DEFAULT_CANDIDATES) as (keyof TunedPlan)[]) out[k] = [...new Set<unknown>(given?.[k] ?? DEFAULT_CANDIDATES[k])];
  const wgMax = Math.min(device.limits.maxComputeInvocationsPerWorkgroup, device.limits.maxComputeWorkgroupSizeX);
  const c = out as Candidates;
  c.workgroupSize = c.workgroupSize.filter((w) => w <= wgMax);
  if (c.workgroupSize.length === 0) throw new DetlossError('invalid_param', `tune: no candidate workgroupSize fits this device (at most ${wgMax} lanes)`, 'candidates.workgroupSize');
  if (!gk.vec4 || r.outCount % 4 !== 0) c.vectorWidth = [c.vectorWidth[0]];
  if (!gk.rows) c.rows = ['thread'];
  else if (!gk.rows.subgroup || !device.features.has('subgroups') || !c.workgroupSize.some((w) => subgroupsFit(adapter, w))) c.rows = c.rows.filter((x) => x !== 'subgroup');
  if (c.rows.length === 0) c.rows = ['thread'];
  // Without a reduction the tree does not run: its fields cannot matter.
  if (r.reduction === 'none' && !gk.aux) {
    c.reduceLanes = [c.reduceLanes[0]];
    c.reducePer = [c.reducePer[0]];
  }
  return c;
}

/** Every combination of the candidates (the exhaustive search). */
export function allPlans(c: Candidates): TunedPlan[] {
  let plans: Partial<TunedPlan>[] = [{}];
  for (const k of FIELD_ORDER) plans = plans.flatMap((p) => (c[k] as unknown[]).map((v) => ({ ...p, [k]: v })));
  return plans as TunedPlan[];
}
