import { snake, type GpuKernel, type OpDescriptor, type ResolvedParams } from '../../ops/types';
import type { ShaderInfo, ShaderReflector } from '../public';
import { reflectShader } from './reflect';

/** The `Run` uniform of fused.wgsl, as the runtime packs it. */
export const RUN_MEMBERS = [
  ['n', 0, 'u32'],
  ['threads', 4, 'u32'],
  ['flags', 8, 'u32'],
  ['scale', 12, 'f32'],
] as const;

const SHARED_BINDINGS: Record<string, 'uniform' | 'read' | 'read_write'> = {
  run: 'uniform',
  params: 'uniform',
  in_weight: 'read',
  in_grad_output: 'read',
  out_loss: 'read_write',
  partials: 'read_write',
};

/** One WGSL module a kernel may be compiled from, and the entry points the runtime needs in it. */
export interface KernelVariant {
  /** `'main'` for `gk.shader`, else the field it comes from (`'subgroup'`, `'vec4'`). */
  variant: string;
  shader: string;
  shaderId: string;
  entries: string[];
}

/**
 * Every WGSL module of a kernel: the main one, the subgroup-per-row one and the vec4 one where the
 * op has them. The contract check and the layout generator walk this list; a new variant of
 * `GpuKernel` belongs here.
 */
export function kernelVariants(gk: GpuKernel): KernelVariant[] {
  const passes = [...(gk.program?.passes ?? []), ...(gk.program?.software?.passes ?? [])];
  const own = passes.filter((p) => p.module);
  const inMain = passes.filter((p) => !p.module || p.module.shaderId === gk.shaderId);
  const all = [...new Set([gk.entry, ...(gk.rows ? [gk.rows.entry] : []), ...(gk.denominator ? [gk.denominator] : []), ...inMain.map((p) => p.entry), ...(gk.aux ? [gk.aux.entry] : [])])];
  const out: KernelVariant[] = [{ variant: 'main', shader: gk.shader, shaderId: gk.shaderId, entries: all }];
  // A program's pass modules, one variant each (the main module's own passes are checked above).
  for (const p of own) {
    if (p.module!.shaderId === gk.shaderId) continue;
    const v = out.find((x) => x.shaderId === p.module!.shaderId);
    if (v) v.entries.includes(p.entry) || v.entries.push(p.entry);
    else out.push({ variant: `pass ${p.module!.shaderId}`, shader: p.module!.shader, shaderId: p.module!.shaderId, entries: [p.entry] });
  }
  const sg = gk.rows?.subgroup;
  if (sg) out.push({ variant: 'subgroup', shader: sg.shader, shaderId: sg.shaderId, entries: all });
  if (gk.vec4) out.push({ variant: 'vec4', shader: gk.vec4.shader, shaderId: gk.vec4.shaderId, entries: [gk.entry] });
  if (gk.narrow) out.push({ variant: 'narrow', shader: gk.narrow.shader, shaderId: gk.narrow.shaderId, entries: [gk.entry] });
  return out;
}

/**
 * Checks an op descriptor against its shaders: the entry points, override constants, every
 * binding's name and access, the element type of every input, and the `Params` uniform (every
 * member has a value, and every value has a member). Every module of {@link kernelVariants} is
 * read with `source` (default: the build-time table through `reflectShader`); given a
 * `ShaderInfo`, only the main module is checked, against it. Returns the problems found.
 */
export function contractProblems(op: OpDescriptor, source: ShaderInfo | ShaderReflector = reflectShader): string[] {
  if (!op.gpu) return [];
  const gk = op.gpu;
  // An op whose passes run modules of their own: each module binds a part, all of them the whole.
  const split = gk.program?.passes.some((p) => p.module) ?? false;
  if (typeof source !== 'function') return shaderProblems(op, source, kernelVariants(gk)[0].entries, split);
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const v of kernelVariants(gk)) {
    const info = source(v.shader);
    for (const b of info.bindings) seen.add(b.name);
    const found = shaderProblems(op, info, v.entries, split, v.variant === 'narrow' ? gk.narrow!.without : []);
    problems.push(...(v.variant === 'main' ? found : found.map((p) => `${v.variant} variant ${v.shaderId}: ${p}`)));
  }
  if (split) problems.push(...coverageProblems(op, seen));
  return problems;
}

/** Inputs, gradients and outputs of `op` that no binding in `seen` carries (`without`: inputs a narrow module leaves out). */
function coverageProblems(op: OpDescriptor, seen: ReadonlySet<string>, without: readonly string[] = []): string[] {
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(op.inputs)) {
    if (without.includes(name)) {
      if (!spec.optional) problems.push(`narrow module leaves out ${name}, which is not optional`);
      continue;
    }
    if (!seen.has(`in_${snake(name)}`)) problems.push(`input ${name} has no binding in_${snake(name)}`);
    if (spec.grad && !seen.has(`out_grad_${snake(name)}`)) problems.push(`gradient of ${name} has no binding out_grad_${snake(name)}`);
  }
  for (const name of Object.keys(op.outputs ?? {})) if (!seen.has(`out_${snake(name)}`)) problems.push(`output ${name} has no binding out_${snake(name)}`);
  return problems;
}

