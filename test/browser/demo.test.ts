import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Page } from 'puppeteer-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../src/cpu';
import type { OpParams } from '../../src/ops/op-types';
import { openPage, serveStatic, type GpuPage } from '../../src/tools/browser';

const demoConfig = fileURLToPath(new URL('../../demo/vite.config.ts', import.meta.url));
const demoDist = fileURLToPath(new URL('../../demo/dist/', import.meta.url));
const outDir = fileURLToPath(new URL('../../test-output/', import.meta.url));

// Resolves to true once the page has shown its first results, or to a failure the runner reports.
const READY = `(document.body.dataset.ready === undefined ? undefined : document.body.dataset.ready === 'true' ||
  { ok: false, code: 'demo', message: document.querySelector('#fatal')?.textContent })`;

/** The rows of the loss table: the variant key, the exact loss and gradient, and the backend. */
interface Row {
  key: string;
  loss: number;
  grad: number[];
  backend: string;
}

type IouParams = OpParams<'iou_loss'>;
const nums = (s: string | undefined) => (s ?? '').split(',').map(Number);

async function tableState(page: Page) {
  return page.evaluate(() => {
    const table = document.querySelector<HTMLTableElement>('#losses')!;
    const rows = Array.from(table.tBodies[0].rows).map((tr) => ({ key: tr.dataset.variant!, loss: Number(tr.dataset.loss), grad: (tr.dataset.grad ?? '').split(',').map(Number), backend: tr.dataset.backend! }));
    return { pred: table.dataset.pred, target: table.dataset.target, rows };
  });
}

/** Waits until the table shows results for the boxes the canvas holds now. */
async function settled(page: Page) {
  await page.waitForFunction(() => {
    const t = document.querySelector<HTMLElement>('#losses')!.dataset;
    const c = document.querySelector<HTMLElement>('#boxes')!.dataset;
    return t.pred !== undefined && t.pred === c.pred && t.target === c.target;
  });
  return tableState(page);
}

/** Drags from one point of the canvas (in canvas units, 640 x 400) by (dx, dy) canvas units. */
async function drag(page: Page, x: number, y: number, dx: number, dy: number) {
  const r = await page.$eval('#boxes', (c) => {
    const b = c.getBoundingClientRect();
    return { left: b.left, top: b.top, sx: b.width / 640, sy: b.height / 400 };
  });
  await page.mouse.move(r.left + x * r.sx, r.top + y * r.sy);
  await page.mouse.down();
  await page.mouse.move(r.left + (x + dx) * r.sx, r.top + (y + dy) * r.sy, { steps: 12 });
  await page.mouse.up();
}

/** Presses at (x, y), sends `moves` one-pixel moves to the right at once (not waiting for each), releases. */
async function burstDrag(page: Page, x: number, y: number, moves: number) {
  const r = await page.$eval('#boxes', (c) => {
    const b = c.getBoundingClientRect();
    return { left: b.left, top: b.top, sx: b.width / 640, sy: b.height / 400 };
  });
  const at = (dx: number) => ({ x: r.left + (x + dx) * r.sx, y: r.top + y * r.sy });
  await page.mouse.move(at(0).x, at(0).y);
  await page.mouse.down();
  const cdp = await page.createCDPSession();
  await Promise.all(
    Array.from({ length: moves }, (_, i) => cdp.send('Input.dispatchMouseEvent', { type: 'mouseMoved', ...at(i + 1), button: 'left', buttons: 1 })),
  );
  await cdp.detach();
  await page.mouse.move(at(moves).x, at(moves).y);
  await page.mouse.up();
}

/** Every row against the CPU reference on the boxes the page reports (loss 1e-4 + 1e-3 rel, as the fixtures' atan/exp cases). */
function checkRows(rows: Row[], pred: number[], target: number[]) {
  expect(rows.map((r) => r.key)).toEqual(['iou/linear', 'iou/square', 'iou/log', 'giou', 'diou', 'ciou', 'eiou', 'siou']);
  for (const row of rows) {
    const [variant, mode] = row.key.split('/') as [IouParams['variant'], IouParams['mode']?];
    const ref = cpu.run('iou_loss', { pred: Float32Array.from(pred), target: Float32Array.from(target) }, { variant, ...(mode ? { mode } : {}), reduction: 'none' });
    expect(Math.abs(row.loss - ref.loss[0]), `${row.key}: loss ${row.loss} vs ${ref.loss[0]}`).toBeLessThanOrEqual(1e-4 + 1e-3 * Math.abs(ref.loss[0]));
    for (let k = 0; k < 4; k++) {
      const want = ref.grad.pred[k];
      expect(Math.abs(row.grad[k] - want), `${row.key}: grad[${k}] ${row.grad[k]} vs ${want}`).toBeLessThanOrEqual(1e-5 + 1e-3 * Math.abs(want));
    }
  }
}


