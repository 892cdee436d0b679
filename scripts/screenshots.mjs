#!/usr/bin/env node
// Regenerates the demo's screenshots from the current build, in headless Chromium on WebGPU:
//   docs/playground.png  the box playground at its default boxes, after a GPU-vs-CPU timing
//   docs/trainer.png     the trainer after it has trained some steps (then stopped)
//   docs/detection.png   the detection page at its defaults, after its first NMS on each backend
//
//   node scripts/screenshots.mjs [--no-build] [--steps 200] [--width 1200] [--out docs] [--only playground,trainer,detection]
//
// Builds the demo into demo/dist first (as `npm run build:demo` does) unless --no-build, serves it on
// http://localhost (a secure context, so navigator.gpu exists) and opens both pages with puppeteer-core.
// Chromium: CHROME_PATH, or /usr/bin/chromium. Without a GPU, Chromium's software adapter (SwiftShader)
// runs the pages; the trainer's step times on it say nothing about a real GPU's.
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repo = fileURLToPath(new URL('..', import.meta.url));
const { values: opts } = parseArgs({
  options: {
    'no-build': { type: 'boolean', default: false },
    steps: { type: 'string', default: '200' },
    width: { type: 'string', default: '1200' },
    out: { type: 'string', default: 'docs' },
    only: { type: 'string', default: 'playground,trainer,detection' },
  },
});
/** The pages to shoot (`--only`, comma-separated). */
const only = new Set(opts.only.split(','));
const steps = Number(opts.steps);
const width = Number(opts.width);
const outDir = resolve(repo, opts.out);
const dist = join(repo, 'demo', 'dist');

if (!opts['no-build']) {
  const { build } = await import('vite');
  console.log('building the demo into demo/dist…');
  await build({ configFile: join(repo, 'demo', 'vite.config.ts'), logLevel: 'warn' });
}
if (!existsSync(join(dist, 'playground', 'index.html'))) throw new Error(`${dist} holds no built demo: run without --no-build, or npm run build:demo`);

/** Serves `root` on 127.0.0.1: plain files below it only. */
async function serve(root) {
  const real = realpathSync(root);
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png' };
  const server = createServer((req, res) => {
    let file;
    try {
      file = resolve(real, `.${decodeURIComponent((req.url ?? '/').split(/[?#]/, 1)[0])}`);
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (file.endsWith(sep) || (existsSync(file) && statSync(file).isDirectory())) file = join(file, 'index.html');
    if (!file.startsWith(real + sep) || !existsSync(file) || !statSync(file).isFile() || !realpathSync(file).startsWith(real + sep)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://localhost:${server.address().port}/`, close: () => new Promise((ok) => server.close(ok)) };
}

const chromium = process.env.CHROME_PATH ?? '/usr/bin/chromium';
if (!existsSync(chromium)) throw new Error(`no Chromium at ${chromium}: set CHROME_PATH`);
const { default: puppeteer } = await import('puppeteer-core');
const server = await serve(dist);
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ['--no-sandbox', '--headless=new', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--disable-background-networking', '--no-first-run'],
  protocolTimeout: 600_000,
});

/** Opens a page of the demo at `width` and waits for its ready flag; fails on the page's errors. */
async function open(path) {
  const page = await browser.newPage();
  const errors = [];
  page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
  page.on('pageerror', (e) => errors.push(String(e?.message ?? e)));
  await page.setViewport({ width, height: 900, deviceScaleFactor: 1 });
  await page.goto(`${server.url}${path}`);
  await page.waitForFunction(() => document.body.dataset.ready !== undefined, { timeout: 120_000 });
  const ready = await page.evaluate(() => document.body.dataset.ready);
  if (ready !== 'true') throw new Error(`${path} did not start: ${await page.$eval('#fatal', (e) => e.textContent)}`);
  if ((await page.$eval('#device', (e) => e.dataset.webgpu)) !== 'yes') throw new Error(`${path}: no WebGPU adapter in headless Chromium`);
  return { page, errors };
}

/** Saves a full-page screenshot and says how big it came out. */
async function shoot(page, errors, name) {
  if (errors.length) throw new Error(`${name}: the page logged errors: ${errors.join('; ')}`);
  const file = join(outDir, name);
  await page.screenshot({ path: file, fullPage: true, type: 'png' });
  const { width: w, height: h } = await page.evaluate(() => ({ width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight }));
  console.log(`${file}: ${w} x ${h}, ${(statSync(file).size / 1024).toFixed(0)} kB`);
}

try {
  // The playground at its default boxes (GIoU's arrows), with one timing run so the chart shows.
  if (only.has('playground')) {
    const { page, errors } = await open('playground/index.html');
    await page.select('#op', 'iou_loss');
    await page.select('#n', '10000');
    await page.click('#run');
    await page.waitForFunction(() => ['done', 'error'].includes(document.querySelector('#timing-result').dataset.state), { timeout: 300_000 });
    const timing = await page.$eval('#timing-result', (e) => ({ state: e.dataset.state, text: e.textContent }));
    if (timing.state !== 'done') throw new Error(`the timing failed: ${timing.text}`);
    await shoot(page, errors, 'playground.png');
    await page.close();
  }
  // The trainer after `steps` steps, stopped (the status line then says where it stopped).
  if (only.has('trainer')) {
    const { page, errors } = await open('trainer/index.html');
    await page.waitForFunction((n) => Number(document.querySelector('#step').dataset.step) >= n, { timeout: 600_000, polling: 250 }, steps);
    await page.click('#stop');
    await page.waitForFunction(() => ['stopped', 'nonfinite', 'error'].includes(document.querySelector('#train-status').dataset.state), { timeout: 120_000 });
    await page.evaluate(() => window.trainDemo.idle());
    const s = await page.$eval('#train-status', (e) => ({ state: e.dataset.state, text: e.textContent }));
    if (s.state !== 'stopped') throw new Error(`the trainer stopped with ${s.state}: ${s.text}`);
    console.log(`trainer: ${s.text} ${await page.$eval('#summary', (e) => e.textContent)}`);
    await shoot(page, errors, 'trainer.png');
    await page.close();
  }
  // The detection page at its defaults: its ready flag is set once the first NMS has run on each backend.
  if (only.has('detection')) {
    const { page, errors } = await open('detection/index.html');
    const s = await page.$eval('#det-status', (e) => ({ state: e.dataset.state, text: e.textContent }));
    if (s.state !== 'done') throw new Error(`the detection page's first run ended with ${s.state}: ${s.text}`);
    const times = await page.$$eval('#det-results tbody tr', (rows) => rows.map((r) => `${r.dataset.backend} ${r.dataset.kept} kept, ${Number(r.dataset.ms).toFixed(2)} ms`));
    console.log(`detection: ${times.join('; ')}`);
    await shoot(page, errors, 'detection.png');
    await page.close();
  }
} finally {
  await browser.close();
  await server.close();
}
