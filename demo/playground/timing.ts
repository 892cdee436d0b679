/**
 * The timing panel: one op at one size, warmed up, then the median of 7 timed runs of `dl.run`
 * (upload, fused forward and backward, reduction, readback) and of `cpu.run` (float64 reference).
 * A device lost during the GPU part is replaced once (the GPU part starts over on the new
 * context); without a new one the timing gives the CPU reference alone, and says why.
 */
import { cpu, DetlossError, OPS, type DetlossContext } from 'detloss';
import { gpuCapable } from './compute';
import type { GpuSession } from './gpu-session';
import { randomInputs } from './inputs';

/** The sizes offered. */
export const SIZES = [1e3, 1e4, 1e5, 1e6];
const RUNS = 7;
/** A timed sample lasts at least this long (calls are repeated), so coarse timers still measure small N. */
const MIN_SAMPLE_MS = 10;

/** The page elements the panel uses. */
export interface TimingElements {
  form: HTMLFormElement;
  op: HTMLSelectElement;
  n: HTMLSelectElement;
  run: HTMLButtonElement;
  progress: HTMLProgressElement;
  progressText: HTMLElement;
  chart: SVGSVGElement;
  result: HTMLElement;
  history: HTMLTableElement;
}

interface Timing {
  op: string;
  n: number;
  gpuMs?: number;
  cpuMs: number;
  /** Why there is no GPU time. */
  gpuNote?: string;
  /** The adapter the GPU time was taken on. */
  adapter?: string;
  /** What happened to the device during the timing, when it was lost. */
  lossNote?: string;
}

/** Ops that reduce (`'mean'`): the training-step call. `pairwise_iou` (a matrix, no reduction) is left out. */
export function timedOps(): string[] {
  const ops = Object.values(OPS).filter((d) => (d.reductions ?? ['mean']).includes('mean'));
  return ops.sort((a, b) => Number(!a.gpu) - Number(!b.gpu)).map((d) => d.name);
}

/** Fills the selects and runs a timing on submit; the ops' labels follow the page's GPU state. */
export function mountTiming(el: TimingElements, gpu: GpuSession) {
  for (const op of timedOps()) el.op.add(new Option(op, op));
  const label = () => {
    for (const o of Array.from(el.op.options)) o.text = gpuCapable(gpu.context, o.value) ? o.value : `${o.value} (CPU only)`;
  };
  label();
  gpu.onChange(label);
  for (const n of SIZES) el.n.add(new Option(n.toLocaleString('en-US'), String(n)));
  el.op.value = 'smooth_l1';
  el.n.value = '100000';
  drawChart(el.chart, undefined);
  el.form.addEventListener('submit', async (e) => {
    e.preventDefault();
    el.run.disabled = true;
    el.result.dataset.state = 'running';
    el.result.textContent = '';
    try {
      const t = await timeOp(gpu, el.op.value, Number(el.n.value), (done, total, what) => {
        el.progress.hidden = false;
        el.progress.max = total;
        el.progress.value = done;
        el.progressText.textContent = what;
      });
      showTiming(el, t);
    } catch (err) {
      el.result.dataset.state = 'error';
      el.result.textContent = `The timing failed: ${(err as Error).message ?? err}`;
      console.error(err);
    } finally {
      el.run.disabled = false;
      el.progress.hidden = true;
      el.progressText.textContent = '';
    }
  });
}

type Progress = (done: number, total: number, what: string) => void;

const pause = () => new Promise<void>((ok) => setTimeout(ok, 0));

/**
 * Times `op` on `n` rows of random inputs: a warm-up that also picks how many calls make one
 * sample (at least MIN_SAMPLE_MS), then RUNS samples on the GPU and on the CPU; medians per call.
 */
async function timeOp(gpu: GpuSession, op: string, n: number, progress: Progress): Promise<Timing> {
  const inputs = randomInputs(OPS[op], n, 1234 + n);
  const params = { reduction: 'mean' as const };
  let dl = gpu.context;
  const useGpu = gpuCapable(dl, op);
  let total = (useGpu ? RUNS + 1 : 0) + RUNS + 1;
  let done = 0;
  const step = async (what: string) => {
    progress(done++, total, what);
    await pause();
  };

  let gpuMs: number | undefined;
  let gpuNote = dl ? undefined : gpu.status.state === 'cpu' ? 'the GPU device was lost' : 'no WebGPU';
  let adapter: string | undefined;
  let lossNote: string | undefined;
  for (let attempt = 0; attempt < 2 && dl && useGpu; attempt++) {
    const on: DetlossContext = dl;
    try {
      await step(`GPU: compiling and warming up ${op}`);
      await on.run(op, inputs, params);
      gpuMs = await sampleMedian(async () => void (await on.run(op, inputs, params)), (i) => step(`GPU: run ${i + 1} of ${RUNS}`));
      gpu.worked(on);
      adapter = adapterName(on);
      break;
    } catch (e) {
      if (e instanceof DetlossError && e.code === 'unknown_op') {
        gpuNote = 'the GPU reports no kernel for this op';
        break;
      }
      if (!(await gpu.isLoss(on, e))) throw e;
      dl = await gpu.recover(on);
      lossNote = gpu.status.message;
      if (!dl) gpuNote = 'the GPU device was lost during the timing';
      else total += RUNS + 1; // the GPU part starts over on the new context
    }
  }
  if (gpuMs === undefined && useGpu && dl && !gpuNote) gpuNote = 'the GPU device was lost twice during the timing';
  if (!useGpu && dl) gpuNote = 'no GPU kernel for this op yet';
  await step('CPU reference: warming up');
  const cpuMs = await sampleMedian(async () => void cpu.run(op, inputs, params), (i) => step(`CPU reference: run ${i + 1} of ${RUNS}`));
  progress(total, total, 'done');
  return { op, n, gpuMs, cpuMs, gpuNote, adapter, lossNote };
}

