import { DetlossError } from '../errors';
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';

/** One `@binding` of a shader, as the runtime binds it. */
export interface BindingInfo {
  name: string;
  group: number;
  binding: number;
  kind: 'uniform' | 'read' | 'read_write';
  /** Bytes of a struct, or the element stride of a runtime-sized array. */
  minBindingSize: number;
  /** Element type of an array binding (`f32`, `i32`, `vec4`...). */
  element?: string;
}

export interface UniformMember {
  name: string;
  offset: number;
  type: 'f32' | 'u32' | 'i32';
}

export interface UniformLayout {
  name: string;
  binding: number;
  size: number;
  members: UniformMember[];
}

/** What the runtime needs from a WGSL module, read with wgsl_reflect. */
export interface ShaderInfo {
  bindings: BindingInfo[];
  uniforms: Record<string, UniformLayout>;
  entries: string[];
  overrides: string[];
}

const cache = new Map<string, ShaderInfo>();

/** Reflects a WGSL module (cached by source text). */
export function reflectShader(code: string): ShaderInfo {
  const hit = cache.get(code);
  if (hit) return hit;
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
      bindings.push({ name: v.name, group: v.group, binding: v.binding, kind, minBindingSize, element: t.isArray ? t.format?.name : undefined });
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
  const info: ShaderInfo = {
    bindings,
    uniforms,
    entries: r.entry.compute.map((e) => e.name),
    overrides: r.overrides.map((o) => o.name),
  };
  cache.set(code, info);
  return info;
}

/**
 * Writes named values into a uniform struct's bytes. A member with no value is a `pipeline` error
 * (descriptor and shader disagree); a value its type cannot hold (not finite, past float32, not an
 * integer of the member's range) is `invalid_param`, never a wrapped or infinite number.
 */
export function packUniform(layout: UniformLayout, values: Record<string, number>, into: DataView, at: number, label: string): void {
  for (const m of layout.members) {
    const v = values[m.name];
    const where = `${label}: uniform ${layout.name}.${m.name}`;
    if (v === undefined) throw new DetlossError('pipeline', `${where} has no value`);
    if (m.type === 'f32') {
      if (!Number.isFinite(Math.fround(v))) throw new DetlossError('invalid_param', `${where} = ${v} is not a finite float32; a parameter is out of range`, m.name);
      into.setFloat32(at + m.offset, v, true);
    } else if (m.type === 'u32') {
      if (!Number.isInteger(v) || v < 0 || v > 2 ** 32 - 1) throw new DetlossError('too_large', `${where} = ${v} does not fit a 32-bit unsigned integer`, m.name);
      into.setUint32(at + m.offset, v, true);
    } else {
      if (!Number.isInteger(v) || v < -(2 ** 31) || v > 2 ** 31 - 1) throw new DetlossError('invalid_param', `${where} = ${v} does not fit a 32-bit signed integer`, m.name);
      into.setInt32(at + m.offset, v, true);
    }
  }
}
