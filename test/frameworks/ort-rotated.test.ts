// detloss/ort's and the core context's rotated-box wrappers on Node's WebGPU (Dawn): every public
// case of test/fixtures/rotated.json through the ORT class's wrapper of its variant, the free
// function rotatedIouLoss and runLoss, on gpu-buffer ort.Tensors made with onnxruntime-web's own
// Tensor class (weight, gradOutput and KFIoU's deltas in the options), and through the core
// context's wrapper on host arrays: the loss and every gradient (grad.pred, and grad.predDelta where
// the case gives deltas) equal the fixture's; each output tensor owns its buffer until disposed.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetlossContext } from '../../src/api';
import { WRAPPERS } from '../../src/catalogue';
import { compareCase, parseFixtures, type FixtureCase } from '../../src/fixtures';
import * as o from '../../src/frameworks/ort';
import { nodeContext } from '../helpers/node-gpu';

interface OrtModule {
  Tensor: { fromGpuBuffer(buffer: GPUBuffer, options: { dataType: string; dims: number[] }): o.OrtTensor };
}
const ort = createRequire(import.meta.url)('onnxruntime-web') as OrtModule;
type T = o.OrtTensor & { getData(release?: boolean): Promise<Float32Array> };

const cases = parseFixtures(readFileSync(new URL('../fixtures/rotated.json', import.meta.url), 'utf8'), 'rotated.json');
const losses = cases.filter((c) => c.op === 'rotated_iou_loss');
const matrices = cases.filter((c) => c.op === 'pairwise_probiou');
/** The tensor inputs a wrapper takes in its options. */
const OPTION_INPUTS = ['weight', 'gradOutput', 'predDelta', 'targetDelta'];

/** The wrapper that fixes `variant`, found in the catalogue (each variant has one). */
function wrapperOf(variant: string): string {
  const names = Object.entries(WRAPPERS)
    .filter(([, w]) => w.op === 'rotated_iou_loss' && 'fixed' in w && (w.fixed as { variant?: string }).variant === variant)
    .map(([k]) => k);
  expect(names, `the wrapper of variant ${variant}`).toHaveLength(1);
  return names[0];
}

let core: DetlossContext;
let dl: o.OrtDetloss;
const made: GPUBuffer[] = [];
beforeAll(async () => {
  core = await nodeContext();
  dl = await o.detlossFor(core.device);
});
afterAll(() => {
  for (const b of made) b.destroy();
  dl?.destroy();
  core?.destroy();
});

function onGpu(c: FixtureCase, k: string): T {
  const data = Float32Array.from(c.inputs[k].data);
  const buffer = core.device.createBuffer({ size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  core.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  made.push(buffer);
  return ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims: c.inputs[k].shape }) as T;
}
const host = (c: FixtureCase, k: string) => ({ data: Float32Array.from(c.inputs[k].data), shape: c.inputs[k].shape });
/** The case's tensor inputs other than pred and target, as options. */
const optionInputs = <V>(c: FixtureCase, conv: (c: FixtureCase, k: string) => V) => Object.fromEntries(OPTION_INPUTS.filter((k) => c.inputs[k]).map((k) => [k, conv(c, k)]));

type OrtResult = { loss: T; grad: Record<string, T> };
/** An ORT result read back: dims checked against the fixture, every tensor on the GPU, every one disposed. */
async function readOrt(c: FixtureCase, r: OrtResult, what: string) {
  expect(r.loss.location, what).toBe('gpu-buffer');
  expect([...r.loss.dims], `${what}: the loss's dims`).toEqual(c.expected.loss!.shape);
  expect(Object.keys(r.grad).sort(), `${what}: its gradients`).toEqual(Object.keys(c.expected.grad ?? {}).sort());
  for (const [k, g] of Object.entries(r.grad)) expect([...g.dims], `${what}: grad.${k}'s dims`).toEqual(c.inputs[k].shape);
  return {
    loss: Array.from(await r.loss.getData(true)),
    grad: Object.fromEntries(await Promise.all(Object.entries(r.grad).map(async ([k, g]) => [k, Array.from(await g.getData(true))] as const))),
  };
}