/** Calibrates the calls per sample (doubling until a batch takes MIN_SAMPLE_MS), then the median of RUNS samples, per call. */
async function sampleMedian(call: () => Promise<void>, before: (i: number) => Promise<void>): Promise<number> {
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    for (let k = 0; k < reps; k++) await call();
    if (performance.now() - t0 >= MIN_SAMPLE_MS || reps >= 1024) break;
    reps *= 2;
  }
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await before(i);
    const t0 = performance.now();
    for (let k = 0; k < reps; k++) await call();
    samples.push((performance.now() - t0) / reps);
  }
  return median(samples);
}

/** The middle value (the mean of the two middle ones for an even count). */
function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(3));

function showTiming(el: TimingElements, t: Timing) {
  const speedup = t.gpuMs !== undefined ? t.cpuMs / t.gpuMs : undefined;
  const r = el.result;
  r.dataset.state = 'done';
  r.dataset.op = t.op;
  r.dataset.n = String(t.n);
  r.dataset.cpuMs = String(t.cpuMs);
  r.dataset.gpuMs = t.gpuMs !== undefined ? String(t.gpuMs) : '';
  r.dataset.speedup = speedup !== undefined ? String(speedup) : '';
  const size = t.n.toLocaleString('en-US');
  const adapter = t.adapter ?? '';
  r.dataset.lost = t.lossNote ? 'yes' : '';
  r.innerHTML =
    (speedup !== undefined
      ? `<strong class="speedup">${speedup >= 1 ? `${speedup.toFixed(1)}× faster` : `${(1 / speedup).toFixed(1)}× slower`}</strong> on the GPU ` +
        `(speed-up ${speedup.toFixed(2)}): <code>${t.op}</code>, N = ${size}, median of ${RUNS}: GPU ${ms(t.gpuMs!)} ms, CPU reference ${ms(t.cpuMs)} ms. ` +
        `<span class="adapter">${adapter}</span>`
      : `<code>${t.op}</code>, N = ${size}: CPU reference ${ms(t.cpuMs)} ms (median of ${RUNS}); no GPU time (${t.gpuNote}).`) +
    (t.lossNote ? ` <span class="lost">During this timing: ${t.lossNote}</span>` : '');
  drawChart(el.chart, t);
  const row = el.history.tBodies[0].insertRow(0);
  row.innerHTML = `<td><code>${t.op}</code></td><td class="num">${size}</td><td class="num">${t.gpuMs !== undefined ? ms(t.gpuMs) : '—'}</td><td class="num">${ms(t.cpuMs)}</td><td class="num">${speedup !== undefined ? `${speedup.toFixed(2)}×` : '—'}</td>`;
  el.history.hidden = false;
}

/** The adapter's name and whether it is a software fallback, as one line. */
export function adapterName(dl: DetlossContext): string {
  const a = dl.adapter;
  const name = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') || 'unnamed adapter';
  return `Adapter: ${name}${a.isFallbackAdapter ? ' (software fallback adapter)' : ' (hardware adapter)'}.`;
}

const SVG = 'http://www.w3.org/2000/svg';

/** A horizontal bar chart of the two medians (or an empty frame before the first run). */
function drawChart(svg: SVGSVGElement, t: Timing | undefined) {
  const W = 560;
  const H = 120;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const add = (tag: string, attrs: Record<string, string | number>, text?: string) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  if (!t) {
    add('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' }, 'Choose an op and a size, then run.');
    return;
  }
  const bars: [string, number | undefined, string][] = [
    ['GPU (dl.run)', t.gpuMs, 'gpu'],
    ['CPU reference', t.cpuMs, 'cpu'],
  ];
  const left = 120;
  const span = W - left - 90;
  const max = Math.max(...bars.map(([, v]) => v ?? 0));
  bars.forEach(([label, v, cls], i) => {
    const y = 18 + i * 48;
    add('text', { x: left - 10, y: y + 20, 'text-anchor': 'end', class: 'label' }, label);
    if (v === undefined) {
      add('text', { x: left, y: y + 20, class: 'value' }, `not run (${t.gpuNote})`);
      return;
    }
    const w = Math.max(2, (v / max) * span);
    add('rect', { x: left, y, width: w, height: 28, rx: 3, class: `bar ${cls}` });
    add('text', { x: left + w + 8, y: y + 20, class: 'value' }, `${ms(v)} ms`);
  });
}
