import { afterAll, describe, expect, it } from 'vitest';
import commonWgsl from '../../../shaders/common.wgsl?raw';
import fusedHeaderWgsl from '../../../shaders/fused-header.wgsl?raw';
import fusedWgsl from '../../../shaders/fused.wgsl?raw';
import rowsWgsl from '../../../shaders/rows.wgsl?raw';
import { cpu } from '../../../src/cpu';
import { defineOp, type OpDescriptor } from '../../../src/ops/types';
import { contractProblems } from '../../../src/runtime/compile/contract';
import type { DetlossContext } from '../../../src/api';
import { countDevice, maxRelErr, rand, reset } from '../../helpers/counting';
import { nodeContext } from '../../helpers/node-gpu';
import { enableRuntimeReflection } from '../../../src/runtime/compile/reflect-wgsl';

// These tests define ops of their own, whose WGSL is not in the generated layout table.
enableRuntimeReflection();

// A row op defined in the test, with both kernels: log-sum-exp of each row of x [n, c]
// (a softmax's normaliser), gradient softmax(x). The thread-per-row kernel walks the row in one
// thread; the workgroup-per-row kernel splits it over the lanes and reduces with wg_max/wg_sum.
const ROW_LSE_WGSL = `
struct Params { c: u32 }
@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_x: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_grad_x: array<f32>;

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  var m = -3.0e38;
  for (var j = 0u; j < c; j++) { m = max(m, in_x[i * c + j]); }
  var s = 0.0;
  for (var j = 0u; j < c; j++) { s += exp(in_x[i * c + j] - m); }
  if (want_grad) {
    for (var j = 0u; j < c; j++) { out_grad_x[i * c + j] = g * exp(in_x[i * c + j] - m) / s; }
  }
  return m + log(s);
}

fn row_loss_wg(row: u32, lane: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  var m = -3.0e38;
  for (var j = lane; j < c; j += WG) { m = max(m, in_x[row * c + j]); }
  m = wg_max(m, lane);
  var s = 0.0;
  for (var j = lane; j < c; j += WG) { s += exp(in_x[row * c + j] - m); }
  s = wg_sum(s, lane);
  if (want_grad) {
    for (var j = lane; j < c; j += WG) { out_grad_x[row * c + j] = g * exp(in_x[row * c + j] - m) / s; }
  }
  return m + log(s);
}
`;

const rowLse: OpDescriptor = defineOp({
  name: 'test_row_lse',
  family: 'test',
  inputs: { x: { dtype: 'f32', shape: ['n', 'c'], grad: true } },
  params: {},
  rows: 'n',
  output: ['n'],
  cpu: (inputs, _p, dims) => {
    const x = inputs.x as Float64Array;
    const { n, c } = dims;
    const loss = new Float64Array(n);
    const soft = new Float64Array(n * c);
    for (let i = 0; i < n; i++) {
      let m = -Infinity;
      for (let j = 0; j < c; j++) m = Math.max(m, x[i * c + j]);
      let s = 0;
      for (let j = 0; j < c; j++) s += Math.exp(x[i * c + j] - m);
      loss[i] = m + Math.log(s);
      for (let j = 0; j < c; j++) soft[i * c + j] = Math.exp(x[i * c + j] - m) / s;
    }
    return { loss, backward: (up) => ({ x: soft.map((v, k) => v * up[Math.floor(k / c)]) }) };
  },
  gpu: {
    shader: [commonWgsl, fusedHeaderWgsl, fusedWgsl, rowsWgsl, ROW_LSE_WGSL].join('\n'),
    shaderId: 'test_row_lse',
    entry: 'main',
    rows: { entry: 'main_rows', length: (dims) => dims.c },
  },
});

const contexts: DetlossContext[] = [];
afterAll(() => contexts.forEach((c) => c.destroy()));

describe('row ops: a thread per row, or a workgroup per row (rows.wgsl)', () => {
  it('the test op satisfies the reflection contract', () => {
    expect(contractProblems(rowLse)).toEqual([]);
  });
  it.each([
    [3, 1],
    [50, 7],
    [20, 64],
    [9, 1000],
  ])('n=%i, c=%i: both kernels equal the CPU reference for every reduction', async (n, c) => {
    const byThread = await nodeContext({ rowThreshold: Infinity });
    const byGroup = await nodeContext({ rowThreshold: 0 });
    contexts.push(byThread, byGroup);
    const x = { data: rand(n * c, n + c, -30, 30), shape: [n, c] };
    const weight = rand(n, 3, 0, 2);
    for (const reduction of ['none', 'mean', 'sum'] as const) {
      const ref = cpu.run(rowLse, { x, weight }, { reduction });
      for (const dl of [byThread, byGroup]) {
        const r = await dl.run(rowLse, { x, weight }, { reduction });
        expect(maxRelErr(r.loss, ref.loss), `${reduction}`).toBeLessThan(1e-5);
        expect(maxRelErr(r.grad.x, ref.grad.x), `${reduction}`).toBeLessThan(1e-5);
      }
    }
  });
  it('the threshold picks the kernel by row length', async () => {
    const dl = await nodeContext({ rowThreshold: 100 });
    contexts.push(dl);
    const counts = countDevice(dl.device);
    await dl.run(rowLse, { x: { data: rand(40, 1), shape: [4, 10] } });
    await dl.run(rowLse, { x: { data: rand(4000, 1), shape: [4, 1000] } });
    expect(dl.stats().pipelinesCompiled).toBe(3); // main, main_rows, the reduction
    reset(counts);
    await dl.run(rowLse, { x: { data: rand(40, 2), shape: [4, 10] } });
    expect(dl.stats().pipelinesCompiled).toBe(3);
  });
});