describe('rotated boxes on detloss/ort (gpu-buffer tensors) and the core context', () => {
  it.each(losses.map((c) => [c.name, c] as const))('%s: the variant\'s wrapper (ORT class, core), rotatedIouLoss (free function) and runLoss give the fixture\'s loss and gradients', async (_n, c) => {
    const { variant, ...rest } = c.params as { variant: string } & Record<string, unknown>;
    const name = wrapperOf(variant);
    const g = (k: string) => onGpu(c, k);
    const results: [string, () => Promise<{ loss: ArrayLike<number>; grad: Record<string, ArrayLike<number>> }>][] = [
      [`OrtDetloss.${name}`, async () => readOrt(c, (await (dl as unknown as Record<string, (...a: unknown[]) => Promise<OrtResult>>)[name](g('pred'), g('target'), { ...rest, ...optionInputs(c, onGpu) })), name)],
      ['rotatedIouLoss (free)', async () => readOrt(c, (await o.rotatedIouLoss(g('pred'), g('target'), { ...(c.params as object), ...optionInputs(c, onGpu), device: core.device } as never)) as unknown as OrtResult, 'rotatedIouLoss')],
      ['runLoss', async () => readOrt(c, (await o.runLoss('rotated_iou_loss', { pred: g('pred'), target: g('target') }, { ...(c.params as object), ...optionInputs(c, onGpu) } as never)) as unknown as OrtResult, 'runLoss')],
      [
        `core ${name}`,
        async () => {
          const r = await (core as unknown as Record<string, (...a: unknown[]) => Promise<{ loss: Float32Array; grad: Record<string, Float32Array> }>>)[name](host(c, 'pred'), host(c, 'target'), { ...rest, ...optionInputs(c, host) });
          expect(Object.keys(r.grad).sort(), `core ${name}: its gradients`).toEqual(Object.keys(c.expected.grad ?? {}).sort());
          return r;
        },
      ],
    ];
    for (const [what, run] of results) {
      const before = dl.context.stats().bytesInUse;
      const got = await run();
      expect(compareCase(c, got).detail ?? 'ok', what).toBe('ok');
      // Every tensor of the call was read with getData(true): its buffers are back in the pool.
      expect(dl.context.stats().bytesInUse, `${what}: bytes in use after`).toBe(before);
    }
  });

  it.each(matrices.map((c) => [c.name, c] as const))('%s: pairwiseProbiou gives the [n, m] matrix tensor alone (ORT class and free function), and the core its values', async (_n, c) => {
    const dims = [c.inputs.a.shape[0], c.inputs.b.shape[0]];
    for (const [what, call] of [
      ['OrtDetloss.pairwiseProbiou', () => dl.pairwiseProbiou(onGpu(c, 'a'), onGpu(c, 'b'))],
      ['pairwiseProbiou (free)', () => o.pairwiseProbiou(onGpu(c, 'a'), onGpu(c, 'b'), { device: core.device })],
    ] as const) {
      const m = (await call()) as T;
      expect([...m.dims], what).toEqual(dims);
      expect(m.location, what).toBe('gpu-buffer');
      expect(compareCase(c, { loss: Array.from(await m.getData(true)), grad: {} }).detail ?? 'ok', what).toBe('ok');
    }
    const r = await core.pairwiseProbiou(host(c, 'a'), host(c, 'b'));
    expect(r.shape).toEqual(dims);
    expect(compareCase(c, { loss: r.values, grad: {} }).detail ?? 'ok', 'core').toBe('ok');
  });

  it('kfiou with deltas: both gradient tensors come back, and the call\'s buffers return to the pool only when both are disposed', async () => {
    const c = losses.find((x) => x.inputs.predDelta)!;
    const { variant: _v, ...rest } = c.params as { variant: string } & Record<string, unknown>;
    const before = dl.context.stats().bytesInUse;
    const r = (await dl.kfiou(onGpu(c, 'pred'), onGpu(c, 'target'), { ...rest, ...optionInputs(c, onGpu) } as never)) as unknown as OrtResult;
    expect(Object.keys(r.grad).sort()).toEqual(['pred', 'predDelta']);
    expect([...r.grad.predDelta.dims]).toEqual(c.inputs.predDelta.shape);
    r.loss.dispose();
    r.grad.pred.dispose();
    expect(dl.context.stats().bytesInUse, 'predDelta still holds the call').toBeGreaterThan(before);
    const pd = Array.from(await r.grad.predDelta.getData(true));
    expect(pd.some((v) => v !== 0)).toBe(true);
    expect(dl.context.stats().bytesInUse).toBe(before);
  });
});