/**
 * Opens the demo in a new tab of the browser, with every GPUDevice the page requests recorded in
 * `window.__devices` (so the test can lose one with `destroy()`, which resolves `device.lost` with
 * reason 'destroyed'); with `window.__destroyNewDevices` set, each later device is destroyed as soon
 * as it is made; with `window.__loseOnSubmit` set, the newest device is destroyed right after the next
 * submit, so a call is in flight when it goes. Collects console errors and page errors.
 */
async function openLossPage(url: string) {
  const page = await gp.browser.newPage();
  const errors: string[] = [];
  page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
  page.on('pageerror', (e) => errors.push(String((e as Error).message ?? e)));
  await page.evaluateOnNewDocument(() => {
    const w = window as unknown as { __devices: GPUDevice[]; __destroyNewDevices?: boolean; __loseOnSubmit?: boolean };
    w.__devices = [];
    const requestDevice = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (this: GPUAdapter, ...args: Parameters<GPUAdapter['requestDevice']>) {
      const d = await requestDevice.apply(this, args);
      w.__devices.push(d);
      if (w.__destroyNewDevices) d.destroy();
      return d;
    };
    const submit = GPUQueue.prototype.submit;
    GPUQueue.prototype.submit = function (this: GPUQueue, ...args: Parameters<GPUQueue['submit']>) {
      submit.apply(this, args);
      if (w.__loseOnSubmit) {
        w.__loseOnSubmit = false;
        w.__devices.at(-1)!.destroy();
      }
    };
  });
  await page.setViewport({ width: 1280, height: 1000 });
  await page.goto(url);
  await page.waitForFunction(READY);
  return { page, errors };
}

/** Destroys the newest device the page holds (the one its context runs on). */
const loseDevice = (page: Page) => page.evaluate(() => (window as unknown as { __devices: GPUDevice[] }).__devices.at(-1)!.destroy());
const devicesMade = (page: Page) => page.evaluate(() => (window as unknown as { __devices: GPUDevice[] }).__devices.length);
/** Which of the recorded devices the demo's context runs on now (its index), or -1 without a context (the demo exposes its GPU session as `window.detlossDemo.gpu`). */
const contextDevice = (page: Page) =>
  page.evaluate(() => {
    const w = window as unknown as { __devices: GPUDevice[]; detlossDemo: { gpu: { context?: { device: GPUDevice } } } };
    const dl = w.detlossDemo.gpu.context;
    return dl ? w.__devices.indexOf(dl.device) : -1;
  });

/** The status line under the header: its state, its losses count and its text. */
async function gpuStatus(page: Page) {
  return page.$eval('#gpu-status', (e) => {
    const d = (e as HTMLElement).dataset;
    return { hidden: (e as HTMLElement).hidden, state: d.state, losses: Number(d.losses), text: e.textContent ?? '' };
  });
}

/** Every row equal to the CPU reference exactly (it is the CPU reference), and labelled as such. */
function checkCpuRows(rows: Row[], pred: number[], target: number[]) {
  for (const row of rows) {
    const [variant, mode] = row.key.split('/') as [IouParams['variant'], IouParams['mode']?];
    const ref = cpu.run('iou_loss', { pred: Float32Array.from(pred), target: Float32Array.from(target) }, { variant, ...(mode ? { mode } : {}), reduction: 'none' });
    expect(row.backend, row.key).toBe('cpu');
    expect(row.loss, row.key).toBe(ref.loss[0]);
    expect(row.grad, row.key).toEqual(Array.from(ref.grad.pred));
  }
}

/** Runs a timing of `op` on `n` rows and waits for its result. */
async function runTiming(page: Page, op: string, n: number) {
  await page.select('#op', op);
  await page.select('#n', String(n));
  await page.click('#run');
  await page.waitForFunction(() => ['done', 'error'].includes(document.querySelector<HTMLElement>('#timing-result')!.dataset.state!), { timeout: 60_000 });
  return timingState(page);
}

const timingState = (page: Page) =>
  page.$eval('#timing-result', (e) => {
    const d = (e as HTMLElement).dataset;
    return { state: d.state, gpuMs: d.gpuMs, cpuMs: Number(d.cpuMs), speedup: d.speedup, lost: d.lost, text: e.textContent ?? '', bars: document.querySelectorAll('#chart rect.bar').length };
  });

