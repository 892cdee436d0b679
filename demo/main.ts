/**
 * The detloss demo page: opens a WebGPU context (or explains why there is none and carries on
 * with the CPU reference), then mounts the box playground and the timing panel.
 */
import { createDetloss, type DetlossContext } from '../src/index';
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

async function main() {
  const device = $<HTMLElement>('#device');
  const { dl, problem } = await openGpu();
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
    dl,
  );
  await mountPlayground(
    {
      canvas: $('#boxes'),
      select: $('#variant'),
      table: $('#losses'),
      coords: $('#coords'),
      legend: $('#grad-legend'),
      status: $('#pg-status'),
    },
    dl,
  );
  document.body.dataset.ready = 'true';
}

main().catch((e) => {
  const box = document.querySelector<HTMLElement>('#fatal');
  if (box) {
    box.hidden = false;
    box.textContent = `The demo failed to start: ${(e as Error).message ?? e}`;
  }
  document.body.dataset.ready = 'error';
  console.error(e);
});
