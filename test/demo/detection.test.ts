import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Page } from 'puppeteer-core';
import { build } from 'vite';
import { describe, expect, it } from 'vitest';
import { CLASSES, classOffsetBoxes, DEFAULT_COUNT, makeScene, type Scene } from '../../demo/detection/scene';
import { cpu } from '../../src/cpu';
import { openPage, serveStatic } from '../../src/tools/browser';
import { useBrowserPage } from '../helpers/browser-page';
import { note } from '../helpers/note';

// The detection page (demo/detection/): NMS on a seeded scene of clustered boxes, by detloss's `nms`
// on the GPU, by tf.image on TF.js's WebGPU backend and by the CPU reference, in headless Chromium
// on its software WebGPU adapter. Every kept set the page shows is held against cpu.run in Node on
// the same scene, made here from the same seed. Built into a folder of its own, so that it never
// races demo.test.ts, which builds the demo into demo/dist.
const demoConfig = fileURLToPath(new URL('../../demo/vite.config.ts', import.meta.url));
const outDir = fileURLToPath(new URL('../../test-output/', import.meta.url));
const dist = `${outDir}detection-demo/`;

const READY = `(document.body.dataset.ready === undefined ? undefined : document.body.dataset.ready === 'true' ||
  { ok: false, code: 'demo', message: document.querySelector('#fatal')?.textContent })`;

/** IoU of two xyxy boxes. */
function iou(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  return (iw * ih) / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih);
}

/** What the page shows once it has the results of its latest change. */
interface Shown {
  n: number;
  seed: number;
  iou: number;
  score: number;
  classAware: boolean;
  keep: { gpu: number[]; tfjs: number[]; cpu: number[]; twin: number[] };
  /** Each backend's row: the kept count and the median ms, as the table holds them. */
  rows: Record<string, { kept: string; ms: string; keptText: string; msText: string }>;
  /** The agreement lines, by pair. */
  agree: Record<string, { same: boolean; mayDiffer: boolean; text: string }>;
  caption: string;
}

/** Waits until the results are those of the latest change, and reads them. */
async function settled(page: Page): Promise<Shown> {
  await page.waitForFunction(
    () => {
      const st = document.querySelector<HTMLElement>('#det-status')!.dataset;
      return st.state === 'done' && st.rev === document.querySelector<HTMLElement>('#det-form')!.dataset.rev;
    },
    { timeout: 50_000 },
  );
  return page.evaluate(() => {
    const d = document.querySelector<HTMLElement>('#det-results')!.dataset;
    const l = (s: string | undefined) => (s ? s.split(',').map(Number) : []);
    const rows = Object.fromEntries(
      Array.from(document.querySelectorAll<HTMLTableRowElement>('#det-results tbody tr')).map((tr) => [
        tr.dataset.backend!,
        { kept: tr.dataset.kept!, ms: tr.dataset.ms!, keptText: tr.querySelector('.kept')!.textContent!, msText: tr.querySelector('.ms')!.textContent! },
      ]),
    );
    const agree = Object.fromEntries(
      Array.from(document.querySelectorAll<HTMLElement>('#det-agree li')).map((li) => [li.dataset.pair!, { same: li.dataset.same === 'true', mayDiffer: li.dataset.mayDiffer === 'true', text: li.textContent! }]),
    );
    return {
      n: Number(d.n),
      seed: Number(d.seed),
      iou: Number(d.iou),
      score: Number(d.score),
      classAware: d.classAware === 'true',
      keep: { gpu: l(d.gpuKeep), tfjs: l(d.tfjsKeep), cpu: l(d.cpuKeep), twin: l(d.twinKeep) },
      rows,
      agree,
      caption: document.querySelector('#det-caption')!.textContent!,
    };
  });
}

/** Sets a range or number input as dragging or typing would (an `input` event), or a checkbox or select (a `change` event). */
async function setControl(page: Page, sel: string, value: string | boolean) {
  await page.evaluate(
    (sel, value) => {
      const e = document.querySelector<HTMLInputElement | HTMLSelectElement>(sel)!;
      if (typeof value === 'boolean') (e as HTMLInputElement).checked = value;
      else e.value = value;
      const change = typeof value === 'boolean' || e instanceof HTMLSelectElement;
      e.dispatchEvent(new Event(change ? 'change' : 'input', { bubbles: true }));
    },
    sel,
    value,
  );
}