let gp: GpuPage;
beforeAll(async () => {
  mkdirSync(outDir, { recursive: true });
  await build({ configFile: demoConfig, logLevel: 'warn' });
  gp = await openPage(await serveStatic(demoDist), READY);
  await gp.page.setViewport({ width: 1280, height: 1000 });
});
afterAll(async () => {
  await gp?.close();
});

describe('the demo page (demo/, built with Vite) in headless Chromium', () => {
  it('drags the boxes, shows every iou_loss variant as the CPU reference computes it, and times an op', async () => {
    const { page } = gp;
    const device = await page.$eval('#device', (e) => ({ webgpu: (e as HTMLElement).dataset.webgpu, text: e.textContent }));
    console.log(`demo: ${device.text}`);
    expect(device.webgpu, 'the demo found no WebGPU adapter in headless Chromium').toBe('yes');

    const before = await settled(page);
    checkRows(before.rows, nums(before.pred), nums(before.target));
    const pred0 = nums(before.pred);

    // Move the prediction by (-60, +45), then pull its bottom-right corner out by (+30, +20).
    await drag(page, (pred0[0] + pred0[2]) / 2, (pred0[1] + pred0[3]) / 2, -60, 45);
    const moved = await settled(page);
    const pred1 = nums(moved.pred);
    expect(pred1[0] - pred0[0]).toBeCloseTo(-60, 0);
    expect(pred1[1] - pred0[1]).toBeCloseTo(45, 0);
    expect(pred1[2] - pred1[0]).toBeCloseTo(pred0[2] - pred0[0], 3);
    await drag(page, pred1[2], pred1[3], 30, 20);
    const after = await settled(page);
    const pred2 = nums(after.pred);
    expect(pred2[2] - pred1[2]).toBeCloseTo(30, 0);
    expect(pred2[3] - pred1[3]).toBeCloseTo(20, 0);
    expect(pred2[0]).toBe(pred1[0]);
    expect(after.target).toBe(before.target);
    checkRows(after.rows, pred2, nums(after.target));
    for (const row of after.rows) expect(row.backend, row.key).toBe('gpu');

    // A burst of 60 moves sent without waiting: recomputation is coalesced, and the latest state wins.
    const updates = () => page.$eval('#losses', (t) => Number((t as HTMLElement).dataset.updates));
    const u0 = await updates();
    await burstDrag(page, (pred2[0] + pred2[2]) / 2, (pred2[1] + pred2[3]) / 2, 60);
    const burst = await settled(page);
    const pred3 = nums(burst.pred);
    expect(pred3[0] - pred2[0]).toBeCloseTo(60, 0);
    expect(await updates()).toBeLessThan(u0 + 60);
    checkRows(burst.rows, pred3, nums(burst.target));

    // The timing panel: iou_loss on 1,000 boxes.
    await page.select('#op', 'iou_loss');
    await page.select('#n', '1000');
    await page.click('#run');
    await page.waitForFunction(() => ['done', 'error'].includes(document.querySelector<HTMLElement>('#timing-result')!.dataset.state!), { timeout: 45_000 });
    const timing = await page.$eval('#timing-result', (e) => {
      const d = (e as HTMLElement).dataset;
      return { state: d.state, speedup: d.speedup, text: e.textContent };
    });
    console.log(`demo timing: ${timing.text}`);
    expect(timing.state, timing.text ?? '').toBe('done');
    expect(Number(timing.speedup)).toBeGreaterThan(0);
    expect(Number.isFinite(Number(timing.speedup))).toBe(true);
    expect(await page.$$eval('#chart rect.bar', (r) => r.length)).toBe(2);

    await page.screenshot({ path: `${outDir}demo.png`, fullPage: true });
    expect(gp.errors).toEqual([]);
  });

  it('without WebGPU, says what is missing and still computes both panels on the CPU reference', async () => {
    const page = await gp.browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
    page.on('pageerror', (e) => errors.push(String((e as Error).message ?? e)));
    await page.evaluateOnNewDocument(() => {
      delete (Navigator.prototype as { gpu?: unknown }).gpu;
    });
    await page.setViewport({ width: 1280, height: 1000 });
    await page.goto(gp.page.url());
    await page.waitForFunction(READY);
    expect(await page.$eval('#no-webgpu', (e) => (e as HTMLElement).hidden)).toBe(false);
    expect(await page.$eval('#no-webgpu-reason', (e) => e.textContent)).toMatch(/navigator\.gpu is missing/);
    expect(await gpuStatus(page)).toMatchObject({ hidden: true, text: '' });
    const t = await settled(page);
    checkRows(t.rows, nums(t.pred), nums(t.target));
    for (const row of t.rows) expect(row.backend, row.key).toBe('cpu');
    await page.select('#n', '1000');
    await page.click('#run');
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#timing-result')!.dataset.state === 'done');
    expect(Number(await page.$eval('#timing-result', (e) => (e as HTMLElement).dataset.cpuMs))).toBeGreaterThan(0);
    await page.screenshot({ path: `${outDir}demo-no-webgpu.png`, fullPage: true });
    await page.close();
    expect(errors).toEqual([]);
  });
});

