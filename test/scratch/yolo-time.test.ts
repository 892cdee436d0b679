import { it } from 'vitest';
import { yoloInputs } from '../../bench/yolo-inputs';
import { nodeContext } from '../helpers/node-gpu';
import { yoloDetectionLossOp } from '../../src/ops/tal';

it('time', async () => {
  const dl = await nodeContext();
  const y = yoloInputs({ b: 16, size: 640, c: 80, r: 16, m: 50, real: 8, seed: 1 });
  const gpu: Record<string, { buffer: GPUBuffer; shape: number[] }> = {};
  for (const [k, t] of Object.entries(y)) {
    const buffer = dl.device.createBuffer({ size: t.data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    dl.device.queue.writeBuffer(buffer, 0, t.data.buffer as ArrayBuffer);
    gpu[k] = { buffer, shape: t.shape };
  }
  const passes = yoloDetectionLossOp.gpu!.program!.passes;
  for (let k = 1; k <= passes.length; k++) {
    const desc = { ...yoloDetectionLossOp, name: `yolo_prefix_${k}`, gpu: { ...yoloDetectionLossOp.gpu!, program: { ...yoloDetectionLossOp.gpu!.program!, passes: passes.map((p, i) => (i < k ? p : { ...p, threads: () => 0 })) } } };
    const ts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await dl.runResident(desc, gpu as never);
      await dl.device.queue.onSubmittedWorkDone();
      r.release();
      const t0 = performance.now();
      const r2 = await dl.runResident(desc, gpu as never);
      await dl.device.queue.onSubmittedWorkDone();
      ts.push(performance.now() - t0);
      r2.release();
    }
    console.log(`PASSES ${passes[k - 1].entry} cumulative ${Math.min(...ts).toFixed(0)} ms`);
  }
}, 600000);