/** The CPU reference in Node on the scene the page made: `nms` (torchvision's), and `nms_tfjs` (tf.image's) on the boxes tf.image is given. */
function reference(s: Scene, shown: Shown) {
  const params = { iouThreshold: shown.iou, scoreThreshold: shown.score };
  const nms = cpu.run('nms', shown.classAware ? { boxes: s.boxes, scores: s.scores, classes: s.classes } : { boxes: s.boxes, scores: s.scores }, params).outputs!.keep;
  const tfBoxes = shown.classAware ? classOffsetBoxes(s.boxes, s.classes) : s.boxes;
  const tfjs = cpu.run('nms_tfjs', { boxes: tfBoxes, scores: s.scores }, { ...params, maxOutputSize: s.n }).outputs!.selectedIndices;
  return { nms: Array.from(nms), tfjs: Array.from(tfjs) };
}

/**
 * Checks one state of the page against the reference: the GPU's and the page's CPU kept sets equal
 * Node's `nms` exactly, TF.js's and detloss's nms_tfjs equal Node's `nms_tfjs`, the table's counts,
 * finite positive times, and the agreement lines saying what is so.
 */
function check(s: Scene, shown: Shown) {
  const ref = reference(s, shown);
  const what = `seed ${shown.seed}, n ${shown.n}, iou ${shown.iou}, score ${shown.score}, classAware ${shown.classAware}`;
  expect(shown.keep.gpu, what).toEqual(ref.nms);
  expect(shown.keep.cpu, what).toEqual(ref.nms);
  expect(shown.keep.tfjs, what).toEqual(ref.tfjs);
  expect(shown.keep.twin, what).toEqual(ref.tfjs);
  for (const [b, keep] of [['gpu', ref.nms], ['tfjs', ref.tfjs], ['cpu', ref.nms]] as const) {
    const row = shown.rows[b];
    expect(Number(row.kept), `${b}: ${what}`).toBe(keep.length);
    expect(row.keptText).toBe(String(keep.length));
    const ms = Number(row.ms);
    expect(Number.isFinite(ms) && ms > 0, `${b}: ${row.ms} ms`).toBe(true);
    expect(row.msText).toMatch(/^\d+(\.\d+)?$/);
  }
  expect(shown.agree['gpu-cpu']).toMatchObject({ same: true, mayDiffer: false });
  expect(shown.agree['tfjs-twin']).toMatchObject({ same: true, mayDiffer: false });
  const nmsTfjsSame = ref.nms.length === ref.tfjs.length && ref.nms.every((v, i) => v === ref.tfjs[i]);
  expect(shown.agree['nms-tfjs']).toMatchObject({ same: nmsTfjsSame, mayDiffer: true });
  return ref;
}

/** Pixels of the canvas that are not its background: what was drawn. */
const inked = (page: Page) =>
  page.$eval('#det-canvas', (c) => {
    const canvas = c as HTMLCanvasElement;
    const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200) n++;
    return n;
  });

const gp = useBrowserPage(
  async () => {
    mkdirSync(outDir, { recursive: true });
    await build({ configFile: demoConfig, logLevel: 'warn', build: { outDir: dist, emptyOutDir: true, sourcemap: false } });
    const server = await serveStatic(dist);
    return openPage({ url: `${server.url}detection/index.html`, close: server.close }, READY);
  },
  { viewport: { width: 1280, height: 1000 } },
);

