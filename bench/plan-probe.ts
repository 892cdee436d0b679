/**
 * The plan probe, `detloss bench --probe-plans`: times detloss's launch plans against each other on
 * one device, GPU time from timestamps, beside the copy kernel (bench/copy.wgsl) moving the bytes of
 * the same call. Used to choose the hardware plan's defaults; the runner (src/tools/bench/probe.ts)
 * calls it through the Node entry (bench/node.ts).
 */
import type { DetlossContext, DetlossOptions } from '../src/index';
import { type ProbeCase, type ProbePlan, probePlan } from '../src/tools/bench/cases';
import type { ProbeResult, ProbeRow } from '../src/tools/bench/probe';
import { copyKernel } from './copy';
import { isPairwise, makeInputs, options } from './inputs';

/** Where the probe's device comes from, and how a context with a given plan is made on it. */
export interface ProbeHost {
  open(): Promise<{ device: GPUDevice; adapter: Record<string, unknown>; runtime?: Record<string, unknown> }>;
  make(o: DetlossOptions): Promise<DetlossContext>;
  close?(): void;
}

/** What the runtime reports of a call, where it does. */
interface LastCall {
  kernel?: string;
  gpuMs?: number;
  passes?: { name: string; gpuMs: number }[];
}
interface Resident {
  lossBytes: number;
  gradBytes: Record<string, number>;
  release(): void;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** Runs warm-up calls (2) and then `reps` timed ones, keeping what `f` returns for the timed ones. */
async function timed<T>(reps: number, f: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let r = 0; r < reps + 2; r++) {
    const v = await f();
    if (r >= 2) out.push(v);
  }
  return out;
}

/** The probe's API as the runner calls it. */
export function createPlanProbe(host: ProbeHost) {
  let device: GPUDevice;
  const contexts = new Map<string, DetlossContext>();
  const ctxFor = async (plan?: ProbePlan['plan']) => {
    const key = JSON.stringify(plan ?? null);
    if (!contexts.has(key)) contexts.set(key, await host.make({ device, timestamps: true, ...(plan ? { plan: plan as DetlossOptions['plan'] } : {}) }));
    return contexts.get(key)!;
  };
  const lastCall = (dl: DetlossContext) => (dl.stats() as unknown as { lastCall?: LastCall }).lastCall ?? {};

  /** One plan on the case's inputs: resident calls, each waited for. */
  async function timePlan(name: string, c: ProbeCase, gpu: Record<string, { buffer: GPUBuffer; shape: number[] }>, reps: number, copy: { ms: number; gpu: boolean }): Promise<ProbeRow> {
    const dl = await ctxFor(probePlan(name));
    const runs = await timed(reps, async () => {
      const t0 = performance.now();
      const res = (await dl.runResident(c.op, gpu, options(c))) as unknown as Resident;
      await device.queue.onSubmittedWorkDone();
      const wallMs = performance.now() - t0;
      res.release();
      return { wallMs, last: lastCall(dl) };
    });
    const gpus = runs.map((r) => r.last.gpuMs).filter((g): g is number => typeof g === 'number');
    const passes: Record<string, number[]> = {};
    for (const r of runs) for (const ps of r.last.passes ?? []) (passes[ps.name] ??= []).push(ps.gpuMs);
    const gpuMs = gpus.length ? median(gpus) : undefined;
    const wallMs = median(runs.map((r) => r.wallMs));
    const row: ProbeRow = { plan: name, kernel: runs[runs.length - 1].last.kernel, gpuMs, wallMs, passes: Object.fromEntries(Object.entries(passes).map(([k, v]) => [k, median(v)])) };
    // Like with like: GPU times where the copy kernel has one, else wall times.
    if (!copy.gpu || gpuMs !== undefined) row.ofCopy = copy.ms / (copy.gpu ? gpuMs! : wallMs);
    return row;
  }

  return {
    async init() {
      const opened = await host.open();
      device = opened.device;
      return { adapter: opened.adapter, runtime: opened.runtime ?? {}, timestamps: device.features.has('timestamp-query') };
    },

    /** Times the case under each of its plans, and the copy kernel over the bytes of its call. */
    async probe(c: ProbeCase, reps: number): Promise<ProbeResult> {
      const gpu: Record<string, { buffer: GPUBuffer; shape: number[] }> = {};
      let read = 0;
      for (const [k, t] of Object.entries(makeInputs(c))) {
        const buffer = device.createBuffer({ size: Math.max(16, t.data.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, label: `probe:${k}` });
        device.queue.writeBuffer(buffer, 0, t.data.buffer as ArrayBuffer, t.data.byteOffset, t.data.byteLength);
        gpu[k] = { buffer, shape: t.shape };
        read += t.data.byteLength;
      }
      try {
        // What the call writes, under the adapter's own plan.
        const once = (await (await ctxFor()).runResident(c.op, gpu, options(c))) as unknown as Resident;
        const write = isPairwise(c) ? once.lossBytes : Object.values(once.gradBytes).reduce((a, b) => a + b, 0) + 4;
        once.release();
        const copy = await copyKernel(device, read, write);
        const copyRuns = await timed(reps, () => copy.run());
        copy.destroy();
        const copyGpu = copyRuns.every((t) => t.gpuMs !== undefined);
        const copyMs = median(copyRuns.map((t) => (copyGpu ? t.gpuMs! : t.ms)));
        const rows: ProbeRow[] = [];
        for (const name of c.plans) {
          try {
            rows.push(await timePlan(name, c, gpu, reps, { ms: copyMs, gpu: copyGpu }));
          } catch (e) {
            rows.push({ plan: name, error: (e as Error).message });
          }
        }
        return { read, write, copyMs, copyGpu, rows };
      } finally {
        for (const t of Object.values(gpu)) t.buffer.destroy();
        for (const dl of contexts.values()) dl.trim();
      }
    },

    close() {
      for (const dl of contexts.values()) dl.destroy();
      contexts.clear();
      host.close?.();
    },
  };
}
