import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Page } from 'puppeteer-core';
import { build } from 'vite';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BOXES } from '../../demo/playground/boxes';
import { cpu } from '../../src/cpu';
import type { OpParams } from '../../src/ops/op-types';
import { openPage, serveStatic } from '../../src/tools/browser';
import { useBrowserPage } from '../helpers/browser-page';
import { note } from '../helpers/note';

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
  /** The params the page passed beyond the variant (and mode), as JSON. */
  params: string;
  /** The library's message when it refused them. */
  error?: string;
}

/** Every variant the playground lists, as its page key. */
const KEYS = ['iou/linear', 'iou/square', 'iou/log', 'giou', 'diou', 'ciou', 'eiou', 'siou', 'mpdiou', 'shape', 'wiou'];
/** The params the page passes at start: mpdiou's imageSize is the canvas (640 x 400); the rest are at their defaults, so not passed. */
const START_PARAMS: Record<string, IouParams> = { mpdiou: { imageSize: [640, 400] } };
/** iou_loss params for page key `key` ('iou/square' or 'giou') with `extra`. */
const keyParams = (key: string, extra: IouParams = {}): IouParams => {
  const [variant, mode] = key.split('/') as [IouParams['variant'], IouParams['mode']?];
  return { variant, ...(mode ? { mode } : {}), ...extra };
};

type IouParams = OpParams<'iou_loss'>;
const nums = (s: string | undefined) => (s ?? '').split(',').map(Number);

async function tableState(page: Page) {
  return page.evaluate(() => {
    const table = document.querySelector<HTMLTableElement>('#losses')!;
    const rows = Array.from(table.tBodies[0].rows).map((tr) => ({
      key: tr.dataset.variant!,
      loss: Number(tr.dataset.loss),
      grad: (tr.dataset.grad ?? '').split(',').map(Number),
      backend: tr.dataset.backend!,
      params: tr.dataset.params!,
      error: tr.dataset.error,
    }));
    return { pred: table.dataset.pred, target: table.dataset.target, rows };
  });
}

