import { DetlossError } from '../../errors';
import type { ShaderInfo, ShaderReflector, UniformLayout } from '../public';
import { SHADER_LAYOUTS } from './layouts.generated';


const hex = (h: number) => (h >>> 0).toString(16).padStart(8, '0');

/**
 * The key of a WGSL module in the generated table: two 32-bit FNV-1a hashes (different
 * multipliers) over the exact source text, as 16 hex digits. Any edit of the source changes it.
 */
export function shaderKey(code: string): string {
  let a = 0x811c9dc5;
  let b = 0x811c9dc5;
  for (let i = 0; i < code.length; i++) {
    const c = code.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return hex(a) + hex(b);
}

/** Table hits and registered modules, by source text. */
const known = new Map<string, ShaderInfo>();
/** What the reflector returned, by source text; emptied when the reflector changes. */
const reflected = new Map<string, ShaderInfo>();
let reflector: ShaderReflector | undefined;

/**
 * Lets the runtime reflect WGSL that is not in the generated table (an op of your own) with
 * `reflect`, e.g. `reflectWgsl` from `./reflect-wgsl`; `undefined` turns that off again.
 */
export function setShaderReflector(reflect: ShaderReflector | undefined): void {
  reflector = reflect;
  reflected.clear();
}

/**
 * Gives the runtime the {@link ShaderInfo} of a WGSL module of your own, read beforehand (for
 * example with `reflectWgsl` at your build time), so that no reflector is needed at run time.
 */
export function registerShaderInfo(code: string, info: ShaderInfo): void {
  known.set(code, info);
}

/**
 * The {@link ShaderInfo} of a WGSL module (cached by source text): from the table generated at
 * build time, else from a module given to {@link registerShaderInfo}, else from the reflector set
 * with {@link setShaderReflector}. A module none of them knows is a `pipeline` error.
 */
export function reflectShader(code: string): ShaderInfo {
  const hit = known.get(code) ?? reflected.get(code);
  if (hit) return hit;
  const key = shaderKey(code);
  if (Object.hasOwn(SHADER_LAYOUTS, key)) {
    known.set(code, SHADER_LAYOUTS[key]);
    return SHADER_LAYOUTS[key];
  }
  if (!reflector) {
    throw new DetlossError(
      'pipeline',
      `WGSL module ${key} is not one of detloss's built-in shaders, whose layouts are read when the package is built. ` +
        "For an op of your own, call enableRuntimeReflection() from 'detloss/reflect' first, or registerShaderInfo(code, info); " +
        'after editing a built-in shader in the repository, run `npm run gen:layouts`',
    );
  }
  const info = reflector(code);
  reflected.set(code, info);
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
