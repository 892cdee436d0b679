import { describe, expect, it } from 'vitest';
import reduceWgsl from '../../../shaders/reduce.wgsl?raw';
import { OPS } from '../../../src/ops/registry';
import { l1Op } from '../../../src/ops/regression';
import { contractProblems, kernelVariants } from '../../../src/runtime/compile/contract';
import { reflectShader } from '../../../src/runtime/compile/reflect';
import { reflectWgsl } from '../../../src/runtime/compile/reflect-wgsl';
import fusedHeaderWgsl from '../../../shaders/fused-header.wgsl?raw';
import talWgsl from '../../../shaders/tal.wgsl?raw';

const gpuOps = Object.values(OPS).filter((d) => d.gpu);

describe('descriptors agree with their shaders (wgsl_reflect, and the build-time table)', () => {
  it('there are GPU ops to check', () => expect(gpuOps.length).toBeGreaterThanOrEqual(5));
  it.each(gpuOps.map((d) => [d.name, d] as const))('%s', (_n, d) => {
    expect(contractProblems(d, reflectWgsl)).toEqual([]);
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

// The broken shaders are not in the build-time table: they are read with wgsl_reflect here.
describe('the contract check catches disagreements', () => {
  const broken = (edit: (code: string) => string, more: Partial<typeof l1Op> = {}) => ({
    ...l1Op,
    ...more,
    gpu: { ...l1Op.gpu!, ...more.gpu, shader: edit(l1Op.gpu!.shader) },
  });
  it('a misnamed input binding', () => {
    const p = contractProblems(broken((c) => c.replace(/in_target/g, 'in_targt')), reflectWgsl);
    expect(p.join('\n')).toMatch(/in_targt matches no input/);
    expect(p.join('\n')).toMatch(/input target has no binding in_target/);
  });
  it('wrong access on an input', () => {
    const p = contractProblems(broken((c) => c.replace('var<storage, read> in_pred', 'var<storage, read_write> in_pred')), reflectWgsl);
    expect(p.join('\n')).toMatch(/in_pred must be read-only/);
  });
  it('an i32 buffer for a float input', () => {
    const p = contractProblems(broken((c) => c.replace('in_target: array<f32>', 'in_target: array<i32>').replace('in_target[i]', 'f32(in_target[i])')), reflectWgsl);
    expect(p.join('\n')).toMatch(/in_target holds i32 but input target is f32/);
  });
  it('a Params member with no value, and a value with no member', () => {
    const p = contractProblems(broken((c) => c.replace('  delta: f32,', '  dlta: f32,').replace('params.delta', 'params.dlta')), reflectWgsl);
    expect(p.join('\n')).toMatch(/Params.dlta gets no value/);
    expect(p.join('\n')).toMatch(/uniforms\(\) returns delta/);
  });
  it('a Run uniform laid out differently', () => {
    const p = contractProblems(broken((c) => c.replace('  flags: u32,\n  scale: f32,', '  scale: f32,\n  flags: u32,')), reflectWgsl);
    expect(p.join('\n')).toMatch(/uniform Run is/);
  });
  it('a missing entry point and an undeclared override', () => {
    const d = broken((c) => c, { gpu: { ...l1Op.gpu!, entry: 'nope', overrides: () => ({ LOSSS: 1 }) } });
    const p = contractProblems(d, reflectWgsl).join('\n');
    expect(p).toMatch(/entry point nope/);
    expect(p).toMatch(/override LOSSS/);
  });
});

describe('every module of a kernel is held to the contract (kernelVariants)', () => {
  const ce = OPS.cross_entropy;
  it('the variants of a row op and of an element-wise op with a vec4 module', () => {
    expect(kernelVariants(ce.gpu!).map((v) => v.variant)).toEqual(['main', 'subgroup']);
    const gk = { ...l1Op.gpu!, vec4: { shader: l1Op.gpu!.shader, shaderId: 'l1+vec4' } };
    expect(kernelVariants(gk).map((v) => [v.variant, v.shaderId])).toEqual([
      ['main', l1Op.gpu!.shaderId],
      ['vec4', 'l1+vec4'],
    ]);
  });
  it('a fault in the subgroup module alone is found and named', () => {
    const sg = ce.gpu!.rows!.subgroup!;
    const d = { ...ce, gpu: { ...ce.gpu!, rows: { ...ce.gpu!.rows!, subgroup: { ...sg, shader: sg.shader.replace(/in_logits/g, 'in_logit') } } } };
    const p = contractProblems(d, reflectWgsl);
    expect(p.length).toBeGreaterThan(0);
    for (const line of p) expect(line).toMatch(new RegExp(`^subgroup variant ${sg.shaderId.replace('+', '\\+')}: `));
    expect(p.join('\n')).toMatch(/in_logit matches no input/);
  });
  it('a fault in the vec4 module alone is found and named', () => {
    const vec4 = { shader: l1Op.gpu!.shader.replace('var<storage, read> in_pred', 'var<storage, read_write> in_pred'), shaderId: 'l1+vec4' };
    const p = contractProblems({ ...l1Op, gpu: { ...l1Op.gpu!, vec4 } }, reflectWgsl);
    expect(p).toEqual(['vec4 variant l1+vec4: binding in_pred must be read-only storage, is read_write']);
  });
});

describe("the fused kernels' flags", () => {
  it('fused-header.wgsl (the header of fused.wgsl, fused-vec4.wgsl and ranking.wgsl) declares the FLAG_* bits the runtime sets (src/runtime/compile/abi.ts)', async () => {
    const { FLAG } = await import('../../../src/runtime/compile/abi');
    const wgslName = (k: string) => `FLAG_${k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
    const want = Object.fromEntries(Object.entries(FLAG).map(([k, v]) => [wgslName(k), v]));
    const got = Object.fromEntries([...fusedHeaderWgsl.matchAll(/const (FLAG_\w+): u32 = (\d+)u;/g)].map((m) => [m[1], Number(m[2])]));
    expect(got).toEqual(want);
  });
  it("tal.wgsl (the header of the assigner's and the YOLO loss's modules, which cannot take fused-header.wgsl's bindings) declares the same bits for the flags it reads", async () => {
    const { FLAG } = await import('../../../src/runtime/compile/abi');
    const wgslName = (k: string) => `FLAG_${k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
    const want = Object.fromEntries(Object.entries(FLAG).map(([k, v]) => [wgslName(k), v]));
    const got = [...talWgsl.matchAll(/const (FLAG_\w+): u32 = (\d+)u;/g)].map((m) => [m[1], Number(m[2])] as const);
    expect(got.length).toBeGreaterThan(0);
    for (const [name, bit] of got) expect(bit, name).toBe(want[name]);
  });
});