/** Waits until the table shows results for the boxes the canvas holds now, and for the latest change of the params. */
async function settled(page: Page) {
  await page.waitForFunction(() => {
    const t = document.querySelector<HTMLElement>('#losses')!.dataset;
    const c = document.querySelector<HTMLElement>('#boxes')!.dataset;
    return t.pred !== undefined && t.pred === c.pred && t.target === c.target && t.rev === c.rev;
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

/**
 * Every row against the CPU reference on the boxes the page reports (loss 1e-4 + 1e-3 rel, as the fixtures' atan/exp cases),
 * each with the params the test set for it (`params`, by key; START_PARAMS by default), which must be what the page passed.
 */
function checkRows(rows: Row[], pred: number[], target: number[], params: Record<string, IouParams> = START_PARAMS) {
  expect(rows.map((r) => r.key)).toEqual(KEYS);
  for (const row of rows) {
    const extra = params[row.key] ?? {};
    expect(row.error, row.key).toBeUndefined();
    expect(JSON.parse(row.params), row.key).toEqual(extra);
    const ref = cpu.run('iou_loss', { pred: Float32Array.from(pred), target: Float32Array.from(target) }, { ...keyParams(row.key, extra), reduction: 'none' });
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

/**
 * Rows whose reference raises to a non-integer power (Wise-IoU v3's alpha^(beta - delta)): Math.pow is not
 * correctly rounded, and Chromium's V8 and Node's give different last bits for about one argument in ten.
 */
const POW_ROWS = new Set(['wiou']);
/** `a` and `b` equal, or (for POW_ROWS) within 4 units in the last place of float64. */
const sameNumber = (key: string, a: number, b: number) => (POW_ROWS.has(key) ? Math.abs(a - b) <= 4 * Number.EPSILON * Math.max(Math.abs(a), Math.abs(b)) : a === b);

/** Every row equal to the CPU reference exactly (it is the CPU reference, run in the page's engine), and labelled as such. */
function checkCpuRows(rows: Row[], pred: number[], target: number[]) {
  for (const row of rows) {
    const ref = cpu.run('iou_loss', { pred: Float32Array.from(pred), target: Float32Array.from(target) }, { ...keyParams(row.key, START_PARAMS[row.key]), reduction: 'none' });
    expect(row.backend, row.key).toBe('cpu');
    expect(sameNumber(row.key, row.loss, ref.loss[0]), `${row.key}: loss ${row.loss} vs ${ref.loss[0]}`).toBe(true);
    expect(row.grad.length, row.key).toBe(4);
    row.grad.forEach((g, k) => expect(sameNumber(row.key, g, ref.grad.pred[k]), `${row.key}: grad[${k}] ${g} vs ${ref.grad.pred[k]}`).toBe(true));
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

/** The params whose controls the playground shows now, in page order. */
const controlsShown = (page: Page) => page.$$eval('#variant-params label.param', (ls) => ls.map((l) => (l as HTMLElement).dataset.param));

/** Selects a variant in the page's select, as a user would. */
const selectVariant = (page: Page, key: string) => page.select('#variant', key);

/** Sets a control of the chosen variant (`index` 0 or 1 for a pair's fields) as typing or picking would, firing its event. */
async function setControl(page: Page, param: string, value: string, index?: number) {
  const ok = await page.evaluate(
    (param, value, index) => {
      const sel = index === null ? `#variant-params [data-param="${param}"]:is(input, select)` : `#variant-params input[data-param="${param}"][data-index="${index}"]`;
      const e = document.querySelector<HTMLInputElement | HTMLSelectElement>(sel);
      if (!e) return false;
      e.value = value;
      e.dispatchEvent(new Event(e instanceof HTMLSelectElement ? 'change' : 'input', { bubbles: true }));
      return true;
    },
    param,
    value,
    index ?? null,
  );
  expect(ok, `no control for ${param}${index === undefined ? '' : `[${index}]`}`).toBe(true);
}

/** Pixels of the canvas in the arrows' colour (#e4572e): the drawn arrows and their labels. */
const arrowPixels = (page: Page) =>
  page.$eval('#boxes', (c) => {
    const canvas = c as HTMLCanvasElement;
    const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 0xe4) < 14 && Math.abs(d[i + 1] - 0x57) < 14 && Math.abs(d[i + 2] - 0x2e) < 14 && d[i + 3] > 200) n++;
    return n;
  });

/** What the page shows about the chosen variant: its arrows, the refusal under the controls, the legend. */
const shown = (page: Page) =>
  page.evaluate(() => {
    const err = document.querySelector<HTMLElement>('#param-error')!;
    const c = document.querySelector<HTMLElement>('#boxes')!.dataset;
    return {
      variant: c.variant,
      arrows: Number(c.arrows),
      error: err.hidden ? undefined : err.textContent,
      invalid: Array.from(document.querySelectorAll<HTMLElement>('#variant-params [aria-invalid="true"]')).map((e) => e.dataset.param),
      legend: document.querySelector('#grad-legend')!.textContent ?? '',
    };
  });

/**
 * Waits for the page to settle, then checks the row of `key` against cpu.run with `extra`: the params the page passed,
 * the loss and gradient, a finite gradient that is not all zero, computed on the GPU, and its arrows on the canvas.
 */
async function checkVariant(page: Page, key: string, extra: IouParams) {
  const t = await settled(page);
  const row = t.rows.find((r) => r.key === key)!;
  expect(row.error, `${key}: ${row.error}`).toBeUndefined();
  expect(JSON.parse(row.params), key).toEqual(extra);
  expect(row.backend, key).toBe('gpu');
  const ref = cpu.run('iou_loss', { pred: Float32Array.from(nums(t.pred)), target: Float32Array.from(nums(t.target)) }, { ...keyParams(key, extra), reduction: 'none' });
  expect(Math.abs(row.loss - ref.loss[0]), `${key} ${JSON.stringify(extra)}: loss ${row.loss} vs ${ref.loss[0]}`).toBeLessThanOrEqual(1e-4 + 1e-3 * Math.abs(ref.loss[0]));
  for (let k = 0; k < 4; k++) {
    const want = ref.grad.pred[k];
    expect(Math.abs(row.grad[k] - want), `${key} ${JSON.stringify(extra)}: grad[${k}] ${row.grad[k]} vs ${want}`).toBeLessThanOrEqual(1e-5 + 1e-3 * Math.abs(want));
  }
  expect(row.grad.every(Number.isFinite), key).toBe(true);
  expect(Math.max(...row.grad.map(Math.abs)), key).toBeGreaterThan(1e-6);
  const s = await shown(page);
  expect(s.variant).toBe(key);
  expect(s.error).toBeUndefined();
  expect(s.invalid).toEqual([]);
  expect(s.arrows, key).toBeGreaterThan(0);
  expect(await arrowPixels(page), key).toBeGreaterThan(40);
  return { row, ref, rows: t.rows };
}

/** The library's message for iou_loss with these params on these boxes (it must refuse them). */
function refusal(key: string, extra: IouParams, pred: number[], target: number[]): string {
  try {
    cpu.run('iou_loss', { pred: Float32Array.from(pred), target: Float32Array.from(target) }, { ...keyParams(key, extra), reduction: 'none' });
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error(`cpu.run accepted ${key} with ${JSON.stringify(extra)}`);
}

/** Waits for the page to settle and checks that it shows the library's refusal of `extra` for `key`: in its row and under the controls, the control at fault marked, no arrows. */
async function checkRefused(page: Page, key: string, extra: IouParams, param: string) {
  const t = await settled(page);
  const message = refusal(key, extra, nums(t.pred), nums(t.target));
  const row = t.rows.find((r) => r.key === key)!;
  expect(row.error).toBe(message);
  expect(JSON.parse(row.params)).toEqual(JSON.parse(JSON.stringify(extra)));
  const s = await shown(page);
  expect(s.error).toBe(message);
  expect(s.invalid.length).toBeGreaterThan(0);
  expect(new Set(s.invalid)).toEqual(new Set([param]));
  expect(s.arrows).toBe(0);
  expect(await arrowPixels(page)).toBe(0);
  expect(s.legend).toMatch(/refuses these params/);
  // The other rows still compute.
  for (const r of t.rows) if (r.key !== key) expect(r.error, r.key).toBeUndefined();
  return message;
}

const gp = useBrowserPage(
  async () => {
    mkdirSync(outDir, { recursive: true });
    await build({ configFile: demoConfig, logLevel: 'warn' });
    const server = await serveStatic(demoDist);
    return openPage({ url: `${server.url}playground/index.html`, close: server.close }, READY);
  },
  { viewport: { width: 1280, height: 1000 } },
);

describe('the playground (demo/playground/, built with Vite) in headless Chromium', () => {
  it('drags the boxes, shows every iou_loss variant as the CPU reference computes it, and times an op', async () => {
    const { page } = gp;
    const device = await page.$eval('#device', (e) => ({ webgpu: (e as HTMLElement).dataset.webgpu, text: e.textContent }));
    console.log(`demo: ${device.text}`);
    expect(device.webgpu, 'the demo found no WebGPU adapter in headless Chromium').toBe('yes');

    const before = await settled(page);
    checkRows(before.rows, nums(before.pred), nums(before.target));
    const pred0 = nums(before.pred);

    // The page opens with the demo's default boxes, whose aspect ratios differ, so that CIoU's aspect
    // term shows: CIoU and DIoU differ visibly there, on the page and in cpu.run.
    expect(pred0).toEqual([...DEFAULT_BOXES.pred]);
    expect(nums(before.target)).toEqual([...DEFAULT_BOXES.target]);
    const loss = (key: string) => before.rows.find((r) => r.key === key)!.loss;
    console.log(`demo defaults: pred [${pred0}], target [${nums(before.target)}]: DIoU ${loss('diou').toFixed(6)}, CIoU ${loss('ciou').toFixed(6)}`);
    expect(loss('ciou') - loss('diou')).toBeGreaterThan(1e-3);
    const atDefaults = (variant: 'diou' | 'ciou') =>
      cpu.run('iou_loss', { pred: Float32Array.from(DEFAULT_BOXES.pred), target: Float32Array.from(DEFAULT_BOXES.target) }, { variant, reduction: 'none' }).loss[0];
    expect(atDefaults('ciou') - atDefaults('diou')).toBeGreaterThan(1e-3);
    // The other variants differ from each other too (by more than 1e-3, pairwise, at six digits).
    const shownLosses = before.rows.map((r) => r.loss).sort((a, b) => a - b);
    for (let i = 1; i < shownLosses.length; i++) expect(shownLosses[i] - shownLosses[i - 1], `losses ${shownLosses}`).toBeGreaterThan(1e-3);

    // MPDIoU's row names the imageSize it passes in the table's normal small print, not in a colour that reads as an error.
    const paramsStyle = await page.$eval('#losses tr[data-variant="mpdiou"] th', (th) => {
      const [formula, params] = Array.from(th.querySelectorAll('small'));
      return { text: params.textContent, color: getComputedStyle(params).color, formulaColor: getComputedStyle(formula).color, rowError: th.parentElement!.classList.contains('error') };
    });
    expect(paramsStyle.text).toBe('imageSize [640, 400]');
    expect(paramsStyle.rowError).toBe(false);
    expect(paramsStyle.color).toBe(paramsStyle.formulaColor);
    expect(paramsStyle.color).not.toBe('rgb(180, 35, 24)'); // #b42318, the refusals' colour
    expect(paramsStyle.color).not.toBe('rgb(228, 87, 46)'); // #e4572e, the arrows' colour

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

describe("the box playground's newer variants and their params", () => {
  it('lists mpdiou, shape and wiou, shows only the params that apply as controls, computes them as cpu.run does, draws their arrows, and shows refusals as the library says them', async () => {
    const page = await gp.browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
    page.on('pageerror', (e) => errors.push(String((e as Error).message ?? e)));
    await page.setViewport({ width: 1280, height: 1000 });
    await page.goto(gp.page.url());
    await page.waitForFunction(READY);
    const start = await settled(page);
    checkRows(start.rows, nums(start.pred), nums(start.target));
    expect(await page.$$eval('#variant option', (o) => o.map((x) => (x as HTMLOptionElement).value))).toEqual(KEYS);

    // Only the params that apply to the chosen variant have controls.
    const expectControls: Record<string, string[]> = {
      'iou/linear': ['power', 'innerRatio', 'focaler'],
      'iou/square': ['innerRatio', 'focaler'],
      'iou/log': ['innerRatio', 'focaler'],
      giou: ['power', 'innerRatio', 'focaler'],
      diou: ['power', 'innerRatio', 'focaler'],
      ciou: ['ciouAlpha', 'power', 'innerRatio', 'focaler'],
      eiou: ['innerRatio', 'focaler'],
      siou: ['innerRatio', 'focaler'],
      mpdiou: ['imageSize', 'innerRatio', 'focaler'],
      shape: ['scale', 'innerRatio', 'focaler'],
      wiou: ['wiouVersion', 'iouMean', 'wiouAlpha', 'wiouDelta', 'innerRatio', 'focaler'],
    };
    for (const key of KEYS) {
      await selectVariant(page, key);
      expect(await controlsShown(page), key).toEqual(expectControls[key]);
    }

    // MPDIoU: imageSize starts as the canvas; a larger image weighs the corner distances less.
    await selectVariant(page, 'mpdiou');
    expect(await page.$$eval('#variant-params input[data-param="imageSize"]', (i) => i.map((x) => (x as HTMLInputElement).value))).toEqual(['640', '400']);
    const mpd0 = await checkVariant(page, 'mpdiou', { imageSize: [640, 400] });
    await setControl(page, 'imageSize', '1280', 0);
    await setControl(page, 'imageSize', '800', 1);
    const mpd1 = await checkVariant(page, 'mpdiou', { imageSize: [1280, 800] });
    expect(mpd1.row.loss).toBeLessThan(mpd0.row.loss);
    await setControl(page, 'imageSize', '0', 1);
    await checkRefused(page, 'mpdiou', { imageSize: [1280, 0] }, 'imageSize');
    await setControl(page, 'imageSize', '800', 1);
    await checkVariant(page, 'mpdiou', { imageSize: [1280, 800] });

    // Shape-IoU with a scale.
    await selectVariant(page, 'shape');
    const shape0 = await checkVariant(page, 'shape', {});
    await setControl(page, 'scale', '1.5');
    const shape1 = await checkVariant(page, 'shape', { scale: 1.5 });
    expect(shape1.row.loss).not.toBe(shape0.row.loss);

    // Wise-IoU: its mean, alpha and delta, then each version.
    await selectVariant(page, 'wiou');
    await setControl(page, 'iouMean', '0.5');
    await setControl(page, 'wiouAlpha', '1.5');
    await setControl(page, 'wiouDelta', '2.5');
    const wiouCommon = { iouMean: 0.5, wiouAlpha: 1.5, wiouDelta: 2.5 };
    const w3 = await checkVariant(page, 'wiou', wiouCommon);
    await setControl(page, 'wiouVersion', '1');
    const w1 = await checkVariant(page, 'wiou', { wiouVersion: 1, ...wiouCommon });
    await setControl(page, 'wiouVersion', '2');
    const w2 = await checkVariant(page, 'wiou', { wiouVersion: 2, ...wiouCommon });
    expect(new Set([w1.row.loss, w2.row.loss, w3.row.loss]).size).toBe(3);
    await setControl(page, 'iouMean', '-1');
    await checkRefused(page, 'wiou', { wiouVersion: 2, ...wiouCommon, iouMean: -1 }, 'iouMean');
    await setControl(page, 'iouMean', '0.5');

    // CIoU with mmdetection's alpha; with power too, the library's refusal; back to power 1 (not passed).
    await selectVariant(page, 'ciou');
    await setControl(page, 'ciouAlpha', 'mmdet');
    await checkVariant(page, 'ciou', { ciouAlpha: 'mmdet' });
    await setControl(page, 'power', '2');
    const mmdetPower = await checkRefused(page, 'ciou', { ciouAlpha: 'mmdet', power: 2 }, 'power');
    expect(mmdetPower).toMatch(/power .*ciouAlpha 'mmdet'/);
    await setControl(page, 'power', '1');
    await checkVariant(page, 'ciou', { ciouAlpha: 'mmdet' });

    // GIoU with Alpha-IoU's power; a field that holds no number is refused as NaN.
    await selectVariant(page, 'giou');
    const giou0 = await checkVariant(page, 'giou', {});
    await setControl(page, 'power', '3');
    const giou3 = await checkVariant(page, 'giou', { power: 3 });
    expect(Math.abs(giou3.row.loss - giou0.row.loss)).toBeGreaterThan(1e-3);
    await setControl(page, 'power', '');
    await checkRefused(page, 'giou', { power: NaN }, 'power');
    await setControl(page, 'power', '0.5');
    await checkRefused(page, 'giou', { power: 0.5 }, 'power');
    await setControl(page, 'power', '3');
    await checkVariant(page, 'giou', { power: 3 });

    // DIoU with Inner-IoU (the slider) and Focaler-IoU together; then focaler with d >= u.
    await selectVariant(page, 'diou');
    await setControl(page, 'innerRatio', '0.8');
    await setControl(page, 'focaler', '0.1', 0);
    await setControl(page, 'focaler', '0.9', 1);
    const diou = await checkVariant(page, 'diou', { innerRatio: 0.8, focaler: [0.1, 0.9] });
    expect(await page.$eval('#variant-params label[data-param="innerRatio"] output', (o) => o.textContent)).toBe('0.80');
    const diouPlain = cpu.run('iou_loss', { pred: Float32Array.from(nums(start.pred)), target: Float32Array.from(nums(start.target)) }, { variant: 'diou', reduction: 'none' });
    expect(Math.abs(diou.row.loss - diouPlain.loss[0])).toBeGreaterThan(1e-3);
    await setControl(page, 'focaler', '0.95', 0);
    const dGeU = await checkRefused(page, 'diou', { innerRatio: 0.8, focaler: [0.95, 0.9] }, 'focaler');
    expect(dGeU).toMatch(/focaler .*d < u/);
    await setControl(page, 'focaler', '0.1', 0);
    await checkVariant(page, 'diou', { innerRatio: 0.8, focaler: [0.1, 0.9] });

    // Focaler on the linear IoU loss, with these boxes' IoU (0.33) below d: the IoU term is clamped to 0,
    // so the loss is 1 with a zero gradient, and no arrows are drawn.
    await selectVariant(page, 'iou/linear');
    await setControl(page, 'focaler', '0.5', 0);
    const clamped = await settled(page);
    const lin = clamped.rows.find((r) => r.key === 'iou/linear')!;
    expect(1 - Number(start.rows[0].loss)).toBeLessThan(0.5);
    expect(JSON.parse(lin.params)).toEqual({ focaler: [0.5, 1] });
    expect(lin.loss).toBe(1);
    expect(lin.grad).toEqual([0, 0, 0, 0]);
    expect((await shown(page)).arrows).toBe(0);
    expect(await arrowPixels(page)).toBe(0);
    expect((await shown(page)).legend).toMatch(/gradient is zero here/);

    // Every row keeps its own params through a drag of the boxes, and still matches cpu.run.
    const params: Record<string, IouParams> = {
      'iou/linear': { focaler: [0.5, 1] },
      giou: { power: 3 },
      diou: { innerRatio: 0.8, focaler: [0.1, 0.9] },
      ciou: { ciouAlpha: 'mmdet' },
      mpdiou: { imageSize: [1280, 800] },
      shape: { scale: 1.5 },
      wiou: { wiouVersion: 2, ...wiouCommon },
    };
    const before = await settled(page);
    checkRows(before.rows, nums(before.pred), nums(before.target), params);
    const p0 = nums(before.pred);
    // Move the prediction's centre onto the target's (IoU above 0.5, so mmdetection's alpha is no longer 0).
    const t0 = nums(before.target);
    await drag(page, (p0[0] + p0[2]) / 2, (p0[1] + p0[3]) / 2, (t0[0] + t0[2] - p0[0] - p0[2]) / 2, (t0[1] + t0[3] - p0[1] - p0[3]) / 2);
    const after = await settled(page);
    const p1 = nums(after.pred);
    expect(1 - cpu.run('iou_loss', { pred: Float32Array.from(p1), target: Float32Array.from(nums(after.target)) }, { reduction: 'none' }).loss[0]).toBeGreaterThan(0.5);
    checkRows(after.rows, p1, nums(after.target), params);
    for (const row of after.rows) expect(row.backend, row.key).toBe('gpu');
    for (const key of ['mpdiou', 'shape', 'wiou', 'ciou', 'giou', 'diou']) {
      await selectVariant(page, key);
      await checkVariant(page, key, params[key]);
    }

    await page.screenshot({ path: `${outDir}demo-params.png`, fullPage: true });
    await page.close();
    expect(errors).toEqual([]);
  });
});

/** The rotated table: the (cx, cy, w, h, theta) rows it was computed for (float32), its rows, and the canvas's angles. */
async function rotatedState(page: Page) {
  return page.evaluate(() => {
    const table = document.querySelector<HTMLTableElement>('#rlosses')!;
    const canvas = document.querySelector<HTMLElement>('#boxes')!.dataset;
    const rows = Array.from(table.tBodies[0].rows).map((tr) => ({
      key: tr.dataset.variant!,
      loss: Number(tr.dataset.loss),
      grad: (tr.dataset.grad ?? '').split(',').map(Number),
      backend: tr.dataset.backend!,
    }));
    return { pred: table.dataset.pred, target: table.dataset.target, angles: canvas.angles, rotated: canvas.rotated, rows };
  });
}

/** Waits until both tables show results for the latest change (boxes and angles), then reads both. */
async function settledRotated(page: Page) {
  await page.waitForFunction(() => {
    const r = document.querySelector<HTMLElement>('#rlosses')!.dataset;
    const c = document.querySelector<HTMLElement>('#boxes')!.dataset;
    return r.rev !== undefined && r.rev === c.rev;
  });
  return { axis: await settled(page), rot: await rotatedState(page) };
}

/** The rotated variants the rotated table lists, as page keys 'r/<variant>'. */
const RKEYS = ['probiou', 'gwd', 'kld', 'jd', 'kld_symmax', 'kld_symmin', 'kfiou'].map((v) => `r/${v}`);
type RotRow = Awaited<ReturnType<typeof rotatedState>>['rows'][number];
type RotVariant = OpParams<'rotated_iou_loss'>['variant'];

/** cpu.run of rotated_iou_loss for page key `key` on these rows (each variant at its defaults, as the page calls it). */
const rotatedRef = (key: string, pred: number[], target: number[]) =>
  cpu.run('rotated_iou_loss', { pred: Float32Array.from(pred), target: Float32Array.from(target) }, { variant: key.slice(2) as RotVariant, reduction: 'none' });

/** Every rotated row computed on the GPU, and equal to cpu.run on the rows the page reports (the iou_loss tolerances). */
function checkRotatedRows(rows: RotRow[], pred: number[], target: number[]) {
  expect(rows.map((r) => r.key)).toEqual(RKEYS);
  for (const row of rows) {
    const ref = rotatedRef(row.key, pred, target);
    expect(row.backend, row.key).toBe('gpu');
    expect(Math.abs(row.loss - ref.loss[0]), `${row.key}: loss ${row.loss} vs ${ref.loss[0]}`).toBeLessThanOrEqual(1e-4 + 1e-3 * Math.abs(ref.loss[0]));
    expect(row.grad.length, row.key).toBe(5);
    for (let k = 0; k < 5; k++) {
      const want = ref.grad.pred[k];
      expect(Math.abs(row.grad[k] - want), `${row.key}: grad[${k}] ${row.grad[k]} vs ${want}`).toBeLessThanOrEqual(1e-5 + 1e-3 * Math.abs(want));
    }
  }
}

/** KFIoU's centre term without deltas: smooth-L1 (beta 1/9, its default) of the centre offset, summed over x and y. */
const kfiouXy = (pred: number[], target: number[]) =>
  [0, 1].reduce((sum, k) => {
    const e = Math.abs(pred[k] - target[k]);
    return sum + (e < 1 / 9 ? (0.5 * e * e) / (1 / 9) : e - 0.5 / 9);
  }, 0);

/** The page position (canvas units) of the rotation handle of box `b` (x1, y1, x2, y2) turned by `theta`: 26 px beyond its top edge. */
const handleOf = (b: number[], theta: number): [number, number] => {
  const arm = (b[3] - b[1]) / 2 + 26;
  return [(b[0] + b[2]) / 2 + arm * Math.sin(theta), (b[1] + b[3]) / 2 - arm * Math.cos(theta)];
};

describe("the box playground's rotated mode", () => {
  it('turns a box with its handle, computes the rotated losses on the GPU as cpu.run does, leaves them unchanged when the pair turns together, and keeps the axis-aligned losses on the axis-aligned boxes', async () => {
    const page = await gp.browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
    page.on('pageerror', (e) => errors.push(String((e as Error).message ?? e)));
    await page.setViewport({ width: 1280, height: 1000 });
    await page.goto(gp.page.url());
    await page.waitForFunction(READY);
    const plain = await settled(page);
    expect(await page.$eval('#rotated-panel', (e) => (e as HTMLElement).hidden)).toBe(true);

    // Rotated mode on: the rotated table appears, at theta = 0, and the axis-aligned rows are what they were.
    await page.click('#rotated-mode');
    const s0 = await settledRotated(page);
    expect(await page.$eval('#rotated-panel', (e) => (e as HTMLElement).hidden)).toBe(false);
    expect(s0.rot.rotated).toBe('true');
    expect(nums(s0.rot.angles)).toEqual([0, 0]);
    const p0 = nums(s0.axis.pred);
    const t0 = nums(s0.axis.target);
    const rp0 = nums(s0.rot.pred);
    const rt0 = nums(s0.rot.target);
    expect(rp0).toEqual([(p0[0] + p0[2]) / 2, (p0[1] + p0[3]) / 2, p0[2] - p0[0], p0[3] - p0[1], 0]);
    expect(rt0).toEqual([(t0[0] + t0[2]) / 2, (t0[1] + t0[3]) / 2, t0[2] - t0[0], t0[3] - t0[1], 0]);
    checkRotatedRows(s0.rot.rows, rp0, rt0);
    checkRows(s0.axis.rows, p0, t0);
    expect(s0.axis.rows.map((r) => r.loss)).toEqual(plain.rows.map((r) => r.loss));
    expect(await page.$eval('#variant', (e) => (e as HTMLSelectElement).value)).toBe('r/probiou');
    expect((await shown(page)).arrows).toBeGreaterThan(0);
    expect(await arrowPixels(page)).toBeGreaterThan(40);
    for (const row of s0.rot.rows) console.log(`demo rotated at theta 0: ${row.key} ${row.loss.toFixed(6)} grad [${row.grad.map((g) => g.toExponential(3))}]`);

    // Shift-drag the target's handle: the pair turns together about the target's centre. Each rotated loss is a
    // function of the pair's relative geometry, so it stays (float32 tolerance); KFIoU's centre term, a smooth-L1
    // of the offset's x and y, is not turn-invariant, so its rest (loss minus that term) is compared. The gradient
    // in w, h and theta stays; the one in (cx, cy) turns with the pair. The axis-aligned versions change.
    const alpha = -0.5;
    const [hx, hy] = handleOf(t0, 0);
    const arm = (t0[3] - t0[1]) / 2 + 26;
    await page.keyboard.down('Shift');
    await drag(page, hx, hy, rt0[0] + arm * Math.sin(alpha) - hx, rt0[1] - arm * Math.cos(alpha) - hy);
    await page.keyboard.up('Shift');
    const s1 = await settledRotated(page);
    const [a1p, a1t] = nums(s1.rot.angles);
    expect(a1t).toBeCloseTo(alpha, 1);
    expect(a1p).toBe(a1t);
    const rp1 = nums(s1.rot.pred);
    const rt1 = nums(s1.rot.target);
    expect(rt1.slice(0, 4)).toEqual(rt0.slice(0, 4));
    const [c, s] = [Math.cos(a1t), Math.sin(a1t)];
    const [dx, dy] = [rp0[0] - rt0[0], rp0[1] - rt0[1]];
    expect(Math.abs(rp1[0] - (rt0[0] + c * dx - s * dy))).toBeLessThan(1e-3);
    expect(Math.abs(rp1[1] - (rt0[1] + s * dx + c * dy))).toBeLessThan(1e-3);
    expect(rp1[2]).toBeCloseTo(rp0[2], 3);
    expect(rp1[3]).toBeCloseTo(rp0[3], 3);
    checkRotatedRows(s1.rot.rows, rp1, rt1);
    s0.rot.rows.forEach((r0, i) => {
      const r1 = s1.rot.rows[i];
      const kf = r0.key === 'r/kfiou';
      const l0 = kf ? r0.loss - kfiouXy(rp0, rt0) : r0.loss;
      const l1 = kf ? r1.loss - kfiouXy(rp1, rt1) : r1.loss;
      expect(Math.abs(l1 - l0), `${r0.key}: loss ${l0} at theta 0, ${l1} turned together by ${a1t}`).toBeLessThanOrEqual(1e-4 + 2e-4 * Math.abs(l0));
      for (const k of [2, 3, 4]) expect(Math.abs(r1.grad[k] - r0.grad[k]), `${r0.key}: grad[${k}]`).toBeLessThanOrEqual(1e-5 + 2e-3 * Math.abs(r0.grad[k]));
      if (!kf) {
        const turned = [c * r0.grad[0] - s * r0.grad[1], s * r0.grad[0] + c * r0.grad[1]];
        for (const k of [0, 1]) expect(Math.abs(r1.grad[k] - turned[k]), `${r0.key}: grad[${k}] turned`).toBeLessThanOrEqual(1e-5 + 2e-3 * Math.abs(turned[k]));
      }
    });
    // The turn is no no-op: the centre offset turned, so KFIoU's centre term and the axis-aligned losses moved.
    expect(Math.abs(kfiouXy(rp1, rt1) - kfiouXy(rp0, rt0))).toBeGreaterThan(1);
    checkRows(s1.axis.rows, nums(s1.axis.pred), nums(s1.axis.target));
    const giou = (t: typeof s0) => t.axis.rows.find((r) => r.key === 'giou')!.loss;
    expect(Math.abs(giou(s1) - giou(s0))).toBeGreaterThan(1e-3);

    // Drag the prediction's handle alone: its theta changes, the target's does not, every rotated loss changes;
    // the axis-aligned boxes (and so every iou_loss row) stay as they were.
    const p1 = nums(s1.axis.pred);
    const beta = a1p + 0.8;
    const [qx, qy] = handleOf(p1, a1p);
    const parm = (p1[3] - p1[1]) / 2 + 26;
    await drag(page, qx, qy, rp1[0] + parm * Math.sin(beta) - qx, rp1[1] - parm * Math.cos(beta) - qy);
    const s2 = await settledRotated(page);
    const [a2p, a2t] = nums(s2.rot.angles);
    expect(a2t).toBe(a1t);
    expect(a2p).toBeCloseTo(beta, 1);
    expect(s2.axis.pred).toBe(s1.axis.pred);
    expect(s2.axis.rows.map((r) => r.loss)).toEqual(s1.axis.rows.map((r) => r.loss));
    const rp2 = nums(s2.rot.pred);
    expect(rp2.slice(0, 4)).toEqual(rp1.slice(0, 4));
    expect(rp2[4]).toBe(a2p);
    checkRotatedRows(s2.rot.rows, rp2, nums(s2.rot.target));
    s2.rot.rows.forEach((r, i) => expect(Math.abs(r.loss - s1.rot.rows[i].loss), r.key).toBeGreaterThan(1e-4));
    // d/dtheta is there: nonzero for ProbIoU and KLD, whose arrows are drawn (theta's at the handle among them).
    for (const key of ['r/probiou', 'r/kld']) expect(Math.abs(s2.rot.rows.find((r) => r.key === key)!.grad[4]), key).toBeGreaterThan(1e-4);
    await page.select('#variant', 'r/kld');
    const k = await shown(page);
    expect(k.variant).toBe('r/kld');
    expect(k.arrows).toBeGreaterThanOrEqual(3);
    expect(await arrowPixels(page)).toBeGreaterThan(40);
    expect(k.legend).toMatch(/∂L\/∂\(cx, cy, w, h, θ\) of KLD/);

    await page.screenshot({ path: `${outDir}demo-rotated.png`, fullPage: true });

    // Rotated mode off: the table is hidden, the select lists the iou_loss variants again, the canvas is axis-aligned.
    await page.click('#rotated-mode');
    const off = await settled(page);
    expect(await page.$eval('#rotated-panel', (e) => (e as HTMLElement).hidden)).toBe(true);
    expect(await page.$$eval('#variant option', (o) => o.map((x) => (x as HTMLOptionElement).value))).toEqual(KEYS);
    expect((await rotatedState(page)).rotated).toBe('false');
    checkRows(off.rows, nums(off.pred), nums(off.target));
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
    note(`demo after a loss: ${status.text}`);
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
    note(`demo timing across a loss: ${t2.text}`);
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
    note(`demo after a loss without an adapter: ${status.text}`);
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
    note(`demo after two losses: ${status.text}`);
    expect(status).toMatchObject({ state: 'cpu', losses: 2 });
    expect(status.text).toMatch(/^GPU device lost again \(destroyed\b[^)]*\) before the recreated context finished a computation; computing on the CPU reference from now on\./);
    expect(await devicesMade(page)).toBe(2);
    expect(await contextDevice(page)).toBe(-1);
    checkCpuRows(after.rows, nums(after.pred), nums(after.target));
    await page.close();
    expect(errors).toEqual([]);
  });
});
