import type { Dims, OpDescriptor, ParamValue, ResolvedParams, TensorSpec } from './types';
import { fail } from './types';

export type Reduction = 'none' | 'mean' | 'sum';

/** Options every op accepts, next to its own parameters. */
export interface SharedOptions {
  /** `'none' | 'mean' | 'sum'`, default `'mean'`. */
  reduction?: Reduction;
  /** With `'mean'`: divide the sum by this instead of the element count (mmdetection's `avg_factor`). */
  avgFactor?: number;
  /** Compute gradients (default `true`); `false` runs the forward pass only. */
  grad?: boolean;
  /** Scan inputs for NaN/Infinity first and reject them (costs a pass; default `false`). */
  check?: boolean;
}

/** The smallest avgFactor: its reciprocal, 2^126, is still a finite float32. */
const MIN_AVG_FACTOR = 2 ** -126;

/** A value as an error message shows it (strings quoted, objects by kind), never throwing. */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || typeof v !== 'object') return String(v);
  if (Array.isArray(v)) return 'an array';
  return `an object (${(v as object).constructor?.name ?? 'Object'})`;
}

export const SHARED_OPTION_NAMES = ['reduction', 'avgFactor', 'grad', 'check'] as const;
/** Array options that travel with the inputs. */
export const SHARED_INPUTS = ['weight', 'gradOutput'] as const;

/** What validation needs to know of one input, whatever holds its data. */
export interface InputInfo {
  length: number;
  /** `'f32'`, `'i32'`, `'f64'` (a Float64Array), or the constructor name of anything else. */
  kind: string;
  shape?: number[];
}

export interface Resolved {
  dims: Dims;
  params: ResolvedParams;
  given: Set<string>;
  reduction: Reduction;
  avgFactor?: number;
  wantGrad: boolean;
  check: boolean;
  /** Output shape for `'none'`, and its element count. */
  outShape: number[];
  outCount: number;
  /** Elements of the output per row of `rows`. */
  outPerRow: number;
  /**
   * The shape of each named output (`OpDescriptor.outputs`), solved from the dims; for one of
   * data-dependent length (`OutputSpec.capacity`), its capacity.
   */
  outputShapes: Record<string, number[]>;
  hasWeight: boolean;
  hasGradOutput: boolean;
  /** The inputs the call gave, host arrays and GPU tensors alike (an optional input may be absent). */
  present: ReadonlySet<string>;
}

export function typedKind(a: unknown): string {
  if (a instanceof Float32Array) return 'f32';
  if (a instanceof Int32Array) return 'i32';
  if (a instanceof Float64Array) return 'f64';
  if (a === null) return 'null';
  if (typeof a !== 'object') return typeof a;
  return (a as object).constructor?.name ?? 'object';
}

const ARRAY_NAME: Record<string, string> = { f32: 'Float32Array', i32: 'Int32Array', f64: 'Float64Array' };
const describe = (kind: string) => ARRAY_NAME[kind] ?? kind;

const product = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

function shapeText(spec: TensorSpec, dims: Dims): string {
  return `[${spec.shape.map((d) => (typeof d === 'number' ? d : `${d}=${dims[d] ?? '?'}`)).join(', ')}]`;
}

/**
 * Checks an op's inputs and options and resolves its symbolic dimensions.
 * Throws `DetlossError` naming the argument at fault.
 */
export function resolve(
  op: OpDescriptor,
  inputs: Record<string, InputInfo | undefined>,
  options: Record<string, unknown>,
  allowF64: boolean,
): Resolved {
  const { params, given, reduction, avgFactor } = resolveOptions(op, options);
  return resolveInputs(op, inputs, options, allowF64, { params, given, reduction, avgFactor });
}

