import { snake } from './types';

/**
 * The tensors of an element-wise family, from which {@link elementIo} writes the WGSL that binds
 * them and defines `element_loss` (after fused.wgsl) and `element_loss4` (after fused-vec4.wgsl).
 * The family's maths file holds the rest (its `Params`, any tensor not read element for element).
 */
export interface ElementIo {
  /** The inputs read one value per output element, by op input name, bound from 6 on as `in_<name>`. */
  reads: readonly string[];
  /**
   * The gradients written, by op input name (bound as `out_grad_<name>`, in this order, right after
   * the reads or from `gradBinding`), each as a WGSL expression in `d`, the element's slope times g.
   */
  grads: Readonly<Record<string, string>>;
  /** The first gradient's binding, where the maths file binds a tensor of its own after the reads. */
  gradBinding?: number;
  /**
   * The family's call for one element, returning vec2(loss, slope): WGSL from the element's value
   * of each read (in `reads` order) and its output index (a u32 expression).
   */
  entry(values: readonly string[], index: string): string;
}

/** The two WGSL texts of an element-wise family's tensors: one element a step, and four (vec4). */
export interface ElementIoWgsl {
  scalar: string;
  vec4: string;
}

const LANES = ['x', 'y', 'z', 'w'] as const;

function bindings(io: ElementIo, element: string): string[] {
  const lines = io.reads.map((name, k) => `@group(0) @binding(${6 + k}) var<storage, read> in_${snake(name)}: array<${element}>;`);
  const first = io.gradBinding ?? 6 + io.reads.length;
  Object.keys(io.grads).forEach((name, k) => lines.push(`@group(0) @binding(${first + k}) var<storage, read_write> out_grad_${snake(name)}: array<${element}>;`));
  return lines;
}

function gradStores(io: ElementIo, at: string): string[] {
  return Object.entries(io.grads).map(([name, expr]) => `    out_grad_${snake(name)}[${at}] = ${expr};`);
}

/**
 * The WGSL of an element-wise family's tensors and its `element_loss` / `element_loss4`: loads,
 * the family's entry per element, the gradients scaled by g, the unweighted loss returned. The
 * vec4 form loads and stores four neighbouring elements as vec4 and calls the entry on each lane.
 */
export function elementIo(io: ElementIo): ElementIoWgsl {
  if (io.reads.length === 0 || Object.keys(io.grads).length === 0) throw new Error('elementIo: a family reads at least one tensor and writes at least one gradient');
  const scalar = [
    ...bindings(io, 'f32'),
    '',
    'fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {',
    `  let r = ${io.entry(io.reads.map((name) => `in_${snake(name)}[i]`), 'i')};`,
    '  if (want_grad) {',
    '    let d = g * r.y;',
    ...gradStores(io, 'i'),
    '  }',
    '  return r.x;',
    '}',
    '',
  ];
  const vec4 = [
    ...bindings(io, 'vec4<f32>'),
    '',
    'fn element_loss4(j: u32, g: vec4<f32>, want_grad: bool) -> vec4<f32> {',
    ...io.reads.map((name, k) => `  let v${k} = in_${snake(name)}[j];`),
    ...LANES.map((lane, k) => `  let r${k} = ${io.entry(io.reads.map((_, m) => `v${m}.${lane}`), k === 0 ? '4u * j' : `4u * j + ${k}u`)};`),
    '  if (want_grad) {',
    '    let d = g * vec4(r0.y, r1.y, r2.y, r3.y);',
    ...gradStores(io, 'j'),
    '  }',
    '  return vec4(r0.x, r1.x, r2.x, r3.x);',
    '}',
    '',
  ];
  return { scalar: scalar.join('\n'), vec4: vec4.join('\n') };
}
