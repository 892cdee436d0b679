/**
 * The detection page: opens a detloss context on WebGPU (or says why there is none), starts TF.js on
 * its WebGPU backend (its CPU backend without WebGPU), then mounts the NMS panel. detloss and TF.js
 * each open a device of their own, as two libraries in one app would.
 */
import * as tf from '@tensorflow/tfjs-core';
// TF.js's WebGPU backend, and its CPU backend for a browser without WebGPU (the full
// `@tensorflow/tfjs` package registers its backends for you; tfjs-core alone does not).
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-cpu';
import { createDetloss, type DetlossContext } from 'detloss';
import { mountPanel } from './panel';

const $ = <T extends Element>(sel: string) => {
  const e = document.querySelector<T>(sel);
  if (!e) throw new Error(`detection: ${sel} is missing from the page`);
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

/** The adapter's name and whether it is a software fallback, as one line. */
function adapterName(dl: DetlossContext): string {
  const a = dl.adapter;
  const name = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') || 'unnamed adapter';
  return `Adapter: ${name}${a.isFallbackAdapter ? ' (software fallback adapter)' : ' (hardware adapter)'}.`;
}

/** TF.js on WebGPU when it starts, else on its CPU backend; the backend's name. */
async function startTfjs(): Promise<string> {
  if (!('gpu' in navigator) || !(await tf.setBackend('webgpu'))) await tf.setBackend('cpu');
  await tf.ready();
  return tf.getBackend();
}

async function main() {
  const device = $<HTMLElement>('#device');
  const { dl, problem } = await openGpu();
  if (dl) {
    device.textContent = `WebGPU: on. ${adapterName(dl)}`;
    device.dataset.webgpu = 'yes';
  } else {
    device.textContent = 'WebGPU: off. detloss runs on its float64 CPU reference only.';
    device.dataset.webgpu = 'no';
    $<HTMLElement>('#no-webgpu-reason').textContent = problem ?? 'unknown reason';
    $<HTMLElement>('#no-webgpu').hidden = false;
  }
  const backend = await startTfjs();
  const line = $<HTMLElement>('#tfjs-backend');
  line.textContent = `TF.js ${tf.version_core}: the ${backend} backend.`;
  line.dataset.backend = backend;
  $<HTMLElement>('#det-tfjs-backend').textContent = `the ${backend} backend`;

  await mountPanel(
    {
      form: $('#det-form'),
      iou: $('#det-iou'),
      iouOut: $('#det-iou-out'),
      score: $('#det-score'),
      scoreOut: $('#det-score-out'),
      n: $('#det-n'),
      seed: $('#det-seed'),
      classes: $('#det-classes'),
      canvas: $('#det-canvas'),
      caption: $('#det-caption'),
      results: $('#det-results'),
      agree: $('#det-agree'),
      status: $('#det-status'),
      runs: $('#det-runs'),
    },
    dl,
  );
  document.body.dataset.ready = 'true';
}

main().catch((e) => {
  const box = document.querySelector<HTMLElement>('#fatal');
  if (box) {
    box.hidden = false;
    box.textContent = `The detection page failed to start: ${(e as Error).message ?? e}`;
  }
  document.body.dataset.ready = 'error';
  console.error(e);
});
