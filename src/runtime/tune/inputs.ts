import { DetlossError } from '../../errors';
import type { OpDescriptor } from '../../ops/types';
import { ruleArgs, valueRulesOf, type ValueRule } from '../../ops/value-rules';

// The arrays a tuning call runs on: seeded, of the shapes the op takes at the size asked, and
// keeping the op's value rules (labels that name a class, targets in [0, 1]...), so the GPU's
// checks of resident inputs pass. Optional inputs are left out.

/** The size of a dim the caller did not give (a row op's row length, a pairwise op's m). */
const DEFAULT_DIMS: Readonly<Record<string, number>> = { c: 80, k: 17, p: 1024, m: 1000, d: 64 };

/** A seeded generator of floats in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** What a tuning call takes: host arrays with their shapes, and the dims they were made with. */
export interface TuneInputs {
  arrays: Record<string, { data: Float32Array | Int32Array; shape: number[] }>;
  dims: Record<string, number>;
}

/**
 * The inputs of `desc` at `size` output elements (rows, for a row op: `rowOp`), with the dims the
 * caller fixed (`dims`) and defaults for the rest.
 */
export function tuneInputs(desc: OpDescriptor, size: number, dims: Record<string, number>, rowOp: boolean, params: Record<string, unknown>): TuneInputs {
  const d: Record<string, number> = {};
  for (const spec of Object.values(desc.inputs)) {
    for (const s of spec.shape) if (typeof s === 'string' && s !== desc.rows) d[s] = dims[s] ?? DEFAULT_DIMS[s] ?? 16;
  }
  // Output elements per row: 1 for a row op; the output's other dims for an element-wise one.
  const perRow = rowOp ? 1 : desc.output.slice(1).reduce<number>((a, s) => a * (typeof s === 'number' ? s : d[s] ?? 1), 1);
  d[desc.rows] = Math.max(1, Math.round(size / Math.max(1, perRow)));
  const r = lcg(0x5eed + size);
  const rules = new Map(valueRulesOf(desc.name).map((u) => [u.input, u.rule]));
  const args = ruleArgs(d, params as never);
  const arrays: TuneInputs['arrays'] = {};
  for (const [name, spec] of Object.entries(desc.inputs)) {
    if (spec.optional) continue;
    const shape = spec.shape.map((s) => (typeof s === 'number' ? s : d[s]));
    const len = shape.reduce((a, b) => a * b, 1);
    if (len > 2 ** 31 - 1) throw new DetlossError('too_large', `tune: ${desc.name} at size ${size} needs ${len} elements of ${name}, too many for one array`, 'sizes');
    const rule = rules.get(name);
    const last = shape[shape.length - 1];
    if (spec.dtype === 'i32') arrays[name] = { data: Int32Array.from({ length: len }, () => integer(rule, args.c, r)), shape };
    else if (rule) arrays[name] = { data: Float32Array.from({ length: len }, () => ruled(rule, args.c, args.k, r)), shape };
    else if (last === 4 || last === 5) arrays[name] = { data: boxes(len / last, last, r), shape };
    else arrays[name] = { data: Float32Array.from({ length: len }, () => (r() - 0.5) * 6), shape };
  }
  return { arrays, dims: d };
}

function integer(rule: ValueRule | undefined, c: number, r: () => number): number {
  if (rule === 'bit') return r() < 0.5 ? 1 : 0;
  return Math.floor(r() * Math.max(1, c));
}

function ruled(rule: ValueRule, c: number, k: number, r: () => number): number {
  switch (rule) {
    case 'pm1':
      return r() < 0.5 ? -1 : 1;
    case 'dfl':
      return r() * Math.max(0, k - 1.01);
    case 'count':
      return 1 + Math.floor(r() * 5000);
    case 'positive':
      return 8;
    case 'class':
    case 'class_or_ignore':
      return Math.floor(r() * Math.max(1, c));
    case 'ap':
    case 'bit':
      return r() < 0.1 ? 1 : 0;
    default:
      // unit, le1, finite: a probability.
      return r();
  }
}

/** Boxes near each other: (x1, y1, x2, y2) for 4 columns, (cx, cy, w, h, angle) for 5. */
function boxes(n: number, cols: number, r: () => number): Float32Array {
  const b = new Float32Array(n * cols);
  for (let i = 0; i < n; i++) {
    const x = r() * 500;
    const y = r() * 500;
    const w = 4 + r() * 60;
    const h = 4 + r() * 60;
    b.set(cols === 4 ? [x, y, x + w, y + h] : [x, y, w, h, (r() - 0.5) * 2.6], i * cols);
  }
  return b;
}
