/**
 * The playground page: opens a WebGPU context (or explains why there is none and carries on
 * with the CPU reference), then mounts the box playground and the timing panel. A lost device is
 * replaced by a new context, or the page goes on with the CPU reference; the status line says which.
 */
import { createDetloss, type DetlossContext } from 'detloss';
import { GpuSession, type GpuStatus } from './gpu-session';
import { mountPlayground } from './playground';
import { adapterName, mountTiming } from './timing';

const $ = <T extends Element>(sel: string) => {
  const e = document.querySelector<T>(sel);
  if (!e) throw new Error(`demo: ${sel} is missing from the page`);
  return e;
};

/** A detloss context, or the reason there is none. */
async function openGpu(): Promise<{ dl?: DetlossContext; problem?: string }> {
  try {
    return { dl: await createDetloss() };
  } catch (e) {
    return { problem: (e as Error).message ?? String(e) };
  }
}

/** The banner shown without WebGPU: what is missing, and how to get it. */
function showNoWebGpu(problem: string) {
  const banner = $<HTMLElement>('#no-webgpu');
  $<HTMLElement>('#no-webgpu-reason').textContent = problem;
  banner.hidden = false;
}

/** Puts a change of GPU state on the page: the device line and the status line under it. */
function showGpuStatus(gpu: GpuSession, s: GpuStatus) {
  const device = $<HTMLElement>('#device');
  const line = $<HTMLElement>('#gpu-status');
  const dl = gpu.context;
  if (s.state === 'cpu') {
    device.textContent = 'WebGPU: the device was lost. Everything below now runs on the float64 CPU reference.';
    device.dataset.webgpu = 'lost';
  } else if (s.state === 'recovering') {
    device.textContent = 'WebGPU: the device was lost; opening a new one…';
    device.dataset.webgpu = 'lost';
  } else if (dl) {
    device.textContent = `WebGPU: on (a new device after ${s.losses === 1 ? 'a loss' : `${s.losses} losses`}). ${adapterName(dl)}`;
    device.dataset.webgpu = 'yes';
    device.dataset.fallback = String(dl.adapter.isFallbackAdapter);
  }
  line.textContent = s.message;
  line.dataset.state = s.state;
  line.dataset.losses = String(s.losses);
  line.hidden = false;
}

async function main() {
  const device = $<HTMLElement>('#device');
  const { dl, problem } = await openGpu();
  const gpu = new GpuSession(dl);
  gpu.onChange((s) => showGpuStatus(gpu, s));
  // For tests and the console: the page's GPU session (its context, its state).
  (window as unknown as { detlossDemo: { gpu: GpuSession } }).detlossDemo = { gpu };
  if (dl) {
    device.textContent = `WebGPU: on. ${adapterName(dl)}`;
    device.dataset.webgpu = 'yes';
    device.dataset.fallback = String(dl.adapter.isFallbackAdapter);
  } else {
    device.textContent = 'WebGPU: off. Everything below runs on the float64 CPU reference.';
    device.dataset.webgpu = 'no';
    showNoWebGpu(problem ?? 'unknown reason');
  }

  mountTiming(
    {
      form: $('#timing-form'),
      op: $('#op'),
      n: $('#n'),
      run: $('#run'),
      progress: $('#progress'),
      progressText: $('#progress-text'),
      chart: $('#chart'),
      result: $('#timing-result'),
      history: $('#history'),
    },
    gpu,
  );
  await mountPlayground(
    {
      canvas: $('#boxes'),
      select: $('#variant'),
      params: $('#variant-params'),
      paramError: $('#param-error'),
      table: $('#losses'),
      coords: $('#coords'),
      legend: $('#grad-legend'),
      status: $('#pg-status'),
      rotated: $('#rotated-mode'),
      rtable: $('#rlosses'),
      rpanel: $('#rotated-panel'),
    },
    gpu,
  );
  document.body.dataset.ready = 'true';
}

main().catch((e) => {
  const box = document.querySelector<HTMLElement>('#fatal');
  if (box) {
    box.hidden = false;
    box.textContent = `The playground failed to start: ${(e as Error).message ?? e}`;
  }
  document.body.dataset.ready = 'error';
  console.error(e);
});
