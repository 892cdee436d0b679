import { fail } from './types';
import type { InputInfo } from './validate';
import { typedKind } from './validate';

/** A typed array, or a typed array with its shape. */
export type HostArray = Float32Array | Int32Array | Float64Array;
export type HostTensor = HostArray | { data: HostArray; shape: number[] };

export function isShaped(x: unknown): x is { data: HostArray; shape: number[] } {
  return typeof x === 'object' && x !== null && 'data' in x && 'shape' in x && Array.isArray((x as { shape: unknown }).shape);
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
