import type { LaunchPlan, TunedPlan } from '../public';

/** The most partials one lane adds in a level: no thread loops over more than this. */
export const MAX_REDUCE_PER = 2048;

/** The plans, by kind; `createDetloss({ plan })` picks one or overrides fields. */
export const PLANS: Readonly<Record<LaunchPlan['kind'], LaunchPlan>> = Object.freeze({
  // Measured on SwiftShader (issue 5's benchmark): 16,384 barrier-free threads, a thread per row
  // below 512 entries.
  software: Object.freeze({ kind: 'software', maxThreads: 16384, reduceLanes: 64, reducePer: 0, rowThreshold: 512, rowLanes: 'workgroup', vectorWidth: 4, workgroupSize: 64 }),
  hardware: Object.freeze({ kind: 'hardware', maxThreads: 262144, reduceLanes: 256, reducePer: 8, rowThreshold: 16, rowLanes: 'subgroup', vectorWidth: 4, workgroupSize: 64 }),
});

/**
 * The launch plan for an adapter: the software plan on a fallback adapter, the hardware one
 * otherwise; `force` picks one by name, and `overrides` (from createDetloss's options) replace
 * fields.
 */
export function choosePlan(adapter: { isFallbackAdapter: boolean }, force?: LaunchPlan['kind'], overrides: Partial<Omit<LaunchPlan, 'kind'>> = {}): LaunchPlan {
  const kind = force ?? (adapter.isFallbackAdapter ? 'software' : 'hardware');
  const base = PLANS[kind];
  const plan: LaunchPlan = { ...base };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) (plan as unknown as Record<string, unknown>)[k] = v;
  return plan;
}

/** A tuned plan as a launch plan on top of `base` (its kind): a row strategy is a threshold of 0 or Infinity. */
export function launchOf(base: LaunchPlan, t: TunedPlan): LaunchPlan {
  return {
    kind: base.kind,
    maxThreads: t.maxThreads,
    reduceLanes: t.reduceLanes,
    reducePer: t.reducePer,
    rowThreshold: t.rows === 'thread' ? Infinity : 0,
    rowLanes: t.rows === 'subgroup' ? 'subgroup' : 'workgroup',
    vectorWidth: t.vectorWidth,
    workgroupSize: t.workgroupSize,
  };
}

/** A launch plan as tuning records it, for rows of `rowLength` entries (0: an element-wise op). */
export function tunedOf(p: LaunchPlan, rowLength: number): TunedPlan {
  const rows = rowLength === 0 || rowLength < p.rowThreshold ? 'thread' : p.rowLanes;
  return { maxThreads: p.maxThreads, workgroupSize: p.workgroupSize, vectorWidth: p.vectorWidth, reduceLanes: p.reduceLanes, reducePer: p.reducePer, rows };
}
