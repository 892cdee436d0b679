import { afterAll, afterEach, describe, expect, it } from 'vitest';
import commonWgsl from '../../../shaders/common.wgsl?raw';
import fusedHeaderWgsl from '../../../shaders/fused-header.wgsl?raw';
import fusedWgsl from '../../../shaders/fused.wgsl?raw';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import { defineOp, type OpDescriptor } from '../../../src/ops/types';
import { registerShaderInfo, setShaderReflector } from '../../../src/runtime/compile/reflect';
import { enableRuntimeReflection, reflectWgsl } from '../../../src/runtime/compile/reflect-wgsl';
import type { DetlossContext } from '../../../src/api';
import { maxRelErr, rand } from '../../helpers/counting';
import { nodeContext } from '../../helpers/node-gpu';

// An op of your own: its WGSL is in no build-time table, so the runtime needs the opt-in
// (a reflector, or the module's ShaderInfo given beforehand).
const cube = (id: string): OpDescriptor =>
  defineOp({
    name: `test_cube_${id}`,
    family: 'test',
    inputs: { x: { dtype: 'f32', shape: ['n'], grad: true } },
    params: {},
    rows: 'n',
    output: ['n'],
    cpu: (inputs) => {
      const x = inputs.x as Float64Array;
      return { loss: x.map((v) => v * v * v), backward: (up) => ({ x: x.map((v, k) => 3 * v * v * up[k]) }) };
    },
    gpu: {
      shader: [
        commonWgsl,
        fusedHeaderWgsl,
        fusedWgsl,
        `// ${id}
@group(0) @binding(6) var<storage, read> in_x: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_grad_x: array<f32>;
fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let v = in_x[i];
  if (want_grad) { out_grad_x[i] = g * 3.0 * v * v; }
  return v * v * v;
}`,
      ].join('\n'),
      shaderId: `test_cube_${id}`,
      entry: 'main',
    },
  });

const contexts: DetlossContext[] = [];
afterAll(() => contexts.forEach((c) => c.destroy()));
afterEach(() => setShaderReflector(undefined));

async function expectRuns(dl: DetlossContext, op: OpDescriptor, n: number) {
  const x = { data: rand(n, n, -2, 2), shape: [n] };
  for (const reduction of ['none', 'mean', 'sum'] as const) {
    const ref = cpu.run(op, { x }, { reduction });
    const got = await dl.run(op, { x }, { reduction });
    expect(maxRelErr(got.loss, ref.loss), reduction).toBeLessThan(1e-5);
    expect(maxRelErr(got.grad.x, ref.grad.x), reduction).toBeLessThan(1e-5);
  }
}

describe('an op of your own, with reflection at build time', () => {
  it('without the opt-in: a pipeline error that says what to do; the built-in ops run on', async () => {
    const dl = await nodeContext();
    contexts.push(dl);
    const op = cube('none');
    for (const method of ['run', 'runResident'] as const) {
      const call = method === 'run' ? dl.run(op, { x: rand(3, 1) }) : dl.runResident(op, { x: rand(3, 1) });
      const e = await call.then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(DetlossError);
      expect((e as DetlossError).code).toBe('pipeline');
      expect((e as Error).message).toMatch(/enableRuntimeReflection/);
    }
    const pred = rand(7, 2);
    const target = rand(7, 3);
    expect(maxRelErr((await dl.run('l1', { pred, target })).loss, cpu.run('l1', { pred, target }).loss)).toBeLessThan(1e-6);
  });
  it.each([1, 257])('enableRuntimeReflection(): runs and equals the CPU reference (n=%i)', async (n) => {
    enableRuntimeReflection();
    const dl = await nodeContext();
    contexts.push(dl);
    await expectRuns(dl, cube(`reflected_${n}`), n);
  });
  it.each([1, 257])('registerShaderInfo(): runs with no reflector at all (n=%i)', async (n) => {
    const op = cube(`registered_${n}`);
    registerShaderInfo(op.gpu!.shader, reflectWgsl(op.gpu!.shader));
    const dl = await nodeContext();
    contexts.push(dl);
    await expectRuns(dl, op, n);
  });
});
