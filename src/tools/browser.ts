import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { execFileSync } from 'node:child_process';
import { extname, join, resolve as resolvePath, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';

/** Launch flags for headless Chromium with WebGPU on a machine without a GPU (SwiftShader). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless=new',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/**
 * Finds a Chromium: `CHROME_PATH`, then /usr/bin/chromium, chromium-browser, google-chrome on the PATH.
 * Throws with install instructions when there is none.
 */
export function findChromium(): string {
  const env = process.env.CHROME_PATH;
  if (env) {
    if (existsSync(env)) return env;
    throw new Error(`CHROME_PATH is set to ${env}, which does not exist`);
  }
  if (existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  for (const name of ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']) {
    try {
      const p = execFileSync('which', [name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (p) return p;
    } catch {
      /* not on the PATH */
    }
  }
  throw new Error(
    'No Chromium found. detloss runs its GPU checks in headless Chromium. Install one ' +
      '(Debian/Ubuntu: sudo apt-get install -y chromium) or point CHROME_PATH at a Chromium or Chrome binary.',
  );
}

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.html': 'text/html', '.map': 'application/json', '.json': 'application/json', '.css': 'text/css', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.png': 'image/png' };

const PAGE = `<!doctype html><meta charset="utf-8"><title>detloss</title>
<script type="module">
import * as detloss from '/index.js';
window.detloss = detloss;
try {
  window.dl = await detloss.createDetloss();
  window.detlossReady = { ok: true, adapter: window.dl.adapter, limits: window.dl.limits };
} catch (e) {
  window.detlossReady = { ok: false, code: e.code, message: String(e.message || e) };
}
</script>`;

/** Serves the built package (`dist/`) and a page that loads it, on 127.0.0.1 (a secure context). */
export async function serveDist(distDir: string): Promise<{ url: string; close(): Promise<void> }> {
  const root = resolvePath(distDir);
  if (!existsSync(join(root, 'index.js'))) {
    throw new Error(`${join(root, 'index.js')} is missing: run npm run build first`);
  }
  return serveStatic(root, PAGE);
}

/** Whether `file` (absolute, normalised) is `root` itself or lies below it. */
const isInside = (root: string, file: string) => file === root || file.startsWith(root.endsWith(sep) ? root : root + sep);

/**
 * The file under `root` that a request's URL path names, or why there is none: `400` when the path
 * does not decode or holds a NUL byte, `403` when it leads outside `root` (by `..`, encoded or not,
 * or by a symbolic link), `404` when there is no plain file there. `root` must be absolute and
 * resolved (`realRoot`: its real path, links resolved).
 */
export function resolveServedFile(root: string, realRoot: string, urlPath: string): { file: string } | { status: 400 | 403 | 404 } {
  let path: string;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return { status: 400 };
  }
  if (path.includes('\0')) return { status: 400 };
  // Resolve as a path relative to root: a leading '/' must not make it absolute.
  const file = resolvePath(root, `.${sep}${path}`);
  if (!isInside(root, file)) return { status: 403 };
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    return { status: 404 };
  }
  if (!isInside(realRoot, real)) return { status: 403 };
  if (!statSync(real).isFile()) return { status: 404 };
  return { file: real };
}

const refuse = (res: ServerResponse, status: number) =>
  res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 403 ? 'forbidden' : status === 400 ? 'bad request' : 'not found');

/**
 * Serves a folder on 127.0.0.1 (http://localhost is a secure context, so navigator.gpu exists); `/` is
 * `indexHtml` or index.html. Only files inside the folder are served: see {@link resolveServedFile}.
 */
