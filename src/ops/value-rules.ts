import type { Dims, ResolvedParams } from './types';

/**
 * The rules an input's values must keep (labels that name a class, targets of -1 or +1...), as
 * data, so the GPU can check arrays the host never sees. The host refuses a bad value in a host
 * array through each op's validator; this table says the same rules once more for the runtime's
 * check pass (shaders/check.wgsl), and test/runtime/call/value-checks.test.ts holds the two to the same
 * verdict on every probe value. `finite` is the rule of `{ check: true }`.
 */
export type ValueRule = 'class_or_ignore' | 'unit' | 'dfl' | 'pm1' | 'ap' | 'le1' | 'count' | 'finite' | 'class' | 'bit' | 'positive';

/** The rule codes of shaders/check.wgsl. */
export const RULE_CODES: Readonly<Record<ValueRule, number>> = { class_or_ignore: 0, unit: 1, dfl: 2, pm1: 3, ap: 4, le1: 5, count: 6, finite: 7, class: 8, bit: 9, positive: 10 };

export interface ValueRuleUse {
  input: string;
  rule: ValueRule;
  /** Checked only when the caller asks (`check: true`), as `tal_assign`'s scores in [0, 1]. */
  withCheck?: boolean;
}

const pm1: readonly ValueRuleUse[] = [{ input: 'targets', rule: 'pm1' }];
const classes: readonly ValueRuleUse[] = [{ input: 'labels', rule: 'class_or_ignore' }];

/** The value rules of each op of the catalogue (ops.md); an op not listed has none. */
export const VALUE_RULES: Readonly<Record<string, readonly ValueRuleUse[]>> = {
  cross_entropy: classes,
  nll: classes,
  softmax_focal: classes,
  sigmoid_focal: [{ input: 'targets', rule: 'unit' }],
  varifocal: [{ input: 'targets', rule: 'unit' }],
  distribution_focal: [{ input: 'targets', rule: 'dfl' }],
  class_balanced_focal: [{ input: 'samplesPerClass', rule: 'count' }],
  hinge: pm1,
  hinge_embedding: pm1,
  margin_ranking: pm1,
  exponential: pm1,
  ap_loss: [{ input: 'targets', rule: 'ap' }],
  rank_sort: [{ input: 'targets', rule: 'le1' }],
  tal_assign: [
    { input: 'gtLabels', rule: 'class' },
    { input: 'gtMask', rule: 'bit' },
    { input: 'scores', rule: 'unit', withCheck: true },
  ],
  yolo_detection_loss: [
    { input: 'gtLabels', rule: 'class' },
    { input: 'gtMask', rule: 'bit' },
    { input: 'strides', rule: 'positive' },
  ],
};

/**
 * The value rules of the helper programs (registry.ts's HELPER_OPS, not ops of the catalogue):
 * the rotated assigner keeps tal_assign's.
 */
export const HELPER_VALUE_RULES: Readonly<Record<string, readonly ValueRuleUse[]>> = {
  rotated_tal_assign: VALUE_RULES.tal_assign,
};

/** The value rules of an op or helper program by name (none for a name in neither table). */
export const valueRulesOf = (name: string): readonly ValueRuleUse[] =>
  Object.hasOwn(VALUE_RULES, name) ? VALUE_RULES[name] : Object.hasOwn(HELPER_VALUE_RULES, name) ? HELPER_VALUE_RULES[name] : [];

/** The numbers a rule reads besides the value: the class count, the bins, ignoreIndex. */
export interface RuleArgs {
  c: number;
  k: number;
  ignore: number;
}

export function ruleArgs(dims: Dims, params: ResolvedParams): RuleArgs {
  return { c: dims.c ?? 0, k: dims.k ?? 0, ignore: typeof params.ignoreIndex === 'number' ? params.ignoreIndex : 0 };
}

/** Whether a value keeps the rule (the verdict of the host validators, NaN included). */
export function keeps(rule: ValueRule, v: number, a: RuleArgs): boolean {
  switch (rule) {
    case 'class_or_ignore':
      return v === a.ignore || (v >= 0 && v < a.c);
    case 'unit':
      // NaN is left to `check` (the validators compare with < and >, which NaN passes).
      return !(v < 0 || v > 1);
    case 'dfl':
      return v >= 0 && v < a.k - 1;
    case 'pm1':
      return v === 1 || v === -1;
    case 'ap':
      return v === 1 || v === 0 || v === -1;
    case 'le1':
      return v <= 1;
    case 'count':
      return v >= 0 && Number.isFinite(v);
    case 'finite':
      return Number.isFinite(v);
    case 'class':
      return v >= 0 && v < a.c;
    case 'bit':
      return v === 0 || v === 1;
    case 'positive':
      return Number.isFinite(v) && v > 0;
  }
}

/** What a value breaking the rule is not, for the error message. */
export function ruleText(rule: ValueRule, a: RuleArgs): string {
  switch (rule) {
    case 'class_or_ignore':
      return `a class in 0..${a.c - 1} nor ignoreIndex (${a.ignore})`;
    case 'unit':
      return 'in [0, 1]';
    case 'dfl':
      return `in [0, k-1) = [0, ${a.k - 1})`;
    case 'pm1':
      return '-1 or +1';
    case 'ap':
      return '1 (positive), 0 (negative) or -1 (ignored)';
    case 'le1':
      return 'at most 1 (a positive\'s IoU) and not NaN';
    case 'count':
      return 'a finite count >= 0';
    case 'finite':
      return 'finite (check: true)';
    case 'class':
      return `a class in 0..${a.c - 1}`;
    case 'bit':
      return '1 (a real gt) or 0 (padding)';
    case 'positive':
      return 'a finite number > 0';
  }
}
