import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Page } from 'puppeteer-core';
import { build } from 'vite';
import { describe, expect, it } from 'vitest';
import { cpu } from '../../src/cpu';
import { openPage, serveStatic } from '../../src/tools/browser';
import { useBrowserPage } from '../helpers/browser-page';
import { note } from '../helpers/note';

// The training demo (demo/trainer/): a YOLO-style detector head trained with detloss/tfjs's
// yoloLoss against the same YOLOv8 loss composed from TF.js ops (demo/trainer/yolo-tfjs.ts, itself
// held against the fixtures by yolo-tfjs.test.ts), in headless Chromium on its software WebGPU
// adapter. Built into a folder of its own, so that it never races demo.test.ts, which builds the
// demo into demo/dist.
const demoConfig = fileURLToPath(new URL('../../demo/vite.config.ts', import.meta.url));
const outDir = fileURLToPath(new URL('../../test-output/', import.meta.url));
const dist = `${outDir}train-demo/`;

const READY = `(document.body.dataset.ready === undefined ? undefined : document.body.dataset.ready === 'true' ||
  { ok: false, code: 'demo', message: document.querySelector('#fatal')?.textContent })`;

type Side = 'detloss' | 'tfjs';
type Losses = { total: number; box: number; cls: number; dfl: number };
interface TrainTest {
  backend: string;
  losses: Record<Side, Losses[]>;
  ms: Record<Side, number[]>;
  init: number[];
  params: Record<Side, number[]>;
  memory: { numTensors: number; bytesInUse: number; bytesAllocated: number }[];
  shapes: { batch: number; anchors: number; regMax: number; classes: number; rows: number; strides: number[] };
  anchors: number[];
  strides: number[];
  /** Per step, what the detloss side's loss was computed on (trainTest's `record`). */
  steps: { predDist: number[]; predScores: number[]; gtLabels: number[]; gtBoxes: number[]; gtMask: number[] }[];
}

const STEPS = 30;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const status = (page: Page) =>
  page.$eval('#train-status', (e) => {
    const d = (e as HTMLElement).dataset;
    return { state: d.state, phase: d.phase, phases: d.phases, text: e.textContent ?? '' };
  });
const step = (page: Page) => page.$eval('#step', (e) => Number((e as HTMLElement).dataset.step));
const buttons = (page: Page) => page.evaluate(() => ({ stop: document.querySelector<HTMLButtonElement>('#stop')!.disabled, resume: document.querySelector<HTMLButtonElement>('#resume')!.disabled }));
/**
 * Waits until the demo's training loop has ended, so that no step can follow (only Resume starts
 * another); fails, saying so, if it runs on for 30 s.
 */
async function loopEnded(page: Page): Promise<void> {
  const r = await page.evaluate(() =>
    Promise.race([
      (window as unknown as { trainDemo: { idle(): Promise<void> } }).trainDemo.idle().then(() => 'ended'),
      new Promise((ok) => setTimeout(() => ok('the training loop still runs 30 s after it stopped'), 30_000)),
    ]),
  );
  expect(r).toBe('ended');
}
/** How many pixels of a canvas differ from its top-left pixel (0: blank). */
const inked = (page: Page, sel: string) =>
  page.$eval(sel, (c) => {
    const d = (c as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, (c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2]) n++;
    return n;
  });

const gp = useBrowserPage(
  async () => {
    mkdirSync(outDir, { recursive: true });
    await build({ configFile: demoConfig, logLevel: 'warn', build: { outDir: dist, emptyOutDir: true, sourcemap: false } });
    const server = await serveStatic(dist);
    return openPage({ url: `${server.url}trainer/index.html`, close: server.close }, READY);
  },
  { viewport: { width: 1280, height: 1000 } },
);