function shaderProblems(op: OpDescriptor, info: ShaderInfo, entries: string[], partial = false, without: readonly string[] = []): string[] {
  const gk = op.gpu!;
  const problems: string[] = [];
  for (const entry of entries) {
    if (!info.entries.includes(entry)) problems.push(`entry point ${entry} not in shader (has ${info.entries.join(', ')})`);
  }
  // The params as a call resolves them: defaults, and a required number at the bottom of its range.
  const defaults: ResolvedParams = Object.fromEntries(
    Object.entries(op.params).flatMap(([k, s]) => (s.default !== undefined ? [[k, s.default]] : 'required' in s && s.required ? [[k, s.kind === 'number' ? (s.min ?? 0) : 0]] : [])),
  );
  const dims: Record<string, number> = {};
  for (const spec of Object.values(op.inputs)) for (const d of spec.shape) if (typeof d === 'string') dims[d] = 1;
  for (const d of op.output) if (typeof d === 'string') dims[d] = 1;
  for (const name of Object.keys(gk.overrides?.(defaults, dims) ?? {})) {
    if (!info.overrides.includes(name)) problems.push(`override ${name} is not declared in the shader`);
  }
  if (!info.overrides.includes('WG')) problems.push('override WG (workgroup size) is not declared in the shader');

  const seen = new Set<string>();
  for (const b of info.bindings) {
    seen.add(b.name);
    if (b.group !== 0) problems.push(`binding ${b.name} is in group ${b.group}; the runtime binds group 0 only`);
    const shared = SHARED_BINDINGS[b.name];
    if (shared) {
      if (b.kind !== shared) problems.push(`binding ${b.name} must be ${shared}, is ${b.kind}`);
      continue;
    }
    const outName = /^out_(?!grad_)(.+)$/.exec(b.name);
    if (outName) {
      const output = Object.keys(op.outputs ?? {}).find((k) => snake(k) === outName[1]);
      if (!output) problems.push(`binding ${b.name} matches no output of the op (outputs: ${Object.keys(op.outputs ?? {}).join(', ') || 'none'})`);
      else {
        if (b.kind !== 'read_write') problems.push(`binding ${b.name} must be read_write storage, is ${b.kind}`);
        if ((op.outputs![output].dtype === 'i32') !== (b.element === 'i32')) problems.push(`binding ${b.name} holds ${b.element} but output ${output} is ${op.outputs![output].dtype}`);
      }
      continue;
    }
    const m = /^(in|out_grad)_(.+)$/.exec(b.name);
    const input = m && Object.keys(op.inputs).find((k) => snake(k) === m[2]);
    if (!m || !input) {
      problems.push(`binding ${b.name} matches no input of the op (inputs: ${Object.keys(op.inputs).join(', ')})`);
      continue;
    }
    const spec = op.inputs[input];
    if (m[1] === 'in') {
      if (b.kind !== 'read') problems.push(`binding ${b.name} must be read-only storage, is ${b.kind}`);
      const elemI32 = b.element === 'i32';
      if ((spec.dtype === 'i32') !== elemI32) problems.push(`binding ${b.name} holds ${b.element} but input ${input} is ${spec.dtype}`);
    } else {
      if (b.kind !== 'read_write') problems.push(`binding ${b.name} must be read_write storage, is ${b.kind}`);
      if (!spec.grad) problems.push(`binding ${b.name} writes a gradient but input ${input} takes none`);
    }
  }
  if (!partial) {
    problems.push(...coverageProblems(op, seen, without));
    for (const name of ['run', 'in_weight', 'in_grad_output', 'out_loss', 'partials']) {
      if (!seen.has(name)) problems.push(`shared binding ${name} is missing (concatenate fused-header.wgsl)`);
    }
  } else if (!seen.has('run')) problems.push('binding run is missing (every module of a program binds it)');

  const run = info.uniforms.run;
  if (run) {
    const got = run.members.map((m) => `${m.name}@${m.offset}:${m.type}`).join(',');
    const want = RUN_MEMBERS.map(([n, o, t]) => `${n}@${o}:${t}`).join(',');
    if (got !== want) problems.push(`uniform Run is ${got}, the runtime packs ${want}`);
  }
  const params = info.uniforms.params;
  const values: Record<string, number> = { ...dims, ...(gk.uniforms?.(defaults, dims) ?? {}) };
  for (const name of Object.keys(op.inputs)) values[`has_${snake(name)}`] = 1;
  if (params) {
    if (params.size > 256) problems.push(`uniform Params is ${params.size} bytes; a slot holds 256`);
    for (const m of params.members) if (values[m.name] === undefined) problems.push(`Params.${m.name} gets no value from uniforms() or the dims`);
    for (const k of Object.keys(gk.uniforms?.(defaults, dims) ?? {})) {
      if (!params.members.some((m) => m.name === k)) problems.push(`uniforms() returns ${k}, which Params does not have`);
    }
  } else if (Object.keys(gk.uniforms?.(defaults, dims) ?? {}).length) {
    problems.push('uniforms() returns values but the shader has no `params` uniform');
  }
  return problems;
}