describe('the demo page after its GPU device is lost', () => {
  it('re-creates its context, says so, and computes on the new device again (playground and timing)', async () => {
    const { page, errors } = await openLossPage(gp.page.url());
    const before = await settled(page);
    expect(await gpuStatus(page)).toMatchObject({ hidden: true });
    expect(await devicesMade(page)).toBe(1);
    expect(await contextDevice(page)).toBe(0);
    const pred0 = nums(before.pred);

    // Lose the device while a call is in flight (right after its submit): the call fails with device_lost,
    // the page opens a new context and retries on it.
    await page.evaluate(() => {
      (window as unknown as { __loseOnSubmit: boolean }).__loseOnSubmit = true;
    });
    await drag(page, (pred0[0] + pred0[2]) / 2, (pred0[1] + pred0[3]) / 2, -40, 30);
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#gpu-status')!.dataset.state === 'recovered');
    const after = await settled(page);
    const pred1 = nums(after.pred);
    expect(pred1[0] - pred0[0]).toBeCloseTo(-40, 0);
    const status = await gpuStatus(page);
    console.log(`demo after a loss: ${status.text}`);
    expect(status).toMatchObject({ hidden: false, state: 'recovered', losses: 1 });
    expect(status.text).toMatch(/^GPU device lost \(destroyed\b[^)]*\); recreated the context\. Computing on the GPU again\.$/);
    expect(await devicesMade(page)).toBe(2);
    expect(await contextDevice(page)).toBe(1);
    expect(await page.$eval('#device', (e) => [(e as HTMLElement).dataset.webgpu, e.textContent])).toEqual(['yes', expect.stringMatching(/^WebGPU: on \(a new device after a loss\)\. Adapter: /)]);
    checkRows(after.rows, pred1, nums(after.target));
    for (const row of after.rows) expect(row.backend, row.key).toBe('gpu');
    expect(await page.$eval('#computed-by', (e) => e.textContent)).toBe('GPU (WebGPU)');

    // The timing panel runs on the new device.
    const t1 = await runTiming(page, 'iou_loss', 1000);
    expect(t1.state, t1.text).toBe('done');
    expect(Number(t1.gpuMs)).toBeGreaterThan(0);
    expect(Number.isFinite(Number(t1.speedup))).toBe(true);
    expect(t1.bars).toBe(2);
    expect(t1.lost).toBe('');

    // The new device is lost in the middle of a timing: the GPU part starts over on a third device.
    await page.select('#op', 'smooth_l1');
    await page.select('#n', '100000');
    await page.click('#run');
    await page.waitForFunction(() => /^GPU: run [2-7] of 7$/.test(document.querySelector('#progress-text')!.textContent ?? ''), { timeout: 60_000 });
    await loseDevice(page);
    await page.waitForFunction(() => ['done', 'error'].includes(document.querySelector<HTMLElement>('#timing-result')!.dataset.state!), { timeout: 60_000 });
    const t2 = await timingState(page);
    console.log(`demo timing across a loss: ${t2.text}`);
    expect(t2.state, t2.text).toBe('done');
    expect(t2.lost).toBe('yes');
    expect(Number(t2.gpuMs)).toBeGreaterThan(0);
    expect(t2.bars).toBe(2);
    expect(t2.text).toMatch(/During this timing: GPU device lost \(destroyed\b[^)]*\); recreated the context\./);
    expect(await devicesMade(page)).toBe(3);
    expect(await contextDevice(page)).toBe(2);
    expect(await gpuStatus(page)).toMatchObject({ state: 'recovered', losses: 2 });

    // And the playground still computes on the GPU, right.
    const again = await settled(page);
    await drag(page, nums(again.pred)[2], nums(again.pred)[3], 25, 15);
    const last = await settled(page);
    expect(nums(last.pred)[2] - nums(again.pred)[2]).toBeCloseTo(25, 0);
    checkRows(last.rows, nums(last.pred), nums(last.target));
    for (const row of last.rows) expect(row.backend, row.key).toBe('gpu');

    await page.screenshot({ path: `${outDir}demo-device-recreated.png`, fullPage: true });
    await page.close();
    expect(errors).toEqual([]);
  });

  it('without a new adapter, falls back to the CPU reference and says so (playground and timing)', async () => {
    const { page, errors } = await openLossPage(gp.page.url());
    const before = await settled(page);
    const pred0 = nums(before.pred);
    await page.evaluate(() => {
      navigator.gpu.requestAdapter = async () => null;
    });
    // Lost while idle: the page hears of it from device.lost.
    await loseDevice(page);
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#gpu-status')!.dataset.state === 'cpu');
    await drag(page, (pred0[0] + pred0[2]) / 2, (pred0[1] + pred0[3]) / 2, 50, -20);
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#gpu-status')!.dataset.state === 'cpu');
    const after = await settled(page);
    const pred1 = nums(after.pred);
    expect(pred1[0] - pred0[0]).toBeCloseTo(50, 0);
    const status = await gpuStatus(page);
    console.log(`demo after a loss without an adapter: ${status.text}`);
    expect(status).toMatchObject({ hidden: false, state: 'cpu', losses: 1 });
    expect(status.text).toMatch(
      /^GPU device lost \(destroyed\b[^)]*\); no new device could be opened \(WebGPU is present but no GPU adapter was found\..*\), so everything now runs on the float64 CPU reference\. Reload the page to try the GPU again\.$/,
    );
    expect(await page.$eval('#device', (e) => [(e as HTMLElement).dataset.webgpu, e.textContent])).toEqual([
      'lost',
      'WebGPU: the device was lost. Everything below now runs on the float64 CPU reference.',
    ]);
    checkRows(after.rows, pred1, nums(after.target));
    checkCpuRows(after.rows, pred1, nums(after.target));
    expect(await page.$eval('#computed-by', (e) => e.textContent)).toBe('CPU reference');
    expect(await page.$eval('#losses tbody tr td.backend', (e) => e.textContent)).toBe('CPU reference');

    // The timing panel: the ops are labelled CPU only, and a timing gives the CPU reference alone.
    expect(await page.$eval('#op option[value="smooth_l1"]', (e) => e.textContent)).toBe('smooth_l1 (CPU only)');
    const t = await runTiming(page, 'iou_loss', 1000);
    expect(t.state, t.text).toBe('done');
    expect(t.gpuMs).toBe('');
    expect(t.cpuMs).toBeGreaterThan(0);
    expect(t.bars).toBe(1);
    expect(t.text).toMatch(/CPU reference .* ms \(median of 7\); no GPU time \(the GPU device was lost\)\./);
    expect(await page.$eval('#chart', (e) => e.textContent)).toMatch(/not run \(the GPU device was lost\)/);

    // Later changes stay on the CPU reference, exactly.
    await drag(page, pred1[2], pred1[3], -30, -10);
    const last = await settled(page);
    checkCpuRows(last.rows, nums(last.pred), nums(last.target));
    expect(await devicesMade(page)).toBe(1);
    expect(await contextDevice(page)).toBe(-1);

    await page.screenshot({ path: `${outDir}demo-device-lost-cpu.png`, fullPage: true });
    await page.close();
    expect(errors).toEqual([]);
  });

  it('when the new device is lost too before it computes anything, stays on the CPU reference', async () => {
    const { page, errors } = await openLossPage(gp.page.url());
    const before = await settled(page);
    const pred0 = nums(before.pred);
    await page.evaluate(() => {
      (window as unknown as { __destroyNewDevices: boolean }).__destroyNewDevices = true;
    });
    await loseDevice(page);
    await drag(page, (pred0[0] + pred0[2]) / 2, (pred0[1] + pred0[3]) / 2, 20, 20);
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#gpu-status')!.dataset.state === 'cpu');
    const after = await settled(page);
    const status = await gpuStatus(page);
    console.log(`demo after two losses: ${status.text}`);
    expect(status).toMatchObject({ state: 'cpu', losses: 2 });
    expect(status.text).toMatch(/^GPU device lost again \(destroyed\b[^)]*\) before the recreated context finished a computation; computing on the CPU reference from now on\./);
    expect(await devicesMade(page)).toBe(2);
    expect(await contextDevice(page)).toBe(-1);
    checkCpuRows(after.rows, nums(after.pred), nums(after.target));
    await page.close();
    expect(errors).toEqual([]);
  });
});
