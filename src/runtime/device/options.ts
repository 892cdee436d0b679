import { DetlossError } from '../../errors';
import { describeValue } from '../../ops/validate';
import type { DetlossOptions, LaunchPlan } from '../public';
import { MAX_REDUCE_PER } from './launch-plan';
import { checkPlanRecords, PLAN_FIELD_RULES } from './plan-record';


// The limits `options.limits` may lower.
const LIMIT_NAMES = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupsPerDimension'] as const;

/** `plan`: a kind, or an object of plan fields (its kind optional). */
function checkPlanOption(plan: unknown, bad: (name: string, what: string, v: unknown) => never) {
  if (plan === undefined || plan === 'software' || plan === 'hardware') return;
  if (typeof plan !== 'object' || plan === null) bad('plan', "'software', 'hardware' or an object of plan fields", plan);
  const p = plan as Record<string, unknown>;
  const int = (k: string, lo: number, hi: number) => {
    const v = p[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi)) bad(`plan.${k}`, `an integer from ${lo} to ${hi}`, v);
  };
  for (const k of Object.keys(p)) {
    if (!['kind', 'maxThreads', 'reduceLanes', 'reducePer', 'rowThreshold', 'rowLanes', 'vectorWidth', 'workgroupSize'].includes(k)) throw new DetlossError('unknown_param', `createDetloss: unknown plan field plan.${k}`, `plan.${k}`);
  }
  if (p.kind !== undefined && p.kind !== 'software' && p.kind !== 'hardware') bad('plan.kind', "'software' or 'hardware'", p.kind);
  if (p.rowLanes !== undefined && p.rowLanes !== 'workgroup' && p.rowLanes !== 'subgroup') bad('plan.rowLanes', "'workgroup' or 'subgroup'", p.rowLanes);
  if (p.vectorWidth !== undefined && p.vectorWidth !== 1 && p.vectorWidth !== 4) bad('plan.vectorWidth', '1 or 4', p.vectorWidth);
  if (p.workgroupSize !== undefined && !PLAN_FIELD_RULES.workgroupSize.ok(p.workgroupSize)) bad('plan.workgroupSize', PLAN_FIELD_RULES.workgroupSize.what, p.workgroupSize);
  int('maxThreads', 1, 2 ** 31);
  int('reducePer', 0, MAX_REDUCE_PER);
  int('reduceLanes', 1, 256);
  if (p.reduceLanes !== undefined && ((p.reduceLanes as number) & ((p.reduceLanes as number) - 1)) !== 0) bad('plan.reduceLanes', 'a power of two up to 256', p.reduceLanes);
  const rt = p.rowThreshold;
  if (rt !== undefined && (typeof rt !== 'number' || Number.isNaN(rt) || rt < 0)) bad('plan.rowThreshold', 'a number >= 0', rt);
}

/**
 * Checks the options of {@link createDetloss} before any device is requested; a bad one is a
 * `DetlossError('invalid_param')` naming it.
 */
export function checkOptions(options: unknown): asserts options is DetlossOptions {
  const bad = (name: string, what: string, v: unknown): never => {
    throw new DetlossError('invalid_param', `createDetloss: ${name} must be ${what}, got ${describeValue(v)}`, name);
  };
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) bad('options', 'an object', options);
  const o = options as Record<string, unknown>;
  const known = ['device', 'gpu', 'limits', 'maxThreads', 'rowThreshold', 'plan', 'plans', 'timestamps'];
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw new DetlossError('unknown_param', `createDetloss: unknown option "${k}" (known: ${known.join(', ')})`, k);
  }
  const mt = o.maxThreads;
  if (mt !== undefined && (typeof mt !== 'number' || !Number.isInteger(mt) || mt < 1 || mt > 2 ** 31)) bad('maxThreads', `an integer from 1 to ${2 ** 31}`, mt);
  checkPlanOption(o.plan, bad);
  if (o.plans !== undefined) checkPlanRecords(o.plans);
  if (o.timestamps !== undefined && typeof o.timestamps !== 'boolean') bad('timestamps', 'true or false', o.timestamps);
  const rt = o.rowThreshold;
  if (rt !== undefined && (typeof rt !== 'number' || Number.isNaN(rt) || rt < 0)) bad('rowThreshold', 'a number >= 0 (Infinity: always a thread per row)', rt);
  if (o.limits !== undefined) {
    if (typeof o.limits !== 'object' || o.limits === null) bad('limits', 'an object', o.limits);
    for (const [k, v] of Object.entries(o.limits as Record<string, unknown>)) {
      if (!(LIMIT_NAMES as readonly string[]).includes(k)) {
        throw new DetlossError('unknown_param', `createDetloss: unknown limit limits.${k} (known: ${LIMIT_NAMES.join(', ')})`, `limits.${k}`);
      }
      if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 1)) bad(`limits.${k}`, 'a positive integer', v);
    }
  }
  const dev = o.device as { createBuffer?: unknown; queue?: unknown } | undefined;
  if (dev !== undefined && (typeof dev !== 'object' || dev === null || typeof dev.createBuffer !== 'function' || !dev.queue)) bad('device', 'a GPUDevice', dev);
  const gpu = o.gpu as { requestAdapter?: unknown } | undefined;
  if (gpu !== undefined && (typeof gpu !== 'object' || gpu === null || typeof gpu.requestAdapter !== 'function')) bad('gpu', 'a GPU (navigator.gpu, or create([]) from the webgpu package)', gpu);
}

/** Refuses a plan whose workgroups are larger than the device runs (`plan.workgroupSize`). */
export function checkPlanFits(plan: LaunchPlan, device: GPUDevice): void {
  const most = Math.min(device.limits.maxComputeInvocationsPerWorkgroup, device.limits.maxComputeWorkgroupSizeX);
  if (plan.workgroupSize > most) {
    throw new DetlossError('invalid_param', `createDetloss: plan.workgroupSize ${plan.workgroupSize} is more than this device's workgroups hold (${most})`, 'plan.workgroupSize');
  }
}