/** Checks and completes an op's params and shared options (no inputs needed: `warmup` uses this). */
export function resolveOptions(op: OpDescriptor, options: Record<string, unknown>) {
  if (typeof options !== 'object' || options === null) fail('invalid_param', `${op.name}: options must be an object`, 'options');
  const params: ResolvedParams = {};
  const given = new Set<string>();
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if ((SHARED_OPTION_NAMES as readonly string[]).includes(key)) continue;
    const spec = Object.hasOwn(op.params, key) ? op.params[key] : undefined;
    if (!spec) {
      const known = [...Object.keys(op.params), ...SHARED_OPTION_NAMES].join(', ');
      fail('unknown_param', `${op.name}: unknown parameter "${key}" (known: ${known})`, key);
    }
    given.add(key);
    params[key] = checkParam(op.name, key, spec, value);
  }
  for (const [key, spec] of Object.entries(op.params)) {
    if (key in params) continue;
    const byVariant = 'byVariant' in spec ? spec.byVariant : undefined;
    const variant = params.variant;
    if (byVariant && typeof variant === 'string' && Object.hasOwn(byVariant, variant)) params[key] = byVariant[variant];
    else if (spec.default !== undefined) params[key] = spec.default;
    else if (spec.kind === 'number' && spec.required) fail('invalid_param', `${op.name}: ${key} is required (a number${rangeText(spec)}), and none was given`, key);
    else if (spec.kind === 'limit' && spec.required) fail('invalid_param', `${op.name}: ${key} is required (an integer, a number or a bigint), and none was given`, key);
  }

  // An op that takes no reduction refuses one, even its own default.
  if (op.reductions?.length === 0 && options.reduction !== undefined) {
    fail('invalid_param', `${op.name}: takes no reduction (its outputs are not reduced by the caller), got ${describeValue(options.reduction)}`, 'reduction');
  }
  // 'mean' by default (ops.md), or the op's only reduction (pairwise_iou: 'none').
  const reduction = (options.reduction !== undefined ? options.reduction : op.reductions?.length === 1 ? op.reductions[0] : 'mean') as Reduction;
  if (!['none', 'mean', 'sum'].includes(reduction as string)) {
    fail('invalid_param', `${op.name}: reduction must be 'none', 'mean' or 'sum', got ${JSON.stringify(options.reduction)}`, 'reduction');
  }
  if (op.reductions?.length && !op.reductions.includes(reduction)) {
    fail('invalid_param', `${op.name}: reduction '${reduction}' is not supported (only ${op.reductions.map((x) => `'${x}'`).join(', ')})`, 'reduction');
  }
  let avgFactor: number | undefined;
  if (options.avgFactor !== undefined) {
    avgFactor = options.avgFactor as number;
    if (typeof avgFactor !== 'number' || !Number.isFinite(avgFactor) || avgFactor <= 0) {
      fail('invalid_param', `${op.name}: avgFactor must be a finite number > 0, got ${describeValue(options.avgFactor)}`, 'avgFactor');
    }
    // The kernels scale by 1 / avgFactor in float32: it must stay finite there.
    if (avgFactor < MIN_AVG_FACTOR || !Number.isFinite(Math.fround(avgFactor))) {
      fail('invalid_param', `${op.name}: avgFactor must be between 2^-126 (1.2e-38) and 3.4e38, so that it and 1/avgFactor are finite float32 numbers; got ${avgFactor}`, 'avgFactor');
    }
    if (op.reductions?.length === 0) fail('invalid_param', `${op.name}: takes no avgFactor (it is not reduced by the caller)`, 'avgFactor');
    if (reduction !== 'mean') fail('invalid_param', `${op.name}: avgFactor applies only to reduction 'mean', not '${reduction}'`, 'avgFactor');
  }
  for (const k of ['grad', 'check'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'boolean') {
      fail('invalid_param', `${op.name}: ${k} must be true or false, got ${describeValue(options[k])}`, k);
    }
  }
  return { params, given, reduction, avgFactor };
}

