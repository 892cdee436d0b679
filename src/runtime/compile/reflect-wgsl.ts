import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import type { BindingInfo, ShaderInfo, UniformLayout, UniformMember } from '../public';
import { setShaderReflector } from './reflect';

/**
 * Reads what the runtime needs from a WGSL module with `wgsl_reflect`. The generator of
 * `layouts.generated.ts` and the tests call it; the library itself never does, so `wgsl_reflect`
 * stays out of the runtime bundle. Throws what `wgsl_reflect` throws on WGSL it cannot parse.
 */
export function reflectWgsl(code: string): ShaderInfo {
  const r = new WgslReflect(code);
  const bindings: BindingInfo[] = [];
  const uniforms: Record<string, UniformLayout> = {};
  for (const group of r.getBindGroups()) {
    for (const v of group) {
      if (!v) continue;
      const t = v.type as unknown as { name: string; size: number; stride?: number; isArray?: boolean; format?: { name: string } };
      let kind: BindingInfo['kind'];
      if (v.resourceType === 0 /* Uniform */) kind = 'uniform';
      else if (v.access === 'read_write' || v.access === 'write') kind = 'read_write';
      else kind = 'read';
      const minBindingSize = t.isArray ? t.stride ?? 4 : t.size;
      const b: BindingInfo = { name: v.name, group: v.group, binding: v.binding, kind, minBindingSize };
      if (t.isArray && t.format?.name !== undefined) b.element = t.format.name;
      bindings.push(b);
    }
  }
  for (const u of r.uniforms) {
    const t = u.type as unknown as { size: number; members?: { name: string; offset: number; type: { name: string } }[] };
    uniforms[u.name] = {
      name: u.name,
      binding: u.binding,
      size: t.size,
      members: (t.members ?? []).map((m) => ({ name: m.name, offset: m.offset, type: m.type.name as UniformMember['type'] })),
    };
  }
  bindings.sort((a, b) => a.group - b.group || a.binding - b.binding);
  return {
    bindings,
    uniforms,
    entries: r.entry.compute.map((e) => e.name),
    overrides: r.overrides.map((o) => o.name),
  };
}

/**
 * Opt-in for ops of your own: lets `run`, `runResident`, `warmup` and the contract check reflect
 * WGSL that is not in the table generated at build time, by parsing it with `wgsl_reflect` at run
 * time. Importing this module is what brings `wgsl_reflect` (about 200 kB) into an app.
 */
export function enableRuntimeReflection(): void {
  setShaderReflector(reflectWgsl);
}
