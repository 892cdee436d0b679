import { DetlossError } from '../../errors';
import { describeValue } from '../../ops/validate';
import { PLAN_FIELD_RULES } from '../device/plan-record';
import type { TuneOptions, TunedPlan } from '../public';

// `tune()`'s options, checked before anything runs; a bad one is refused by name.

const KNOWN = ['ops', 'sizes', 'budgetMs', 'reps', 'candidates', 'search', 'onProgress'];

/** One op to tune, as the tuner takes it. */
export interface TuneItem {
  op: string;
  options?: Record<string, unknown>;
  dims?: Record<string, number>;
  sizes?: number[];
}

export interface CheckedTuneOptions {
  ops?: (string | TuneItem)[];
  sizes?: number[];
  budgetMs: number;
  reps: number;
  candidates?: TuneOptions['candidates'];
  search: 'descent' | 'exhaustive';
  onProgress?: TuneOptions['onProgress'];
}

function bad(name: string, what: string, v: unknown): never {
  throw new DetlossError('invalid_param', `tune: ${name} must be ${what}, got ${describeValue(v)}`, name);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function checkTuneOptions(options: unknown): CheckedTuneOptions {
  if (options === undefined) options = {};
  if (!isObject(options)) bad('options', 'an object', options);
  for (const k of Object.keys(options)) if (!KNOWN.includes(k)) throw new DetlossError('unknown_param', `tune: unknown option "${k}" (known: ${KNOWN.join(', ')})`, k);
  const { ops, sizes, budgetMs = 4000, reps = 5, candidates, search = 'descent', onProgress } = options as TuneOptions;
  if (typeof budgetMs !== 'number' || !Number.isFinite(budgetMs) || budgetMs <= 0) bad('budgetMs', 'a finite number of milliseconds > 0', budgetMs);
  if (typeof reps !== 'number' || !Number.isInteger(reps) || reps < 1 || reps > 100) bad('reps', 'an integer from 1 to 100', reps);
  if (search !== 'descent' && search !== 'exhaustive') bad('search', "'descent' or 'exhaustive'", search);
  if (onProgress !== undefined && typeof onProgress !== 'function') bad('onProgress', 'a function', onProgress);
  if (candidates !== undefined) checkCandidates(candidates);
  if (sizes !== undefined) {
    if (!Array.isArray(sizes) || sizes.length === 0) bad('sizes', 'a non-empty array of sizes', sizes);
    sizes.forEach((s, i) => {
      if (typeof s !== 'number' || !Number.isInteger(s) || s < 1 || s > 2 ** 31 - 1) bad(`sizes[${i}]`, `an integer from 1 to ${2 ** 31 - 1}`, s);
    });
  }
  if (ops !== undefined) {
    if (!Array.isArray(ops) || ops.length === 0) bad('ops', 'a non-empty array of op names or { op, options, dims }', ops);
    ops.forEach((item, i) => {
      if (typeof item === 'string') return;
      if (!isObject(item) || typeof item.op !== 'string') bad(`ops[${i}]`, 'an op name or { op, options, dims }', item);
      for (const k of Object.keys(item)) if (!['op', 'options', 'dims'].includes(k)) throw new DetlossError('unknown_param', `tune: unknown field ops[${i}].${k} (known: op, options, dims)`, `ops[${i}].${k}`);
      if (item.options !== undefined && !isObject(item.options)) bad(`ops[${i}].options`, 'an object', item.options);
      if (item.dims !== undefined) {
        if (!isObject(item.dims)) bad(`ops[${i}].dims`, 'an object of sizes', item.dims);
        for (const [k, v] of Object.entries(item.dims)) if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) bad(`ops[${i}].dims.${k}`, 'an integer >= 1', v);
      }
    });
  }
  return { ops: ops as CheckedTuneOptions['ops'], sizes: sizes && [...sizes], budgetMs, reps, candidates, search, onProgress };
}

/** Each list of `candidates` names a plan field and holds values that field takes (which of them the device runs is the tuner's to filter). */
function checkCandidates(candidates: unknown): void {
  if (!isObject(candidates)) bad('candidates', 'an object of candidate lists', candidates);
  for (const [k, list] of Object.entries(candidates)) {
    if (!Object.hasOwn(PLAN_FIELD_RULES, k)) throw new DetlossError('unknown_param', `tune: unknown candidate field candidates.${k} (known: ${Object.keys(PLAN_FIELD_RULES).join(', ')})`, `candidates.${k}`);
    if (list === undefined) continue;
    const rule = PLAN_FIELD_RULES[k as keyof TunedPlan];
    if (!Array.isArray(list) || list.length === 0) bad(`candidates.${k}`, `a non-empty array, each ${rule.what}`, list);
    list.forEach((v: unknown, i: number) => {
      if (!rule.ok(v)) bad(`candidates.${k}`, `a list of values, each ${rule.what} (item ${i} is not)`, v);
    });
  }
}
