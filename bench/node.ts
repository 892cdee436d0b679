/**
 * The benchmark's Node entry: the shared harness (bench/harness.ts) on Node's WebGPU, with no
 * browser. Built by `npm run build:bench` into bench/dist-node/node.js (TF.js bundled, `webgpu`
 * left external); the runner (src/tools/bench/, `detloss bench --node`) imports it in-process. The
 * plan probe (bench/plan-probe.ts, `detloss bench --probe-plans`) and the tuned bench
 * (bench/tuned-bench.ts, `detloss bench --node --tuned`) run from it too.
 */
import { gpu } from './node-globals';
import { createRequire } from 'node:module';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgpu';
import { createDetloss, DetlossError, type DetlossContext } from '../src/index';
import { REQUESTED_LIMITS } from '../src/runtime/device/open';
import { createHarness, createTimedDetloss } from './harness';
import { createPlanProbe } from './plan-probe';
import { createTunedBench } from './tuned-bench';

/** Optional features the bench asks for when the adapter has them (GPU timestamps, subgroups). */
const FEATURES = ['timestamp-query', 'subgroups'] as const;

function webgpuVersion(): string {
  try {
    return (createRequire(import.meta.url)('webgpu/package.json') as { version: string }).version;
  } catch {
    return '';
  }
}

/** This process's GPU: one device with timestamps and subgroups where the adapter has them, and facts about it. */
async function openDevice(): Promise<{ device: GPUDevice; adapter: Record<string, unknown> }> {
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new DetlossError('no_webgpu', 'no WebGPU adapter in Node (Dawn found no Vulkan driver)');
  const requiredFeatures = FEATURES.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const k of REQUESTED_LIMITS) requiredLimits[k] = adapter.limits[k] as number;
  const device = await adapter.requestDevice({ label: 'detloss-bench', requiredFeatures: requiredFeatures as GPUFeatureName[], requiredLimits });
  const info = adapter.info;
  const facts = {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
    features: requiredFeatures,
    limits: requiredLimits,
  };
  return { device, adapter: facts };
}

/** A harness on this process's GPU. */
export function openNodeBench() {
  let device: GPUDevice | undefined;
  return createHarness({
    async open() {
      const opened = await openDevice();
      device = opened.device;
      const facts = opened.adapter;
      const dl = await createTimedDetloss(createDetloss, { device });
      return { dl, adapter: facts, runtime: { webgpu: webgpuVersion() } };
    },
    fresh: (): Promise<DetlossContext> => createDetloss({ gpu }),
    tfjsCpu: true,
    // A yardstick at small N only: at 1e5 rows x 80, or a 4e3 x 4e3 pairwise, one call takes seconds.
    tfjsCpuMaxN: 1e4,
    close() {
      device?.destroy();
      device = undefined;
    },
  });
}

/** The plan probe (`detloss bench --probe-plans`) on this process's GPU. */
export function openPlanProbe() {
  let device: GPUDevice | undefined;
  return createPlanProbe({
    async open() {
      const opened = await openDevice();
      device = opened.device;
      return { ...opened, runtime: { webgpu: webgpuVersion() } };
    },
    make: createDetloss,
    close() {
      device?.destroy();
      device = undefined;
    },
  });
}

/** The tuned bench (`detloss bench --node --tuned`) on this process's GPU; `hooks.emit` carries tuning's progress to the runner. */
export function openTunedBench(hooks: { emit?(name: string, data: unknown): void } = {}) {
  let device: GPUDevice | undefined;
  return createTunedBench({
    async open() {
      const opened = await openDevice();
      device = opened.device;
      return { ...opened, runtime: { webgpu: webgpuVersion() } };
    },
    make: createDetloss,
    emit: hooks.emit,
    close() {
      device?.destroy();
      device = undefined;
    },
  });
}
