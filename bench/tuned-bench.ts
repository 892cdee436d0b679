/**
 * `detloss bench --node --tuned`: the default launch plan against tuned ones, on one device. Two
 * contexts share it: one keeps the plan chosen from the adapter, the other first runs `tune()` for
 * the cases' ops and sizes. Each case's resident calls then alternate between them (default,
 * tuned, default, tuned, ...) on the same inputs. The runner (src/tools/bench/tuned.ts) calls it
 * through the Node entry (bench/node.ts).
 */
import type { DetlossContext, DetlossOptions } from '../src/index';
import type { PlanRecord, TuneOp, TuneProgress } from '../src/runtime/public';
import type { TunedCase, TunedCaseResult, TunedSide, TuningResult } from '../src/tools/bench/tuned';
import { makeInputs, options } from './inputs';

/** Where the device comes from, how a context is made on it, and where tuning's progress goes. */
export interface TunedHost {
  open(): Promise<{ device: GPUDevice; adapter: Record<string, unknown>; runtime?: Record<string, unknown> }>;
  make(o: DetlossOptions): Promise<DetlossContext>;
  /** Tells the runner something as it happens (`'tune-progress'`, a {@link TuneProgress}). */
  emit?(event: string, data: unknown): void;
  close?(): void;
}

interface Resident {
  release(): void;
}

/** One timed call. */
interface Run {
  wallMs: number;
  gpuMs?: number;
  tunedPlan?: string;
  kernel?: string;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The medians of one side's timed runs, and which plans its calls ran (warm-up included). */
function summarise(timed: Run[], all: Run[]): TunedSide {
  const gpus = timed.map((r) => r.gpuMs).filter((g): g is number => typeof g === 'number' && Number.isFinite(g));
  const tunedPlans = [...new Set(all.map((r) => r.tunedPlan).filter((p): p is string => !!p))];
  return {
    wallMs: median(timed.map((r) => r.wallMs)),
    gpuMs: gpus.length === timed.length && gpus.length ? median(gpus) : undefined,
    timesMs: timed.map((r) => r.wallMs),
    gpuTimesMs: gpus,
    kernel: all[all.length - 1]?.kernel,
    tunedPlans,
    tunedCalls: all.filter((r) => r.tunedPlan).length,
    calls: all.length,
  };
}

/** The tuned bench's API as the runner calls it. */
export function createTunedBench(host: TunedHost) {
  let device: GPUDevice;
  let base: DetlossContext;
  let tuned: DetlossContext;

  /** One resident call, waited for: wall time, GPU time where the device measured it, the plan it ran. */
  async function once(dl: DetlossContext, c: TunedCase, gpu: Record<string, { buffer: GPUBuffer; shape: number[] }>): Promise<Run> {
    const t0 = performance.now();
    const res = (await dl.runResident(c.op, gpu, options(c))) as unknown as Resident;
    await device.queue.onSubmittedWorkDone();
    const wallMs = performance.now() - t0;
    res.release();
    // The timestamps arrive with the call's own readback; a late one gets a few turns.
    let last = dl.stats().lastCall;
    for (let i = 0; i < 4 && last && last.gpuMs === undefined && device.features.has('timestamp-query'); i++) {
      await new Promise((r) => setTimeout(r, 0));
      last = dl.stats().lastCall;
    }
    return { wallMs, gpuMs: last?.gpuMs, tunedPlan: last?.tunedPlan, kernel: last?.kernel };
  }

  return {
    async init() {
      const opened = await host.open();
      device = opened.device;
      base = await host.make({ device, timestamps: true });
      tuned = await host.make({ device, timestamps: true });
      return { adapter: opened.adapter, runtime: opened.runtime ?? {}, timestamps: device.features.has('timestamp-query') };
    },

    /** The default side's launch plan (the one chosen from the adapter). */
    plan() {
      return JSON.parse(JSON.stringify(base.plan)) as Record<string, unknown>;
    },

    /**
     * Tunes the second context for `ops` at `sizes` within `budgetMs`, after compiling the default
     * plan's pipelines (outside the budget, as an app has by the time it tunes).
     */
    async tune(ops: TuneOp[], sizes: number[], budgetMs: number): Promise<TuningResult> {
      const w0 = performance.now();
      await tuned.warmup(ops);
      const warmMs = performance.now() - w0;
      const t0 = performance.now();
      const record: PlanRecord = await tuned.tune({ ops, sizes, budgetMs, onProgress: (p: TuneProgress) => host.emit?.('tune-progress', p) });
      const ms = performance.now() - t0;
      return { ms, warmMs, record, warnings: tuned.stats().plan.warnings };
    },

    /** Times the case on both contexts, interleaved: `warmup` untimed rounds, then `reps` timed ones. */
    async measure(c: TunedCase, reps: number, warmup: number): Promise<TunedCaseResult> {
      const gpu: Record<string, { buffer: GPUBuffer; shape: number[] }> = {};
      for (const [k, t] of Object.entries(makeInputs(c))) {
        const buffer = device.createBuffer({ size: Math.max(16, t.data.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, label: `tuned:${k}` });
        device.queue.writeBuffer(buffer, 0, t.data.buffer as ArrayBuffer, t.data.byteOffset, t.data.byteLength);
        gpu[k] = { buffer, shape: t.shape };
      }
      const sides = [
        ['default', base],
        ['tuned', tuned],
      ] as const;
      const all: Record<'default' | 'tuned', Run[]> = { default: [], tuned: [] };
      try {
        for (let r = 0; r < warmup + reps; r++) for (const [name, dl] of sides) all[name].push(await once(dl, c, gpu));
        const side = (name: 'default' | 'tuned') => summarise(all[name].slice(warmup), all[name]);
        return { default: side('default'), tuned: side('tuned') };
      } finally {
        for (const t of Object.values(gpu)) t.buffer.destroy();
        base.trim();
        tuned.trim();
      }
    },

    close() {
      base?.destroy();
      tuned?.destroy();
      host.close?.();
    },
  };
}
