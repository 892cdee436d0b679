import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { talInputs, yoloInputs } from '../../../bench/yolo-inputs';
import { cpu } from '../../../src/cpu';
import { talAssignOp, yoloDetectionLossOp } from '../../../src/ops/tal';
import { kernelVariants } from '../../../src/runtime/compile/contract';
import { reflectShader } from '../../../src/runtime/compile/reflect';
import { caseInputs, caseOptions, compareCase, parseFixtures } from '../../../src/fixtures';
import { nodeContext } from '../../helpers/node-gpu';

// tal_assign and yolo_detection_loss on Node's WebGPU (Dawn) against the fixtures: the integer
// outputs exactly, the floats within tolerance; each case as one call, and again under the
// hardware launch plan.
const cases = parseFixtures(readFileSync(new URL('../../fixtures/tal.json', import.meta.url), 'utf8'), 'tal.json');

describe('tal_assign and yolo_detection_loss on the GPU', () => {
  let dl: Awaited<ReturnType<typeof nodeContext>>;
  beforeAll(async () => {
    dl = await nodeContext();
  });
  afterAll(() => dl?.destroy());
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const r = await dl.run(c.op, caseInputs(c), caseOptions(c));
    const cmp = compareCase(c, r);
    expect(cmp.detail ?? 'ok').toBe('ok');
    expect(cmp.mismatches ?? 0).toBe(0);
    expect(r.shape).toEqual(c.expected.loss?.shape ?? [0]);
    for (const [name, want] of Object.entries(c.expected.outputs ?? {})) {
      expect(r.outputShapes?.[name], name).toEqual(want.shape);
      expect(r.outputs?.[name], name).toBeInstanceOf(want.dtype === 'i32' ? Int32Array : Float32Array);
    }
  });
});