function resolveInputs(
  op: OpDescriptor,
  inputs: Record<string, InputInfo | undefined>,
  options: Record<string, unknown>,
  allowF64: boolean,
  o: ReturnType<typeof resolveOptions>,
): Resolved {
  const { params, given, reduction, avgFactor } = o;

  // --- input names and dtypes
  for (const name of Object.keys(inputs)) {
    if (inputs[name] === undefined) continue;
    if (!Object.hasOwn(op.inputs, name) && !(SHARED_INPUTS as readonly string[]).includes(name)) {
      const known = [...Object.keys(op.inputs), ...SHARED_INPUTS].join(', ');
      fail('unknown_input', `${op.name}: unknown input "${name}" (known: ${known})`, name);
    }
  }
  const first = op.bindOrder ?? [];
  const rank = (name: string) => (first.includes(name) ? first.indexOf(name) : first.length);
  // A stable sort: the inputs of bindOrder first, then the others as declared.
  const specs: [string, TensorSpec][] = Object.entries(op.inputs).sort(([a], [b]) => rank(a) - rank(b));
  for (const [name, spec] of specs) {
    const info = inputs[name];
    if (!info) {
      if (!spec.optional) fail('missing_input', `${op.name}: input "${name}" is required (${spec.dtype}, shape [${spec.shape.join(', ')}])`, name);
      continue;
    }
    checkKind(op.name, name, spec.dtype, info.kind, allowF64);
  }
  for (const name of SHARED_INPUTS) {
    const info = inputs[name];
    if (info) checkKind(op.name, name, 'f32', info.kind, allowF64);
  }

  // --- solve dims: explicit shapes first, then lengths with a single unknown
  const dims: Dims = {};
  const bind = (name: string, spec: TensorSpec, sym: string, value: number) => {
    if (dims[sym] !== undefined && dims[sym] !== value) {
      fail('shape_mismatch', `${op.name}: ${name} has ${sym}=${value} but another input has ${sym}=${dims[sym]}`, name);
    }
    dims[sym] = value;
  };
  for (const [name, spec] of specs) {
    const info = inputs[name];
    if (!info?.shape) continue;
    if (info.shape.length !== spec.shape.length) {
      fail('shape_mismatch', `${op.name}: ${name} must have rank ${spec.shape.length} (shape [${spec.shape.join(', ')}]), got shape [${info.shape.join(', ')}]`, name);
    }
    spec.shape.forEach((d, i) => {
      const v = info.shape![i];
      if (!Number.isInteger(v) || v < 0) fail('shape_mismatch', `${op.name}: ${name} has an invalid shape [${info.shape!.join(', ')}]`, name);
      if (typeof d === 'number') {
        if (v !== d) fail('shape_mismatch', `${op.name}: ${name} must have shape [${spec.shape.join(', ')}], got [${info.shape!.join(', ')}]`, name);
      } else bind(name, spec, d, v);
    });
  }
  let progress = true;
  while (progress) {
    progress = false;
    for (const [name, spec] of specs) {
      const info = inputs[name];
      if (!info || info.shape) continue;
      const unknown = spec.shape.filter((d): d is string => typeof d === 'string' && dims[d] === undefined);
      const uniq = [...new Set(unknown)];
      if (uniq.length !== 1 || unknown.length !== 1) continue;
      const known = product(spec.shape.map((d) => (typeof d === 'number' ? d : dims[d] ?? 1)));
      if (known === 0) {
        dims[uniq[0]] = 0;
      } else {
        if (info.length % known !== 0) {
          fail('shape_mismatch', `${op.name}: ${name} has ${info.length} elements, not a multiple of ${known} (shape ${shapeText(spec, dims)})`, name);
        }
        dims[uniq[0]] = info.length / known;
      }
      progress = true;
    }
  }
  for (const [name, spec] of specs) {
    const info = inputs[name];
    if (!info) continue;
    for (const d of spec.shape) {
      if (typeof d === 'string' && dims[d] === undefined) {
        fail('shape_mismatch', `${op.name}: cannot tell ${d} from the lengths alone; pass ${name} as { data, shape }`, name);
      }
    }
    const want = product(spec.shape.map((d) => (typeof d === 'number' ? d : dims[d])));
    if (info.length !== want) {
      fail('shape_mismatch', `${op.name}: ${name} must have ${want} elements (shape ${shapeText(spec, dims)}), got ${info.length}`, name);
    }
  }

  const outShape = op.output.map((d) => (typeof d === 'number' ? d : dims[d] ?? 0));
  const outputShapes: Record<string, number[]> = {};
  for (const [name, spec] of Object.entries(op.outputs ?? {})) {
    const shape = spec.shape.map((d) => (typeof d === 'number' ? d : dims[d] ?? 0));
    if (spec.capacity) shape[0] = spec.capacity(dims, params);
    outputShapes[name] = shape;
  }
  const outCount = product(outShape);
  const rows = dims[op.rows] ?? 0;
  const outPerRow = rows === 0 ? product(outShape.slice(1)) : outCount / rows;
  const w = inputs.weight;
  // An op that takes no reduction takes no weight either, whatever its shape (ops.md: refused by name).
  if (w && op.reductions?.length === 0) fail('invalid_param', `${op.name}: takes no weight (its outputs are not reduced by the caller)`, 'weight');
  if (w && w.length !== outCount) {
    // PyTorch's F.cross_entropy(weight=...) is per class: that is classWeight here.
    const hint = 'classWeight' in op.inputs && w.length === dims.c && w.length !== outCount ? `; a weight per class (PyTorch's weight=) is classWeight` : '';
    fail('shape_mismatch', `${op.name}: weight must match the unreduced output, shape [${outShape.join(', ')}] (${outCount} elements), got ${w.length}${hint}`, 'weight');
  }
  const go = inputs.gradOutput;
  if (go) {
    const want = reduction === 'none' ? outCount : 1;
    if (go.length !== want) {
      const shape = reduction === 'none' ? `[${outShape.join(', ')}]` : '[] (a scalar)';
      fail('shape_mismatch', `${op.name}: gradOutput must have shape ${shape} for reduction '${reduction}' (${want} elements), got ${go.length}`, 'gradOutput');
    }
  }
  return {
    dims,
    params,
    given,
    reduction,
    avgFactor,
    wantGrad: options.grad !== false,
    check: options.check === true,
    outShape,
    outCount,
    outPerRow,
    outputShapes,
    hasWeight: !!w,
    hasGradOutput: !!go,
    present: new Set(Object.keys(inputs).filter((k) => inputs[k] !== undefined)),
  };
}