describe('the training demo (demo/trainer/) in headless Chromium', () => {
  it('trains live with both loss sets, draws the curves, step times and boxes, and stops and resumes', async () => {
    const { page } = gp;
    expect(await page.$eval('#device', (e) => (e as HTMLElement).dataset.webgpu)).toBe('yes');
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('#step')!.dataset.step) >= 6, { timeout: 60_000 });
    // The status line said what the page was busy with before the first step's numbers came (starting
    // TF.js, warming it up on the validation images, compiling the GPU pipelines in the first step),
    // and now says the step it is at.
    const live = await status(page);
    console.log(`train demo, phases: ${live.phases}; now: ${live.text}`);
    expect(live.state).toBe('running');
    expect(live.phases).toBe('starting,warmup,compiling,training');
    expect(live.phase).toBe('training');
    expect(live.text).toMatch(/^Training with the YOLOv8 loss: step \d+\.$/);
    expect(Number(/step (\d+)/.exec(live.text)![1])).toBeGreaterThanOrEqual(6);

    await page.click('#stop');
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#train-status')!.dataset.state === 'stopped');
    const stoppedAt = await step(page);
    expect(await buttons(page)).toEqual({ stop: true, resume: false });
    expect(await status(page)).toMatchObject({ phase: 'stopped', text: `Stopped after step ${stoppedAt}. Resume goes on from there.` });
    await loopEnded(page);
    expect(await step(page)).toBe(stoppedAt);

    const summary = await page.$eval('#summary', (e) => ({ text: e.textContent ?? '', ratio: Number((e as HTMLElement).dataset.ratio) }));
    console.log(`train demo, live: ${summary.text}`);
    expect(summary.text).toMatch(new RegExp(`^After ${stoppedAt} steps: loss detloss \\d+\\.\\d+, TF\\.js ops \\d+\\.\\d+\\. Median step time detloss [\\d.]+ ms, TF\\.js ops [\\d.]+ ms`));
    expect(Number.isFinite(summary.ratio)).toBe(true);
    // Both charts and every validation image are drawn (the images hold at least their scene).
    expect(await inked(page, '#loss-chart')).toBeGreaterThan(1000);
    expect(await inked(page, '#parts-chart')).toBeGreaterThan(1000);
    expect(await inked(page, '#time-chart')).toBeGreaterThan(1000);
    for (const side of ['detloss', 'tfjs']) {
      expect(await page.$$eval(`#val-${side} canvas`, (cs) => cs.length)).toBe(4);
      for (let i = 1; i <= 4; i++) expect(await inked(page, `#val-${side} canvas:nth-child(${i})`)).toBeGreaterThan(1000);
    }

    await page.click('#resume');
    await page.waitForFunction((s) => Number(document.querySelector<HTMLElement>('#step')!.dataset.step) >= s + 2, { timeout: 30_000 }, stoppedAt);
    expect((await status(page)).state).toBe('running');
    await page.click('#stop');
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#train-status')!.dataset.state === 'stopped');
    await page.screenshot({ path: `${outDir}train-page.png`, fullPage: true });
    expect(gp.errors).toEqual([]);
  }, 120_000);

  // 30 steps each way, recorded: about 1 s a step for the TF.js-ops side on SwiftShader (measured with
  // the TF.js-ops loss standing in for detloss's), past the default 60 s.
  it(`${STEPS} steps each way from one seed: both losses fall, detloss's equals the CPU reference's on every step, the two sides agree for five steps, and memory stays flat`, async () => {
    const r = (await gp.page.evaluate(
      (n) => (window as unknown as { trainDemo: { trainTest(n: number, opts: { record: boolean }): Promise<TrainTest> } }).trainDemo.trainTest(n, { record: true }),
      STEPS,
    )) as TrainTest;
    expect(r.backend).toBe('webgpu');
    const total = (s: Side) => r.losses[s].map((l) => l.total);
    for (const s of ['detloss', 'tfjs'] as const) {
      expect(r.losses[s]).toHaveLength(STEPS);
      for (const l of r.losses[s]) for (const v of [l.total, l.box, l.cls, l.dfl]) expect(Number.isFinite(v), `${s}: ${JSON.stringify(l)}`).toBe(true);
      // The curve falls: the mean of the last five steps is under 90 % of the first five's.
      const first = mean(total(s).slice(0, 5));
      const last = mean(total(s).slice(-5));
      expect(last, `${s}: first five ${first}, last five ${last}`).toBeLessThan(0.9 * first);
    }

    // The head: strides 8 and 16 on 64 px images (8x8 + 4x4 = 80 anchors), R bins, C classes, M
    // gt rows. detloss's makeAnchors gives the cell centres level after level, row-major, which is
    // the order the model lays its outputs out in.
    const { batch: B, anchors: A, regMax: R, classes: C, rows: M } = r.shapes;
    expect([A, r.shapes.strides]).toEqual([80, [8, 16]]);
    const anchors: number[] = [];
    const strides: number[] = [];
    for (const s of r.shapes.strides) {
      for (let y = 0; y < 64 / s; y++) for (let x = 0; x < 64 / s; x++) anchors.push(x + 0.5, y + 0.5), strides.push(s);
    }
    expect(r.anchors).toEqual(anchors);
    expect(r.strides).toEqual(strides);

    // Every step of the detloss side against the float64 CPU reference on the same inputs: the
    // head's outputs that step's loss was computed on, and the batch's gts. Within the fixtures'
    // loss tolerance (rtol 1e-4, atol 2e-5). The assignment's decisions are comparisons; a metric
    // at a gt's k-th place within float32 rounding of the next one could flip one and move the loss
    // by more, which random training makes unlikely (the fixtures were drawn to avoid it).
    expect(r.steps).toHaveLength(STEPS);
    const yolo: string = 'yolo_detection_loss';
    let worstCpu = 0;
    for (let i = 0; i < STEPS; i++) {
      const s = r.steps[i];
      const want = cpu.run(yolo, {
        predDist: { data: Float32Array.from(s.predDist), shape: [B, A, 4 * R] },
        predScores: { data: Float32Array.from(s.predScores), shape: [B, A, C] },
        anchors: { data: Float32Array.from(r.anchors), shape: [A, 2] },
        strides: { data: Float32Array.from(r.strides), shape: [A] },
        gtLabels: { data: Int32Array.from(s.gtLabels), shape: [B, M] },
        gtBoxes: { data: Float32Array.from(s.gtBoxes), shape: [B, M, 4] },
        gtMask: { data: Int32Array.from(s.gtMask), shape: [B, M] },
      }).loss[0];
      const got = r.losses.detloss[i].total;
      worstCpu = Math.max(worstCpu, Math.abs(got - want) / Math.abs(want));
      expect(Math.abs(got - want), `step ${i + 1}: detloss ${got}, CPU reference ${want}`).toBeLessThanOrEqual(2e-5 + 1e-4 * Math.abs(want));
    }

    // The two trainings against each other. At step 1 the parameters are the same, so only the two
    // loss computations differ; at step 2 each side has taken one update with its own gradient, so
    // the gradients agree as well as the losses do. After that the two paths part: float32 rounding
    // moves the parameters apart a little, Adam passes relative differences of the gradient into
    // the update undamped, and the assignment is discontinuous, so a prediction that crosses a top-k
    // or argmax boundary on one side and not the other moves that side's loss at once. Measured on
    // SwiftShader (2026-12-07): 1.5e-7 at steps 1 and 2, 4e-6 at step 5, 2e-4 at step 10 and 2e-2 at
    // step 30. So the paths are held together for five steps; every step of detloss's own path is
    // held to the CPU reference on its own inputs above. A real difference between the two (a
    // wrong term, an undetached CIoU k, a gradient off by a factor) changes the loss at the first or
    // second step by far more than these bounds.
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
    const d = total('detloss');
    const t = total('tfjs');
    const bound = (i: number) => (i < 2 ? 1e-5 : 1e-4);
    for (let i = 0; i < 5; i++) {
      expect(rel(d[i], t[i]), `step ${i + 1}: ${d[i]} vs ${t[i]}`).toBeLessThanOrEqual(bound(i));
      for (const k of ['box', 'cls', 'dfl'] as const) {
        const a = r.losses.detloss[i][k];
        const b = r.losses.tfjs[i][k];
        expect(Math.abs(a - b), `step ${i + 1}: ${k} ${a} vs ${b}`).toBeLessThanOrEqual(2e-6 + bound(i) * Math.abs(b));
      }
    }
    const worst = Math.max(...d.map((x, i) => rel(x, t[i])));

    // Training moved the parameters on both sides.
    for (const side of ['detloss', 'tfjs'] as const) {
      const p = r.params[side];
      expect(p).toHaveLength(r.init.length);
      expect(Math.max(...p.map((v, i) => Math.abs(v - r.init[i]))), side).toBeGreaterThan(1e-3);
    }

    // Memory: the same number of TF.js tensors and the same detloss pool from step 10 to step 30.
    expect(r.memory).toHaveLength(STEPS);
    for (let i = 9; i < STEPS; i++) {
      expect(r.memory[i].numTensors, `tensors after step ${i + 1}`).toBe(r.memory[9].numTensors);
      expect(r.memory[i].bytesInUse, `detloss bytes in use after step ${i + 1}`).toBe(r.memory[9].bytesInUse);
    }

    // Reported, not asserted (timings are not a test's business): the median step time from step 3
    // on (the first steps compile the pipelines), and the ratio.
    const md = median(r.ms.detloss.slice(2));
    const mt = median(r.ms.tfjs.slice(2));
    console.log(
      `train demo, ${STEPS} steps each way (YOLOv8 loss, batch ${B}, A ${A}, R ${R}, C ${C}, M ${M}, Adam): final loss detloss ${d.at(-1)} / TF.js ops ${t.at(-1)}; ` +
        `detloss against the CPU reference: worst relative difference ${worstCpu.toExponential(2)}; ` +
        `relative loss difference between the sides: step 5 ${rel(d[4], t[4]).toExponential(2)}, worst over ${STEPS} steps ${worst.toExponential(2)} (the paths part); ` +
        `median step ${md.toFixed(1)} ms detloss, ${mt.toFixed(1)} ms TF.js ops (TF.js ops / detloss = ${(mt / md).toFixed(2)}); ` +
        `first steps ${r.ms.detloss[0].toFixed(0)} / ${r.ms.tfjs[0].toFixed(0)} ms; ` +
        `after step 10 and 30: ${r.memory[9].numTensors} tensors, detloss pool ${r.memory[9].bytesInUse} B in use of ${r.memory[9].bytesAllocated} B, ` +
        `then ${r.memory[STEPS - 1].numTensors} tensors, ${r.memory[STEPS - 1].bytesInUse} B of ${r.memory[STEPS - 1].bytesAllocated} B`,
    );
    expect(gp.errors).toEqual([]);
  }, 300_000);

  it('when a step gives a non-finite loss, says so and does not go on', async () => {
    const { page } = gp;
    const before = await step(page);
    await page.evaluate(() => (window as unknown as { trainDemo: { poison(): void } }).trainDemo.poison());
    await page.click('#resume');
    await page.waitForFunction(() => ['nonfinite', 'error'].includes(document.querySelector<HTMLElement>('#train-status')!.dataset.state!), { timeout: 30_000 });
    const s = await status(page);
    note(`train demo, non-finite: ${s.text}`);
    expect(s.state).toBe('nonfinite');
    expect(await step(page)).toBe(before + 1);
    expect(s.text).toBe(
      `Stopped at step ${before + 1}: a loss is not finite (TF.js ops: total loss NaN, box (CIoU) loss NaN, cls (BCE) loss NaN, DFL loss NaN). Training does not go on from non-finite numbers; press Restart.`,
    );
    expect(await buttons(page)).toEqual({ stop: true, resume: true });
    await loopEnded(page);
    expect(await step(page)).toBe(before + 1);
    expect(gp.errors).toEqual([]);
  });
});
