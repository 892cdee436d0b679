import commonWgsl from '../../shaders/common.wgsl?raw';
import fusedHeaderWgsl from '../../shaders/fused-header.wgsl?raw';
import fusedWgsl from '../../shaders/fused.wgsl?raw';
import { defineOp } from '../../src/ops/types';

/** The body of `x * x` and its gradient, as `element_loss` of fused.wgsl. */
export const SQUARE_BODY = '  if (want_grad) { out_grad_x[i] = g * 2.0 * in_x[i]; }\n  return in_x[i] * in_x[i];';

/**
 * An op of the tests' own, `x * x` on the CPU, whose GPU kernel's `element_loss` is `body`: a
 * wrong one (a syntax error, an undefined name) makes a custom op whose WGSL does not compile.
 * Its module is in no build-time table: enable runtime reflection to run it.
 */
export function squareOp(id: string, body = SQUARE_BODY) {
  const wgsl = `
struct Params { n: u32 }
@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_x: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_grad_x: array<f32>;
fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
${body}
}`;
  return defineOp({
    name: `test_square_${id}`,
    family: 'test',
    inputs: { x: { dtype: 'f32', shape: ['n'], grad: true } },
    params: {},
    rows: 'n',
    output: ['n'],
    cpu: (inputs) => {
      const x = inputs.x as Float64Array;
      return { loss: x.map((v) => v * v), backward: (up) => ({ x: x.map((v, k) => 2 * v * up[k]) }) };
    },
    gpu: { shader: [commonWgsl, fusedHeaderWgsl, fusedWgsl, wgsl].join('\n'), shaderId: `test_square_${id}`, entry: 'main' },
  });
}