function checkKind(opName: string, name: string, dtype: 'f32' | 'i32', kind: string, allowF64: boolean) {
  const ok = kind === dtype || (allowF64 && dtype === 'f32' && kind === 'f64');
  if (!ok) {
    const want = dtype === 'f32' ? (allowF64 ? 'Float32Array or Float64Array' : 'Float32Array') : 'Int32Array';
    fail('wrong_dtype', `${opName}: ${name} must be a ${want} (${dtype}), got ${describe(kind)}`, name);
  }
}

function checkParam(opName: string, key: string, spec: OpDescriptor['params'][string], value: unknown): ParamValue {
  switch (spec.kind) {
    case 'pair': {
      if (!Array.isArray(value) || value.length !== 2 || !value.every((x) => typeof x === 'number' && Number.isFinite(x))) {
        fail('invalid_param', `${opName}: ${key} must be an array of two finite numbers, got ${Array.isArray(value) ? JSON.stringify(value) : describeValue(value)}`, key);
      }
      for (const x of value as number[]) {
        if (!Number.isFinite(Math.fround(x)) || (x !== 0 && Math.abs(x) < 2 ** -126)) fail('invalid_param', `${opName}: ${key} must hold float32 numbers, got ${JSON.stringify(value)}`, key);
        if (spec.min !== undefined && (spec.minExclusive ? x <= spec.min : x < spec.min)) fail('invalid_param', `${opName}: ${key} must hold numbers ${spec.minExclusive ? '>' : '>='} ${spec.min}, got ${JSON.stringify(value)}`, key);
        if (spec.max !== undefined && x > spec.max) fail('invalid_param', `${opName}: ${key} must hold numbers <= ${spec.max}, got ${JSON.stringify(value)}`, key);
      }
      return [value[0], value[1]] as const;
    }
    case 'limit': {
      if (typeof value === 'bigint') return value <= 0n ? 0 : value >= BigInt(LIMIT_MAX) ? LIMIT_MAX : Number(value);
      if (typeof value !== 'number' || !Number.isInteger(value)) fail('invalid_param', `${opName}: ${key} must be an integer (a number or a bigint), got ${describeValue(value)}`, key);
      return Math.min(Math.max(value, 0), LIMIT_MAX);
    }
    case 'number': {
      if (spec.infinite && (value === Infinity || value === -Infinity)) return value;
      if (typeof value !== 'number' || !Number.isFinite(value)) fail('invalid_param', `${opName}: ${key} must be a finite number${spec.infinite ? ' or ±Infinity' : ''}, got ${describeValue(value)}`, key);
      // Kernels read integers as i32 and numbers as f32: a value that does not fit would wrap or overflow.
      if (spec.integer && !Number.isInteger(value)) fail('invalid_param', `${opName}: ${key} must be an integer, got ${value}`, key);
      if (spec.integer && (value < -(2 ** 31) || value > 2 ** 31 - 1)) {
        fail('invalid_param', `${opName}: ${key} must fit a 32-bit signed integer (${-(2 ** 31)} to ${2 ** 31 - 1}), got ${value}`, key);
      }
      // A nonzero value below float32's normal range may be flushed to 0 by the GPU.
      if (!Number.isFinite(Math.fround(value)) || (value !== 0 && Math.abs(value) < 2 ** -126)) {
        fail('invalid_param', `${opName}: ${key} must be a float32 number: 0 or 1.18e-38 <= |x| <= 3.4e38, got ${value}`, key);
      }
      if (spec.min !== undefined && (spec.minExclusive ? value <= spec.min : value < spec.min)) {
        fail('invalid_param', `${opName}: ${key} must be ${spec.minExclusive ? '>' : '>='} ${spec.min}, got ${value}`, key);
      }
      if (spec.max !== undefined && value > spec.max) fail('invalid_param', `${opName}: ${key} must be <= ${spec.max}, got ${value}`, key);
      return value;
    }
    case 'enum':
      if (typeof value !== 'string' || !spec.values.includes(value)) {
        fail('invalid_param', `${opName}: unknown ${key} ${describeValue(value)} (one of ${spec.values.map((v) => `'${v}'`).join(', ')})`, key);
      }
      return value;
    case 'bool':
      if (typeof value !== 'boolean') fail('invalid_param', `${opName}: ${key} must be true or false, got ${describeValue(value)}`, key);
      return value;
  }
}

