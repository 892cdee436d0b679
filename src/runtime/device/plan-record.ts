import { DetlossError } from '../../errors';
import { describeValue } from '../../ops/validate';
import type { AdapterFacts, PlanChoice, PlanRecord, TunedPlan } from '../public';
import { MAX_REDUCE_PER } from './launch-plan';

// Tuned plan records: their shape checked field by field (a malformed one is refused by the
// field's path), and whether a record is for this adapter and this version of detloss.

const ROWS = ['thread', 'workgroup', 'subgroup'];
const ADAPTER_KEYS = ['vendor', 'architecture', 'device', 'description'] as const;
const pow2 = (v: number) => v > 0 && (v & (v - 1)) === 0;

/** The field values a tuned plan may hold (createDetloss's own plan option keeps the same ranges). */
export const PLAN_FIELD_RULES: Readonly<Record<keyof TunedPlan, { ok(v: unknown): boolean; what: string }>> = {
  maxThreads: { ok: (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 2 ** 31, what: `an integer from 1 to ${2 ** 31}` },
  workgroupSize: { ok: (v) => Number.isInteger(v) && pow2(v as number) && (v as number) >= 16 && (v as number) <= 256, what: 'a power of two from 16 to 256' },
  vectorWidth: { ok: (v) => v === 1 || v === 4, what: '1 or 4' },
  reduceLanes: { ok: (v) => Number.isInteger(v) && pow2(v as number) && (v as number) <= 256, what: 'a power of two up to 256' },
  reducePer: { ok: (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_REDUCE_PER, what: `an integer from 0 to ${MAX_REDUCE_PER}` },
  rows: { ok: (v) => ROWS.includes(v as string), what: "'thread', 'workgroup' or 'subgroup'" },
};

function fail(path: string, what: string, v: unknown): never {
  throw new DetlossError('invalid_param', `createDetloss: ${path} must be ${what}, got ${describeValue(v)}`, path);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const finiteMs = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** Checks one tuned plan's fields (`path` names it in the error). */
export function checkTunedPlan(v: unknown, path: string): asserts v is TunedPlan {
  if (!isObject(v)) fail(path, 'an object of plan fields', v);
  for (const k of Object.keys(v)) if (!(k in PLAN_FIELD_RULES)) throw new DetlossError('unknown_param', `createDetloss: unknown plan field ${path}.${k}`, `${path}.${k}`);
  for (const [k, rule] of Object.entries(PLAN_FIELD_RULES)) if (!rule.ok(v[k])) fail(`${path}.${k}`, rule.what, v[k]);
}

function checkChoice(v: unknown, path: string): asserts v is PlanChoice {
  if (!isObject(v)) fail(path, 'an object', v);
  for (const k of ['family', 'size', 'op'] as const) if (typeof v[k] !== 'string' || v[k] === '') fail(`${path}.${k}`, 'a non-empty string', v[k]);
  if (!/^1e\d+(\/1e\d+)?$/.test(v.size as string)) fail(`${path}.size`, "a size class such as '1e6' or '1e6/1e2'", v.size);
  checkTunedPlan(v.plan, `${path}.plan`);
  for (const k of ['ms', 'defaultMs'] as const) if (!finiteMs(v[k])) fail(`${path}.${k}`, 'a finite number of milliseconds >= 0', v[k]);
  if (!Array.isArray(v.candidates)) fail(`${path}.candidates`, 'an array', v.candidates);
  v.candidates.forEach((c: unknown, i: number) => {
    if (!isObject(c)) fail(`${path}.candidates[${i}]`, 'an object', c);
    checkTunedPlan(c.plan, `${path}.candidates[${i}].plan`);
    if (!finiteMs(c.ms)) fail(`${path}.candidates[${i}].ms`, 'a finite number of milliseconds >= 0', c.ms);
  });
}

/** Checks a record's shape; a malformed one is a DetlossError naming the field (`plans[1].plans[0].plan.maxThreads`). */
export function checkPlanRecord(v: unknown, path: string): asserts v is PlanRecord {
  if (!isObject(v)) fail(path, 'a plan record (what tune() returned)', v);
  if (v.format !== 'detloss-plans') fail(`${path}.format`, "'detloss-plans'", v.format);
  if (typeof v.detloss !== 'string') fail(`${path}.detloss`, 'a version string', v.detloss);
  if (!isObject(v.adapter)) fail(`${path}.adapter`, 'an object', v.adapter);
  for (const k of ADAPTER_KEYS) if (typeof v.adapter[k] !== 'string') fail(`${path}.adapter.${k}`, 'a string', v.adapter[k]);
  if (v.timer !== 'gpu' && v.timer !== 'wall') fail(`${path}.timer`, "'gpu' or 'wall'", v.timer);
  if (typeof v.created !== 'string') fail(`${path}.created`, 'a date string', v.created);
  if (!Array.isArray(v.plans)) fail(`${path}.plans`, 'an array', v.plans);
  const seen = new Set<string>();
  v.plans.forEach((c: unknown, i: number) => {
    checkChoice(c, `${path}.plans[${i}]`);
    const key = `${c.family} ${c.size}`;
    if (seen.has(key)) fail(`${path}.plans[${i}]`, `the only plan for ${key}`, 'a second one');
    seen.add(key);
  });
}

/** Checks `createDetloss({ plans })`: one record or an array of them. */
export function checkPlanRecords(v: unknown): asserts v is PlanRecord | readonly PlanRecord[] {
  if (Array.isArray(v)) v.forEach((r, i) => checkPlanRecord(r, `plans[${i}]`));
  else checkPlanRecord(v, 'plans');
}

/** The adapter's identity as a record keeps it. */
export const adapterKey = (a: AdapterFacts): PlanRecord['adapter'] => ({ vendor: a.vendor, architecture: a.architecture, device: a.device, description: a.description });

/** Why a record does not hold here (another adapter, another version), or undefined when it does. */
export function mismatch(r: PlanRecord, adapter: AdapterFacts, version: string): string | undefined {
  if (r.detloss !== version) return `a plan record from detloss ${r.detloss} was ignored (this is ${version}; tune again)`;
  const here = adapterKey(adapter);
  const differs = ADAPTER_KEYS.filter((k) => r.adapter[k] !== here[k]);
  if (differs.length) return `a plan record for another adapter (${ADAPTER_KEYS.map((k) => r.adapter[k]).filter(Boolean).join(' / ') || 'unnamed'}) was ignored: its ${differs.join(', ')} differ from this adapter's`;
  return undefined;
}