describe('tal_assign and yolo_detection_loss: plans, paths, sizes', () => {
  it('every case passes under the hardware launch plan too', async () => {
    const dl = await nodeContext({ plan: 'hardware' });
    const bad: string[] = [];
    for (const c of cases) {
      const cmp = compareCase(c, await dl.run(c.op, caseInputs(c), caseOptions(c)));
      if (!cmp.pass) bad.push(`${c.name}: ${cmp.detail}`);
    }
    dl.destroy();
    expect(bad).toEqual([]);
  });

  it('the same inputs give the same bits, call after call (every output, loss and gradient)', async () => {
    const dl = await nodeContext();
    const y = yoloInputs({ b: 2, size: 128, c: 5, r: 8, m: 6, real: 4, seed: 7 });
    const bits = async (op: string, inputs: object) => {
      const r = await dl.run(op, inputs as never);
      const all = [r.loss, ...Object.values(r.grad), ...Object.values(r.outputs ?? {})];
      return all.map((a) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length)));
    };
    for (const [op, inputs] of [['yolo_detection_loss', y], ['tal_assign', talInputs(y)]] as const) {
      const first = await bits(op, inputs);
      for (let k = 0; k < 3; k++) expect(await bits(op, inputs)).toEqual(first);
    }
    dl.destroy();
  });

  it('runResident hands every output over as a buffer (i32 and f32, with shapes), equal to run', async () => {
    const dl = await nodeContext();
    const c = cases.find((x) => x.op === 'tal_assign' && x.name.includes('crowded'))!;
    const ran = await dl.run(c.op, caseInputs(c), caseOptions(c));
    const r = await dl.runResident(c.op, caseInputs(c), caseOptions(c));
    expect(Object.keys(r.outputs!).sort()).toEqual(Object.keys(c.expected.outputs!).sort());
    for (const [k, buffer] of Object.entries(r.outputs!)) {
      expect(r.outputShapes![k]).toEqual(c.expected.outputs![k].shape);
      expect(r.outputDtypes![k]).toBe(c.expected.outputs![k].dtype);
      const words = await readWords(dl, buffer, r.outputBytes![k]);
      const want = ran.outputs![k];
      expect(Array.from(r.outputDtypes![k] === 'i32' ? new Int32Array(words.buffer) : new Float32Array(words.buffer)), k).toEqual(Array.from(want));
    }
    expect(r.lossBytes).toBe(0);
    r.release();
    dl.destroy();
  });

  it('one-element launches: one image, one anchor, one gt, one class', async () => {
    const dl = await nodeContext();
    const inputs = {
      scores: { data: Float32Array.of(0.8), shape: [1, 1, 1] },
      predBoxes: { data: Float32Array.of(2, 2, 10, 10), shape: [1, 1, 4] },
      anchors: { data: Float32Array.of(6, 6), shape: [1, 2] },
      gtLabels: { data: Int32Array.of(0), shape: [1, 1] },
      gtBoxes: { data: Float32Array.of(1, 1, 12, 12), shape: [1, 1, 4] },
      gtMask: { data: Int32Array.of(1), shape: [1, 1] },
    };
    const got = await dl.run('tal_assign', inputs, { topk: 1 });
    const want = cpu.run('tal_assign', inputs, { topk: 1 });
    expect(Array.from(got.outputs!.foreground)).toEqual([1]);
    for (const k of Object.keys(want.outputs!)) {
      const w = Array.from(want.outputs![k]);
      Array.from(got.outputs![k]).forEach((v, i) => expect(Math.abs(v - w[i]), k).toBeLessThanOrEqual(1e-6 + 1e-4 * Math.abs(w[i])));
    }
    const y = {
      predDist: { data: Float32Array.of(0.1, 0.5, 0.2, 0.3, -0.2, 0.7, 0.4, 0.1), shape: [1, 1, 8] },
      predScores: { data: Float32Array.of(0.3), shape: [1, 1, 1] },
      anchors: { data: Float32Array.of(0.5, 0.5), shape: [1, 2] },
      strides: { data: Float32Array.of(8), shape: [1] },
      gtLabels: inputs.gtLabels,
      gtBoxes: { data: Float32Array.of(0.5, 1, 7, 7.5), shape: [1, 1, 4] },
      gtMask: inputs.gtMask,
    };
    const gy = await dl.run('yolo_detection_loss', y, { topk: 1 });
    const wy = cpu.run('yolo_detection_loss', y, { topk: 1 });
    expect(Math.abs(gy.loss[0] - wy.loss[0])).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(wy.loss[0]));
    for (const k of ['predDist', 'predScores']) {
      Array.from(gy.grad[k]).forEach((v, i) => expect(Math.abs(v - wy.grad[k][i]), `${k}[${i}]`).toBeLessThanOrEqual(1e-6 + 1e-3 * Math.abs(wy.grad[k][i])));
    }
    dl.destroy();
  });

  it("YOLOv8n's head at B = 2 (640 x 640: A = 8400, C = 80, R = 16, M = 50, 8 real boxes): equal to the CPU reference", async () => {
    // Seeded inputs checked free of decisions within float32 rounding of a tie (the rule the fuzzer
    // states): every integer output must match exactly.
    const dl = await nodeContext();
    const y = yoloInputs({ b: 2, size: 640, c: 80, r: 16, m: 50, real: 8, seed: 3 });
    const got = await dl.run('yolo_detection_loss', y);
    const want = cpu.run('yolo_detection_loss', y);
    expect(Math.abs(got.loss[0] - want.loss[0])).toBeLessThanOrEqual(1e-4 * Math.abs(want.loss[0]));
    for (let k = 0; k < 3; k++) expect(Math.abs(got.outputs!.components[k] - want.outputs!.components[k])).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(want.outputs!.components[k]));
    for (const k of ['predDist', 'predScores']) expect(relL2(got.grad[k], want.grad[k]), k).toBeLessThan(1e-4);
    const t = talInputs(y);
    const ga = await dl.run('tal_assign', t);
    const wa = cpu.run('tal_assign', t);
    for (const k of ['labels', 'foreground', 'gtIndex']) expect(Array.from(ga.outputs![k]), k).toEqual(Array.from(wa.outputs![k]));
    expect(Array.from(ga.outputs!.foreground).reduce((s, v) => s + v, 0)).toBeGreaterThan(50);
    expect(relL2(ga.outputs!.targetScores, wa.outputs!.targetScores)).toBeLessThan(1e-4);
    dl.destroy();
  });
});

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-30);
}

/** A buffer's words, copied back through a staging buffer of our own. */
async function readWords(dl: { device: GPUDevice }, buffer: GPUBuffer, bytes: number): Promise<Uint32Array> {
  const staging = dl.device.createBuffer({ size: Math.max(4, bytes), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = dl.device.createCommandEncoder();
  enc.copyBufferToBuffer(buffer, 0, staging, 0, bytes);
  dl.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Uint32Array(staging.getMappedRange().slice(0));
  staging.destroy();
  return out;
}

describe('the pass modules fit a device with the default limits', () => {
  it("every module of both ops binds at most 8 storage buffers (WebGPU's default maxStorageBuffersPerShaderStage, TF.js's device)", () => {
    for (const op of [talAssignOp, yoloDetectionLossOp]) {
      const variants = kernelVariants(op.gpu!);
      expect(variants.length, op.name).toBeGreaterThan(3);
      for (const v of variants) {
        const storage = reflectShader(v.shader).bindings.filter((b) => b.kind !== 'uniform').length;
        expect(storage, `${op.name} ${v.shaderId}`).toBeLessThanOrEqual(8);
      }
    }
  });
});