/** What a `'limit'` param resolves to at most: no tensor a kernel indexes with i32 is longer. */
export const LIMIT_MAX = 2 ** 31 - 1;

/** `' in [0, 1]'`, `' >= 0'`...: a number param's range, for a message. */
function rangeText(spec: { min?: number; max?: number; minExclusive?: boolean; integer?: boolean }): string {
  const lo = spec.min === undefined ? '' : `${spec.minExclusive ? '>' : '>='} ${spec.min}`;
  const hi = spec.max === undefined ? '' : `<= ${spec.max}`;
  const range = spec.min !== undefined && spec.max !== undefined && !spec.minExclusive ? ` in [${spec.min}, ${spec.max}]` : [lo, hi].filter(Boolean).map((t) => ` ${t}`).join(' and');
  return `${spec.integer ? ', an integer' : ''}${range}`;
}

/** Rejects NaN and infinite values in float inputs (only when the caller asks with `check: true`). */
export function checkFinite(op: { name: string }, data: Record<string, ArrayLike<number> | undefined>) {
  for (const [name, arr] of Object.entries(data)) {
    if (!arr || arr instanceof Int32Array) continue;
    for (let i = 0; i < arr.length; i++) {
      if (!Number.isFinite(arr[i])) fail('invalid_value', `${op.name}: ${name}[${i}] is ${arr[i]}; inputs must be finite`, name);
    }
  }
}
