import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Page } from 'puppeteer-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../src/cpu';
import { openPage, serveStatic, type GpuPage } from '../../src/node/browser';

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
    const [variant, mode] = row.key.split('/');
    const ref = cpu.run('iou_loss', { pred: Float32Array.from(pred), target: Float32Array.from(target) }, { variant, ...(mode ? { mode } : {}), reduction: 'none' });
    expect(Math.abs(row.loss - ref.loss[0]), `${row.key}: loss ${row.loss} vs ${ref.loss[0]}`).toBeLessThanOrEqual(1e-4 + 1e-3 * Math.abs(ref.loss[0]));
    for (let k = 0; k < 4; k++) {
      const want = ref.grad.pred[k];
      expect(Math.abs(row.grad[k] - want), `${row.key}: grad[${k}] ${row.grad[k]} vs ${want}`).toBeLessThanOrEqual(1e-5 + 1e-3 * Math.abs(want));
    }
  }
}

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