export async function serveStatic(root: string, indexHtml?: string): Promise<{ url: string; close(): Promise<void> }> {
  root = resolvePath(root);
  const realRoot = realpathSync(root);
  const server: Server = createServer((req, res) => {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      // The raw path, not URL-normalised: `..` segments are judged by resolveServedFile.
      const raw = (req.url ?? '/').split(/[?#]/, 1)[0];
      if (!raw.startsWith('/')) {
        refuse(res, 400);
        return;
      }
      if (indexHtml && (raw === '/' || raw === '/index.html')) {
        res.writeHead(200, { 'content-type': 'text/html' }).end(indexHtml);
        return;
      }
      const found = resolveServedFile(root, realRoot, raw === '/' ? '/index.html' : raw);
      if ('status' in found) {
        refuse(res, found.status);
        return;
      }
      res.writeHead(200, { 'content-type': TYPES[extname(found.file)] ?? 'application/octet-stream' }).end(readFileSync(found.file));
    } catch {
      if (!res.headersSent) res.writeHead(500).end('server error');
      else res.end();
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  return { url: `http://localhost:${port}/`, close: () => new Promise<void>((ok) => server.close(() => ok())) };
}

export interface GpuPage {
  browser: Browser;
  page: Page;
  adapter: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter: boolean };
  /** Console errors and page errors seen so far. */
  errors: string[];
  close(): Promise<void>;
}

/**
 * Launches headless Chromium on a page with detloss loaded and a context created (`window.dl`).
 * Throws when there is no WebGPU adapter, saying so.
 */
export async function openGpuPage(distDir: string): Promise<GpuPage> {
  return openPage(await serveDist(distDir), 'window.detlossReady');
}

/**
 * Launches headless Chromium with WebGPU on a served page and waits for `readyExpr` (a global
 * that the page sets to `{ ok, adapter }` or `{ ok: false, code, message }`, or to `true`).
 */
export async function openPage(server: { url: string; close(): Promise<void> }, readyExpr: string): Promise<GpuPage> {
  const { default: puppeteer } = await import('puppeteer-core');
  let executablePath: string;
  try {
    executablePath = findChromium();
  } catch (e) {
    await server.close();
    throw e;
  }
  let browser: Browser;
  try {
    browser = await puppeteer.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, protocolTimeout: 600_000 });
  } catch (e) {
    await server.close();
    throw new Error(`Could not start ${executablePath}: ${(e as Error).message}`);
  }
  const errors: string[] = [];
  const close = async () => {
    await browser.close().catch(() => {});
    await server.close();
  };
  try {
    const page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String((e as Error).message ?? e)));
    await page.goto(server.url);
    await page.waitForFunction(`${readyExpr} !== undefined`, { timeout: 60_000 });
    const ready = (await page.evaluate(readyExpr)) as true | { ok: boolean; code?: string; message?: string; adapter?: GpuPage['adapter'] };
    if (ready !== true && !ready.ok) throw new Error(`No WebGPU adapter in headless Chromium (${ready.code}): ${ready.message}`);
    const adapter = ready === true ? { vendor: '', architecture: '', device: '', description: '', isFallbackAdapter: false } : ready.adapter!;
    return { browser, page, adapter, errors, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** The result of one case on the GPU, as it crosses from the page. */
export type PageResult =
  | { ok: true; loss: number[]; shape: number[]; grad: Record<string, number[]>; outputs?: Record<string, number[]>; outputShapes?: Record<string, number[]> }
  | { ok: false; code?: string; message: string };

/** Runs one op in the page on `window.dl` and returns plain arrays. */
export async function runInPage(
  page: Page,
  op: string,
  inputs: Record<string, { dtype: 'f32' | 'i32'; shape: number[]; data: number[] }>,
  options: Record<string, unknown>,
): Promise<PageResult> {
  return page.evaluate(
    async (op, inputs, options) => {
      const w = window as unknown as {
        dl: { run: (...a: unknown[]) => Promise<{ loss: Float32Array; shape: number[]; grad: Record<string, Float32Array>; outputs?: Record<string, Float32Array | Int32Array>; outputShapes?: Record<string, number[]> }> };
      };
      try {
        const ins: Record<string, unknown> = {};
        for (const [k, t] of Object.entries(inputs)) {
          ins[k] = { data: t.dtype === 'i32' ? Int32Array.from(t.data) : Float32Array.from(t.data), shape: t.shape };
        }
        const r = await w.dl.run(op, ins, options);
        const grad: Record<string, number[]> = {};
        for (const [k, g] of Object.entries(r.grad)) grad[k] = Array.from(g);
        const named = r.outputs ? { outputs: Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, Array.from(v)])), outputShapes: r.outputShapes } : {};
        return { ok: true as const, loss: Array.from(r.loss), shape: r.shape, grad, ...named };
      } catch (e) {
        const err = e as { code?: string; message?: string };
        return { ok: false as const, code: err.code, message: String(err.message ?? e) };
      }
    },
    op,
    inputs,
    options,
  );
}

/** The directory of the built package next to a module URL (dist/ holds cli.js and index.js). */
export const distDirOf = (moduleUrl: string) => fileURLToPath(new URL('.', moduleUrl));
