import { describe, expect, it } from 'vitest';
import { OPS } from '../../src/ops/registry';
import { OP_NONE_RANK, OP_SIGNATURES } from '../../src/ops/op-types';

// The types of `run`, `runResident` and `cpu.run` come from OP_SIGNATURES; the runtime checks
// come from the registry. They must name the same ops, inputs, params, enum values and reductions.
const signatures = OP_SIGNATURES as Record<
  string,
  { inputs: Record<string, string>; params: Record<string, string | readonly string[]>; reductions?: readonly string[] }
>;

describe('the typed op map matches the registry', () => {
  it('names the same ops', () => {
    expect(Object.keys(signatures).sort()).toEqual(Object.keys(OPS).sort());
  });

  it.each(Object.keys(OPS))('%s: inputs, dtypes and which are optional', (name) => {
    const want = Object.fromEntries(Object.entries(OPS[name].inputs).map(([k, s]) => [k, `${s.dtype}${s.optional ? '?' : ''}`]));
    expect(signatures[name]?.inputs).toEqual(want);
  });

  it.each(Object.keys(OPS))('%s: params, their kinds and enum values', (name) => {
    const want = Object.fromEntries(
      Object.entries(OPS[name].params).map(([k, s]) => [k, s.kind === 'enum' ? [...s.values] : s.kind === 'bool' ? 'boolean' : s.kind === 'pair' ? 'pair' : s.kind === 'limit' ? (s.required ? 'limit!' : 'limit') : s.required ? 'number!' : 'number']),
    );
    const got = Object.fromEntries(Object.entries(signatures[name]?.params ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v : [...v]]));
    expect(got).toEqual(want);
  });

  it.each(Object.keys(OPS))("%s: the rank of its 'none' output (detloss/tfjs's types)", (name) => {
    const { inputs, output } = OPS[name];
    // As detloss/tfjs decides: every input [n] like the output, so tensors are flattened and the output takes the first one's shape.
    const elementwise = output.length === 1 && Object.values(inputs).every((s) => s.shape.length === 1 && s.shape[0] === output[0]);
    expect((OP_NONE_RANK as Record<string, unknown>)[name]).toBe(elementwise ? 'input' : output.length);
  });

  it.each(Object.keys(OPS))('%s: reductions', (name) => {
    expect(signatures[name]?.reductions ?? ['none', 'mean', 'sum']).toEqual(OPS[name].reductions ?? ['none', 'mean', 'sum']);
  });
});
