// A GPU failure that arrives after a call has done its JavaScript work (a pipeline that fails to
// compile, work the device refuses, an allocation it cannot make) is a DetlossError on every
// surface of the core, and never numbers: `run` and `runResident` reject, the synchronous path
// (runResidentSync, under the framework adapters) rejects its `settled`, and the ranking program
// does the same. Each fault is planted once (test/helpers/plant.ts) in a fresh context; the call
// after it must work and equal the CPU reference. The TF.js and ORT adapters have their own files.
import { afterAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import { runResidentSync } from '../../helpers/sync';
import { maxRelErr, rand } from '../../helpers/counting';
import { nodeContext } from '../../helpers/node-gpu';
import { cannotAllocate, plant, type Fault } from '../../helpers/plant';

type Ctx = Awaited<ReturnType<typeof nodeContext>>;
const made: Ctx[] = [];
afterAll(() => made.forEach((c) => c.destroy()));
const fresh = async () => {
  const c = await nodeContext();
  made.push(c);
  return c;
};

const CODE: Record<Fault, DetlossError['code']> = { pipeline: 'pipeline', validation: 'gpu_validation', oom: 'gpu_out_of_memory' };

/** The calls of each surface: an element-wise op and a program op (the ranking losses). */
const n = 64;
const pred = rand(n, 1);
const target = rand(n, 2);
const logits = rand(n, 3);
const targets = Float32Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 1 : i % 7 === 0 ? -1 : 0));
const CALLS = {
  smooth_l1: { op: 'smooth_l1', inputs: { pred, target }, options: { reduction: 'sum' } },
  ap_loss: { op: 'ap_loss', inputs: { logits, targets }, options: {} },
} as const;
type Which = keyof typeof CALLS;

function gpuInputs(dl: Ctx, inputs: Record<string, Float32Array>) {
  const out: Record<string, { buffer: GPUBuffer; shape: number[] }> = {};
  for (const [k, v] of Object.entries(inputs)) {
    const buffer = dl.device.createBuffer({ size: v.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    dl.device.queue.writeBuffer(buffer, 0, v.buffer as ArrayBuffer, v.byteOffset, v.byteLength);
    out[k] = { buffer, shape: [v.length] };
  }
  return out;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => ({ resolvedWith: v }),
    (e: unknown) => e,
  );
}

/** A good call after the fault: the same context still computes the CPU reference's numbers. */
async function worksAfter(dl: Ctx, which: Which) {
  const c = CALLS[which];
  const r = await dl.run(c.op as string, c.inputs, c.options);
  const ref = cpu.run(c.op as string, c.inputs, c.options);
  expect(maxRelErr(r.loss, ref.loss)).toBeLessThan(1e-5);
}

/** Plants `fault` in a fresh context; where the device can make any buffer, 'oom' plants nothing (returns undefined). */
async function armed(fault: Fault): Promise<{ dl: Ctx; fired: () => boolean } | undefined> {
  const dl = await fresh();
  let bytes = 0;
  if (fault === 'oom') {
    bytes = dl.limits.maxBufferSize;
    const oom = await cannotAllocate(dl.device, bytes);
    // SwiftShader (this project's CI) cannot make a buffer of maxBufferSize: the fault is planted there.
    if (dl.adapter.isFallbackAdapter) expect(oom, 'the software adapter makes a maxBufferSize buffer: no way to plant an out-of-memory fault').toBe(true);
    if (!oom) return undefined;
  }
  return { dl, ...plant(dl.device, fault, bytes) };
}

describe.each(['pipeline', 'validation', 'oom'] as Fault[])('a planted %s fault', (fault) => {
  describe.each(Object.keys(CALLS) as Which[])('%s', (which) => {
    const c = CALLS[which];
    it('run rejects with the DetlossError, and the next call works', async () => {
      const a = await armed(fault);
      if (!a) return;
      const e = await rejection(a.dl.run(c.op as string, c.inputs, c.options));
      expect(a.fired()).toBe(true);
      expect(e instanceof DetlossError, String(JSON.stringify(e))).toBe(true);
      expect((e as DetlossError).code).toBe(CODE[fault]);
      await worksAfter(a.dl, which);
    });
    it('runResident rejects with the DetlossError (no buffers handed over), and the next call works', async () => {
      const a = await armed(fault);
      if (!a) return;
      const before = a.dl.stats().bytesInUse;
      const e = await rejection(a.dl.runResident(c.op as string, gpuInputs(a.dl, c.inputs), c.options));
      expect(a.fired()).toBe(true);
      expect(e instanceof DetlossError, String(JSON.stringify(e))).toBe(true);
      expect((e as DetlossError).code).toBe(CODE[fault]);
      expect(a.dl.stats().bytesInUse).toBe(before);
      await worksAfter(a.dl, which);
    });
    it('the synchronous path returns at once and rejects its settled with the DetlossError', async () => {
      const a = await armed(fault);
      if (!a) return;
      const r = runResidentSync(a.dl, c.op, gpuInputs(a.dl, c.inputs), c.options);
      expect(a.fired()).toBe(true);
      const e = await rejection(r.settled);
      r.release();
      expect(e instanceof DetlossError, String(JSON.stringify(e))).toBe(true);
      expect((e as DetlossError).code).toBe(CODE[fault]);
    });
  });
});
