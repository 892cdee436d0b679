import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDetloss, cpu, DetlossError, type DetlossContext } from '../src/index';
import { maxRelErr, rand } from './helpers/counting';
import { nodeContext } from './helpers/node-gpu';

let dl: DetlossContext;
beforeAll(async () => {
  dl = await nodeContext();
});
afterAll(() => dl?.destroy());

const pred = rand(300, 21);
const target = rand(300, 22);
const weight = rand(300, 23, 0, 1);

describe('typed wrappers equal run()', () => {
  it.each([
    ['l1', (o: object) => dl.l1(pred, target, o), {}],
    ['mse', (o: object) => dl.mse(pred, target, o), {}],
    ['smooth_l1', (o: object) => dl.smoothL1(pred, target, o), { beta: 0.11 }],
    ['huber', (o: object) => dl.huber(pred, target, o), { delta: 0.5 }],
    ['balanced_l1', (o: object) => dl.balancedL1(pred, target, o), { alpha: 0.3, gamma: 1, beta: 0.5 }],
  ] as const)('%s', async (op, wrapper, params) => {
    const options = { ...params, reduction: 'sum' as const, weight, gradOutput: Float32Array.of(2) };
    const w = await wrapper(options);
    const ref = cpu.run(op, { pred, target, weight, gradOutput: Float32Array.of(2) }, { ...params, reduction: 'sum' });
    expect(maxRelErr(w.loss, ref.loss)).toBeLessThan(1e-5);
    expect(maxRelErr(w.grad.pred, ref.grad.pred)).toBeLessThan(1e-5);
  });
});

describe('createDetloss', () => {
  it('without WebGPU throws no_webgpu saying what is missing', async () => {
    const err = await createDetloss({ gpu: undefined }).catch((e) => e);
    expect(err).toBeInstanceOf(DetlossError);
    expect(err.code).toBe('no_webgpu');
    expect(err.message).toMatch(/navigator\.gpu is missing/);
  });
  it('with no adapter throws no_webgpu', async () => {
    const gpu = { requestAdapter: async () => null } as unknown as GPU;
    const err = await createDetloss({ gpu }).catch((e) => e);
    expect(err).toMatchObject({ code: 'no_webgpu', message: expect.stringMatching(/no GPU adapter/) });
    // In Node the advice is Node's (a Vulkan driver for Dawn), not the browser's.
    expect(err.message).toMatch(/VK_ICD_FILENAMES/);
    expect(err.message).not.toMatch(/chrome:\/\/gpu/);
  });
  it('uses a given device', async () => {
    const ctx = await createDetloss({ device: dl.device });
    expect(ctx.device).toBe(dl.device);
    const r = await ctx.l1(Float32Array.of(1, -1), Float32Array.of(0, 0));
    expect(r.loss[0]).toBeCloseTo(1);
    ctx.destroy();
    await expect(ctx.l1(Float32Array.of(1), Float32Array.of(0))).rejects.toMatchObject({ code: 'destroyed' });
  });
});
