import { describe, expect, it } from 'vitest';
import reduceWgsl from '../../shaders/reduce.wgsl?raw';
import { OPS } from '../../src/ops/registry';
import { l1Op } from '../../src/ops/regression';
import { contractProblems } from '../../src/runtime/contract';
import { reflectShader } from '../../src/runtime/reflect';

const gpuOps = Object.values(OPS).filter((d) => d.gpu);

describe('descriptors agree with their shaders (wgsl_reflect)', () => {
  it('there are GPU ops to check', () => expect(gpuOps.length).toBeGreaterThanOrEqual(5));
  it.each(gpuOps.map((d) => [d.name, d] as const))('%s', (_n, d) => {
    expect(contractProblems(d)).toEqual([]);
  });
  it('the reduce shader has the layout the runtime packs', () => {
    const info = reflectShader(reduceWgsl);
    expect(info.entries).toContain('reduce_partials');
    expect(info.uniforms.red.members.map((m) => [m.name, m.offset, m.type])).toEqual([
      ['count', 0, 'u32'],
      ['per', 4, 'u32'],
      ['scale', 8, 'f32'],
      ['invert', 12, 'u32'],
    ]);
    expect(info.overrides).toEqual(['RWG']);
    expect(info.bindings.map((b) => [b.name, b.kind])).toEqual([
      ['red', 'uniform'],
      ['partials_in', 'read'],
      ['out_value', 'read_write'],
    ]);
  });
});

describe('the contract check catches disagreements', () => {
  const broken = (edit: (code: string) => string, more: Partial<typeof l1Op> = {}) => ({
    ...l1Op,
    ...more,
    gpu: { ...l1Op.gpu!, ...more.gpu, shader: edit(l1Op.gpu!.shader) },
  });
  it('a misnamed input binding', () => {
    const p = contractProblems(broken((c) => c.replace(/in_target/g, 'in_targt')));
    expect(p.join('\n')).toMatch(/in_targt matches no input/);
    expect(p.join('\n')).toMatch(/input target has no binding in_target/);
  });
  it('wrong access on an input', () => {
    const p = contractProblems(broken((c) => c.replace('var<storage, read> in_pred', 'var<storage, read_write> in_pred')));
    expect(p.join('\n')).toMatch(/in_pred must be read-only/);
  });
  it('an i32 buffer for a float input', () => {
    const p = contractProblems(broken((c) => c.replace('in_target: array<f32>', 'in_target: array<i32>').replace('in_target[i]', 'f32(in_target[i])')));
    expect(p.join('\n')).toMatch(/in_target holds i32 but input target is f32/);
  });
  it('a Params member with no value, and a value with no member', () => {
    const p = contractProblems(broken((c) => c.replace('  delta: f32,', '  dlta: f32,').replace('params.delta', 'params.dlta')));
    expect(p.join('\n')).toMatch(/Params.dlta gets no value/);
    expect(p.join('\n')).toMatch(/uniforms\(\) returns delta/);
  });
  it('a Run uniform laid out differently', () => {
    const p = contractProblems(broken((c) => c.replace('  flags: u32,\n  scale: f32,', '  scale: f32,\n  flags: u32,')));
    expect(p.join('\n')).toMatch(/uniform Run is/);
  });
  it('a missing entry point and an undeclared override', () => {
    const d = broken((c) => c, { gpu: { ...l1Op.gpu!, entry: 'nope', overrides: () => ({ LOSSS: 1 }) } });
    const p = contractProblems(d).join('\n');
    expect(p).toMatch(/entry point nope/);
    expect(p).toMatch(/override LOSSS/);
  });
});