describe('the detection page (demo/detection/, built with Vite) in headless Chromium', () => {
  it('runs NMS on the GPU, on TF.js and on the CPU reference, each as the reference says; the sliders change what is kept', async () => {
    const { page } = gp;
    const device = await page.$eval('#device', (e) => ({ webgpu: (e as HTMLElement).dataset.webgpu, text: e.textContent }));
    expect(device.webgpu, `no WebGPU in headless Chromium: ${device.text}`).toBe('yes');
    expect(await page.$eval('#tfjs-backend', (e) => (e as HTMLElement).dataset.backend)).toBe('webgpu');

    // The defaults: the scene of seed 1 at the default count; the thresholds the page opens with.
    const start = await settled(page);
    expect(start).toMatchObject({ n: DEFAULT_COUNT, seed: 1, classAware: false });
    const scene = makeScene(start.seed, start.n);
    const ref0 = check(scene, start);
    // NMS did its job: a handful of boxes out of a thousand, and every object has a kept box on it (IoU over 0.5).
    expect(ref0.nms.length).toBeLessThan(start.n / 10);
    for (const { box } of scene.objects) expect(ref0.nms.some((i) => iou(scene.boxes.subarray(i * 4, i * 4 + 4), box) > 0.5), `object ${box}`).toBe(true);
    // The canvas shows the GPU's kept set: the caption counts it, and there is ink.
    expect(start.caption).toContain(`${start.keep.gpu.length} kept by detloss nms on the GPU`);
    expect(await inked(page)).toBeGreaterThan(2000);
    note(
      `detection demo, ${start.n} boxes (iou ${start.iou}, score ${start.score}): kept ${start.keep.gpu.length}; ` +
        `median ms GPU ${start.rows.gpu.msText}, TF.js ${start.rows.tfjs.msText}, CPU ${start.rows.cpu.msText}`,
    );

    // iouThreshold 0.3, then 1: a higher threshold suppresses less, so keeps more; at 1 nothing suppresses (IoU > 1 never holds).
    await setControl(page, '#det-iou', '0.3');
    const low = await settled(page);
    expect(low.iou).toBe(0.3);
    check(scene, low);
    await setControl(page, '#det-iou', '1');
    const high = await settled(page);
    const refHigh = check(scene, high);
    expect(high.keep.gpu.length).toBeGreaterThan(low.keep.gpu.length);
    expect(refHigh.nms.length).toBe(Array.from(scene.scores).filter((v) => v > high.score).length);

    // iouThreshold 0: tf.image (IoU >= 0 drops every later box) keeps one box, nms keeps the ones that overlap no kept box;
    // the page says they differ, and that this is the semantics, not a fault.
    await setControl(page, '#det-iou', '0');
    const zero = await settled(page);
    check(scene, zero);
    expect(zero.keep.tfjs).toHaveLength(1);
    expect(zero.keep.gpu.length).toBeGreaterThan(1);
    expect(zero.agree['nms-tfjs'].same).toBe(false);
    expect(zero.agree['nms-tfjs'].text).toMatch(/differ: only detloss nms \(GPU\) kept box .*Expected where an IoU equals the threshold/);

    // Back to the start's iouThreshold with a higher score threshold: fewer candidates, fewer kept.
    await setControl(page, '#det-iou', String(start.iou));
    await setControl(page, '#det-score', '0.6');
    const strict = await settled(page);
    expect(strict.score).toBeGreaterThan(start.score);
    check(scene, strict);
    expect(strict.keep.gpu.length).toBeLessThan(start.keep.gpu.length);

    // Class-aware, on 500 boxes at iouThreshold 0.3: the scene's second object overlaps the first (another class), and
    // class-agnostic NMS loses one of the two there; per class, both stay.
    await setControl(page, '#det-score', String(start.score));
    await setControl(page, '#det-iou', '0.3');
    await setControl(page, '#det-n', '500');
    const agnostic = await settled(page);
    const small = makeScene(start.seed, 500);
    check(small, agnostic);
    await setControl(page, '#det-classes', true);
    const aware = await settled(page);
    expect(aware).toMatchObject({ n: 500, seed: start.seed, iou: 0.3, classAware: true });
    check(small, aware);
    expect(aware.keep.gpu.length).toBeGreaterThan(agnostic.keep.gpu.length);
    // What class-aware means: each class's kept boxes are what class-agnostic NMS keeps among that class's boxes alone.
    for (let c = 0; c < CLASSES; c++) {
      const rows = Array.from(small.classes.keys()).filter((i) => small.classes[i] === c);
      const alone = cpu.run('nms', { boxes: Float32Array.from(rows.flatMap((i) => Array.from(small.boxes.subarray(i * 4, i * 4 + 4)))), scores: Float32Array.from(rows.map((i) => small.scores[i])) }, { iouThreshold: 0.3, scoreThreshold: aware.score });
      expect(aware.keep.gpu.filter((i) => small.classes[i] === c), `class ${c}`).toEqual(Array.from(alone.outputs!.keep).map((j) => rows[j]));
    }

    await page.screenshot({ path: `${outDir}demo-detection.png`, fullPage: true });
    expect(gp.errors).toEqual([]);
  });
});
