import { fail } from './types';
import type { InputInfo } from './validate';
import { describeValue, typedKind } from './validate';

/** A typed array, or a typed array with its shape. */
export type HostArray = Float32Array | Int32Array | Float64Array;
export type HostTensor = HostArray | { data: HostArray; shape: number[] };

/** `{ data, shape }` (its shape still to be checked: see {@link checkShape}). */
export function isShaped(x: unknown): x is { data: HostArray; shape: number[] } {
  return typeof x === 'object' && x !== null && !ArrayBuffer.isView(x) && 'data' in x && 'shape' in x;
}

/** A shape must be an array of non-negative integers; anything else is `shape_mismatch` naming the input. */
export function checkShape(opName: string, name: string, shape: unknown): asserts shape is number[] {
  const ok = Array.isArray(shape) && shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0);
  if (!ok) {
    const text = Array.isArray(shape) ? `[${shape.map((d) => (typeof d === 'string' ? JSON.stringify(d) : String(d))).join(', ')}]` : describeValue(shape);
    fail('shape_mismatch', `${opName}: ${name} has an invalid shape ${text}: a shape is an array of non-negative integers`, name);
  }
}

/** Splits `{ data, shape }` inputs into their data and the facts validation needs. */
export function hostInputs(opName: string, inputs: Record<string, unknown>): {
  data: Record<string, HostArray | undefined>;
  info: Record<string, InputInfo | undefined>;
} {
  if (typeof inputs !== 'object' || inputs === null) fail('missing_input', `${opName}: inputs must be an object of typed arrays`, 'inputs');
  const data: Record<string, HostArray | undefined> = {};
  const info: Record<string, InputInfo | undefined> = {};
  for (const [name, value] of Object.entries(inputs)) {
    // null, like undefined, means "not given": required inputs then fail as missing.
    if (value === undefined || value === null) continue;
    if (isShaped(value)) {
      checkShape(opName, name, value.shape);
      const d = value.data;
      const len = value.shape.reduce((a, b) => a * b, 1);
      const kind = typedKind(d);
      if (['f32', 'i32', 'f64'].includes(kind) && d.length !== len) {
        fail('shape_mismatch', `${opName}: ${name} has shape [${value.shape.join(', ')}] (${len} elements) but its data has ${d.length}`, name);
      }
      data[name] = d;
      info[name] = { length: d?.length ?? 0, kind, shape: value.shape };
    } else {
      const kind = typedKind(value);
      data[name] = value as HostArray;
      const length = typeof value === 'object' ? (value as { length?: unknown }).length : undefined;
      info[name] = { length: typeof length === 'number' ? length : 0, kind };
    }
  }
  return { data, info };
}
