/**
 * The trainer page: a small YOLO-style detector head (DFL boxes at strides 8 and 16) learns on
 * synthetic scenes, twice from the same weights and batches, once with detloss's YOLOv8 loss
 * (`yoloLoss`: the task-aligned assigner, BCE, CIoU and DFL on the GPU) and once with the same loss
 * composed from TF.js ops. Draws both loss curves (the total and its three components), both step
 * times and the predicted boxes live; Stop, Resume and Restart; stops and says so when a step's loss
 * is not finite. `window.trainDemo` runs the same training without drawing, for the headless test.
 */
import * as tf from '@tensorflow/tfjs-core';
// TF.js's WebGPU backend, and the gradients of TF.js's own ops (the full `@tensorflow/tfjs` package
// imports both for you; tfjs-core alone does not).
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as detloss from 'detloss/tfjs';
import { CLASSES, CLASS_NAMES, MAX_OBJECTS, SIZE, batchTargets, makeScenes, rng, type BatchTargets, type Scene } from './data';
import { ANCHORS, REG_MAX, STRIDES, type Side, type StepResult, Trainer, initParams, uploadBatch, type InitParams } from './model';

const SEED = 12;
const TRAIN_IMAGES = 256;
const BATCH = 4;
const LEARNING_RATE = 0.01;
const VAL_IMAGES = 4;
/** Anchors scoring above this are drawn as detections. */
const SCORE_THRESHOLD = 0.25;
const SIDES: readonly Side[] = ['detloss', 'tfjs'];
const SIDE_NAME: Record<Side, string> = { detloss: 'detloss', tfjs: 'TF.js ops' };
const COLOR: Record<Side, string> = { detloss: '#2f6fde', tfjs: '#e4572e' };
const CLASS_COLOR = ['#ff5a5a', '#4cdc6a', '#6f8cff'];
/** The loss's components, as the page names them, and their colours in the components chart. */
const PARTS = ['box', 'cls', 'dfl'] as const;
type Part = (typeof PARTS)[number];
const PART_NAME: Record<Part, string> = { box: 'box (CIoU)', cls: 'cls (BCE)', dfl: 'DFL' };
const PART_COLOR: Record<Part, string> = { box: '#7b3fb5', cls: '#1a9c8c', dfl: '#c98a12' };
/** What the page trains with, in its status line. */
const LOSS_NAME = 'the YOLOv8 loss';

const $ = <T extends Element>(sel: string) => {
  const e = document.querySelector<T>(sel);
  if (!e) throw new Error(`trainer: ${sel} is missing from the page`);
  return e;
};

/** The order of the training images: a seeded shuffle per epoch. */
function epochOrder(seed: number, epoch: number): number[] {
  const rand = rng(seed * 7919 + epoch);
  const order = Array.from({ length: TRAIN_IMAGES }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** detloss's buffer pool as the adapter reports it (bytes handed out now, bytes allocated). */
function detlossPool(): { bytesInUse: number; bytesAllocated: number } {
  const s = detloss.stats();
  return { bytesInUse: s.bytesInUse, bytesAllocated: s.bytesAllocated };
}

/** Two models trained side by side from one seed: the same initial weights, the same batches. */
class Run {
  readonly trainers: Record<Side, Trainer>;
  readonly history: Record<Side, StepResult[]> = { detloss: [], tfjs: [] };
  readonly init: InitParams;
  readonly val: tf.Tensor4D;
  step = 0;
  private readonly nb = TRAIN_IMAGES / BATCH;
  private order: number[] = [];

  constructor(
    readonly scenes: readonly Scene[],
    readonly valScenes: readonly Scene[],
    readonly seed: number,
    learningRate = LEARNING_RATE,
  ) {
    this.init = initParams(seed);
    this.trainers = { detloss: new Trainer('detloss', this.init, learningRate), tfjs: new Trainer('tfjs', this.init, learningRate) };
    this.val = tf.tensor4d(batchTargets(valScenes).pixels, [valScenes.length, SIZE, SIZE, 3]);
  }

  /**
   * The next step on both sides, on the same batch. The side that goes first alternates, so that
   * neither always finds the GPU freshly idle. With `record`, the detloss side also reads back the
   * head's outputs its loss was computed on (in its StepResult), and `targets` holds the batch.
   */
  async next(record = false): Promise<Record<Side, StepResult> & { targets: BatchTargets }> {
    const k = this.step % this.nb;
    if (k === 0) this.order = epochOrder(this.seed, Math.floor(this.step / this.nb));
    const scenes = this.order.slice(k * BATCH, (k + 1) * BATCH).map((i) => this.scenes[i]);
    const targets = batchTargets(scenes);
    const batch = uploadBatch(targets, SIZE);
    const out = {} as Record<Side, StepResult>;
    try {
      for (const side of this.step % 2 === 0 ? SIDES : [...SIDES].reverse()) out[side] = await this.trainers[side].step(batch, record && side === 'detloss');
    } finally {
      batch.dispose();
    }
    for (const side of SIDES) this.history[side].push(out[side]);
    this.step++;
    return { ...out, targets };
  }

  dispose(): void {
    for (const side of SIDES) this.trainers[side].dispose();
    this.val.dispose();
  }
}

/** Why a step's numbers cannot be trained on, or undefined when they are all finite. */
function nonFinite(r: Record<Side, StepResult>): string | undefined {
  const bad = SIDES.flatMap((side) => {
    const parts = (['total', ...PARTS] as const).filter((k) => !Number.isFinite(r[side][k]));
    return parts.length ? [`${SIDE_NAME[side]}: ${parts.map((k) => `${k === 'total' ? 'total' : PART_NAME[k]} loss ${r[side][k]}`).join(', ')}`] : [];
  });
  return bad.length ? bad.join('; ') : undefined;
}

const median = (xs: readonly number[]) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Step times from the third step on (the first ones compile TF.js's and detloss's pipelines). */
const settledTimes = (h: readonly StepResult[]) => h.slice(2).map((r) => r.ms);

/**
 * Plots series of numbers against the step on a canvas, with a y axis from 0 to a round maximum;
 * the first `skip` values of each series do not set the scale (they are drawn clipped to its top).
 */
function plot(canvas: HTMLCanvasElement, series: { values: number[]; color: string; dash?: number[] }[], unit: string, skip = 0) {
  const ctx = canvas.getContext('2d')!;
  const { width: w, height: h } = canvas;
  const left = 52;
  const bottom = 26;
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  const n = Math.max(2, ...series.map((s) => s.values.length));
  const finite = series.flatMap((s) => s.values.slice(s.values.length > skip + 2 ? skip : 0).filter(Number.isFinite));
  const top = finite.length ? Math.max(...finite) : 1;
  const mag = 10 ** Math.floor(Math.log10(top || 1));
  const ymax = Math.ceil((top || 1) / mag) * mag;
  const x = (i: number) => left + ((w - left - 10) * i) / (n - 1);
  const y = (v: number) => h - bottom - ((h - bottom - 10) * Math.min(v, ymax)) / ymax;
  ctx.strokeStyle = '#dde2e7';
  ctx.fillStyle = '#5d6873';
  ctx.font = '12px system-ui, sans-serif';
  ctx.lineWidth = 1;
  for (let t = 0; t <= 4; t++) {
    const v = (ymax * t) / 4;
    ctx.beginPath();
    ctx.moveTo(left, y(v));
    ctx.lineTo(w - 10, y(v));
    ctx.stroke();
    ctx.fillText(`${+v.toPrecision(3)}${t === 4 ? ` ${unit}` : ''}`, 4, y(v) + 4);
  }
  ctx.fillText('step 1', left, h - 6);
  ctx.textAlign = 'right';
  ctx.fillText(`step ${n}`, x(n - 1), h - 6);
  ctx.textAlign = 'left';
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.setLineDash(s.dash ?? []);
    ctx.beginPath();
    s.values.forEach((v, i) => (i === 0 ? ctx.moveTo(x(i), y(Number.isFinite(v) ? v : ymax)) : ctx.lineTo(x(i), y(Number.isFinite(v) ? v : ymax))));
    ctx.stroke();
  }
  ctx.setLineDash([]);
}

/** Greedy non-maximum suppression over one image's anchors (both levels): the kept boxes, best first. */
function detections(p: { scores: Float32Array; labels: Int32Array; boxes: Float32Array }, image: number, threshold = SCORE_THRESHOLD, maxBoxes = 5) {
  const cand: { score: number; label: number; box: number[] }[] = [];
  for (let c = 0; c < ANCHORS; c++) {
    const i = image * ANCHORS + c;
    if (p.scores[i] > threshold) cand.push({ score: p.scores[i], label: p.labels[i], box: Array.from(p.boxes.subarray(i * 4, i * 4 + 4)) });
  }
  cand.sort((a, b) => b.score - a.score);
  const iou = (a: number[], b: number[]) => {
    const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
    const ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
    const inter = iw * ih;
    const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return union > 0 ? inter / union : 0;
  };
  const kept: typeof cand = [];
  for (const d of cand) if (kept.length < maxBoxes && kept.every((k) => iou(k.box, d.box) < 0.5)) kept.push(d);
  return kept;
}

/** Draws a scene at 3x with its true boxes (white dashes) and the predicted ones (class colour, score). */
function drawScene(canvas: HTMLCanvasElement, scene: Scene, dets: ReturnType<typeof detections>) {
  const scale = canvas.width / SIZE;
  const ctx = canvas.getContext('2d')!;
  const img = new ImageData(SIZE, SIZE);
  for (let i = 0; i < SIZE * SIZE; i++) {
    for (let k = 0; k < 3; k++) img.data[i * 4 + k] = Math.round(255 * Math.min(1, Math.max(0, scene.pixels[i * 3 + k])));
    img.data[i * 4 + 3] = 255;
  }
  const tmp = new OffscreenCanvas(SIZE, SIZE);
  tmp.getContext('2d')!.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
  ctx.lineWidth = 1.5;
  ctx.setLineDash([4, 3]);
  ctx.strokeStyle = '#fff';
  for (const b of scene.boxes) ctx.strokeRect(b.x1 * scale, b.y1 * scale, (b.x2 - b.x1) * scale, (b.y2 - b.y1) * scale);
  ctx.setLineDash([]);
  ctx.lineWidth = 2.5;
  ctx.font = 'bold 12px system-ui, sans-serif';
  for (const d of dets) {
    const [x1, y1, x2, y2] = d.box.map((v) => v * scale);
    ctx.strokeStyle = CLASS_COLOR[d.label] ?? '#fff';
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.fillStyle = '#000a';
    const label = `${CLASS_NAMES[d.label] ?? '?'} ${d.score.toFixed(2)}`;
    ctx.fillRect(x1, Math.max(0, y1 - 15), ctx.measureText(label).width + 6, 15);
    ctx.fillStyle = '#fff';
    ctx.fillText(label, x1 + 3, Math.max(11, y1 - 3));
  }
}

async function main() {
  const device = $<HTMLElement>('#device');
  const status = $<HTMLElement>('#train-status');
  const stepEl = $<HTMLElement>('#step');
  const stopBtn = $<HTMLButtonElement>('#stop');
  const resumeBtn = $<HTMLButtonElement>('#resume');
  const restartBtn = $<HTMLButtonElement>('#restart');
  const lossChart = $<HTMLCanvasElement>('#loss-chart');
  const partsChart = $<HTMLCanvasElement>('#parts-chart');
  const timeChart = $<HTMLCanvasElement>('#time-chart');
  const summary = $<HTMLElement>('#summary');

  const setStatus = (state: string, text: string) => {
    status.dataset.state = state;
    status.textContent = text;
  };
  /**
   * What the page is busy with, in words and as `data-phase` (starting, warmup, compiling, training,
   * stopped, nonfinite, error); `data-phases` lists every phase entered so far, in order, so a test
   * can see the ones that passed quickly.
   */
  const setPhase = (phase: string, state: string, text: string) => {
    if (status.dataset.phase !== phase) status.dataset.phases = [status.dataset.phases, phase].filter(Boolean).join(',');
    status.dataset.phase = phase;
    setStatus(state, text);
  };

  setPhase('starting', 'starting', 'Starting TF.js on its WebGPU backend…');
  if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not start its WebGPU backend (this page needs WebGPU: the playground page says how to get it).');
  await tf.ready();
  await detloss.ready();
  const info = (tf.backend() as unknown as { adapterInfo?: { vendor?: string; architecture?: string; description?: string } }).adapterInfo;
  device.textContent = `TF.js ${tf.version_core} on its WebGPU backend${info ? ` (${[info.vendor, info.architecture, info.description].filter(Boolean).join(' ')})` : ''}; detloss runs on the same GPUDevice.`;
  device.dataset.webgpu = 'yes';

  const scenes = makeScenes(SEED, TRAIN_IMAGES);
  const valScenes = makeScenes(SEED + 1, VAL_IMAGES);
  const valCanvases = Object.fromEntries(
    SIDES.map((side) => {
      const holder = $<HTMLElement>(`#val-${side}`);
      const canvases = valScenes.map(() => {
        const c = document.createElement('canvas');
        c.width = c.height = 192;
        holder.append(c);
        return c;
      });
      return [side, canvases];
    }),
  ) as Record<Side, HTMLCanvasElement[]>;

  let run = new Run(scenes, valScenes, SEED);
  let running = false;
  let halted = false;
  let loop: Promise<void> = Promise.resolve();

  const render = () => {
    stepEl.textContent = String(run.step);
    stepEl.dataset.step = String(run.step);
    if (running && run.step > 0) setPhase('training', 'running', `Training with ${LOSS_NAME}: step ${run.step}.`);
    plot(
      lossChart,
      SIDES.map((side) => ({ values: run.history[side].map((r) => r.total), color: COLOR[side], dash: side === 'tfjs' ? [6, 4] : [] })),
      '',
    );
    plot(
      partsChart,
      SIDES.flatMap((side) => PARTS.map((part) => ({ values: run.history[side].map((r) => r[part]), color: PART_COLOR[part], dash: side === 'tfjs' ? [6, 4] : [] }))),
      '',
    );
    plot(timeChart, SIDES.map((side) => ({ values: run.history[side].map((r) => r.ms), color: COLOR[side] })), 'ms', 2);
    const last = (side: Side) => run.history[side].at(-1);
    const md = Object.fromEntries(SIDES.map((side) => [side, median(settledTimes(run.history[side]))])) as Record<Side, number>;
    const ratio = md.tfjs / md.detloss;
    summary.dataset.ratio = String(ratio);
    summary.textContent = run.step
      ? `After ${run.step} steps: loss ${SIDES.map((s) => `${SIDE_NAME[s]} ${last(s)!.total.toFixed(5)}`).join(', ')}. ` +
        (Number.isFinite(ratio)
          ? `Median step time ${SIDES.map((s) => `${SIDE_NAME[s]} ${md[s].toFixed(1)} ms`).join(', ')}: the detloss step takes ${(1 / ratio).toFixed(2)}× the time of the TF.js-ops step.`
          : '')
      : '';
  };

  const drawValidation = async () => {
    for (const side of SIDES) {
      const p = await run.trainers[side].predict(run.val);
      valScenes.forEach((scene, i) => drawScene(valCanvases[side][i], scene, detections(p, i)));
    }
  };

  const buttons = () => {
    stopBtn.disabled = !running;
    resumeBtn.disabled = running || halted;
  };

  const train = async () => {
    if (run.step === 0) {
      setPhase(
        'compiling',
        'running',
        `Compiling GPU pipelines: the first step builds the backward pass, Adam's update, the TF.js-ops loss and detloss's YOLOv8 loss kernels for both models (a few seconds; longer on a software adapter)…`,
      );
    } else {
      setPhase('training', 'running', `Training with ${LOSS_NAME}: step ${run.step}.`);
    }
    while (running) {
      let r: Record<Side, StepResult>;
      try {
        r = await run.next();
      } catch (e) {
        running = false;
        halted = true;
        setPhase('error', 'error', `Step ${run.step + 1} failed: ${(e as Error).message ?? e}`);
        break;
      }
      render();
      const bad = nonFinite(r);
      if (bad) {
        running = false;
        halted = true;
        setPhase('nonfinite', 'nonfinite', `Stopped at step ${run.step}: a loss is not finite (${bad}). Training does not go on from non-finite numbers; press Restart.`);
        break;
      }
      if (run.step % 5 === 0 || run.step === 1) await drawValidation();
      await new Promise((ok) => setTimeout(ok, 0));
    }
    if (status.dataset.state === 'running') setPhase('stopped', 'stopped', `Stopped after step ${run.step}. Resume goes on from there.`);
    buttons();
  };

  const start = () => {
    if (running || halted) return;
    running = true;
    buttons();
    loop = train();
  };
  const stop = async () => {
    running = false;
    await loop;
    buttons();
  };
  const restart = async () => {
    await stop();
    run.dispose();
    run = new Run(scenes, valScenes, SEED);
    halted = false;
    render();
    await drawValidation();
    start();
  };

  stopBtn.addEventListener('click', () => void stop());
  resumeBtn.addEventListener('click', start);
  restartBtn.addEventListener('click', () => void restart());

  // For the headless test: the same training without drawing, on fresh models from one seed.
  const hooks = {
    /**
     * Stops the live run (it keeps its state), then trains `steps` steps each way from `seed`.
     * With `record`, `steps[i]` holds step i's batch as the detloss side's loss saw it: the head's
     * outputs (before that step's update) and the gts, with `anchors` and `strides` (detloss's
     * makeAnchors) the inputs of `cpu.run('yolo_detection_loss', ...)` for that step.
     */
    async trainTest(n: number, opts: { seed?: number; learningRate?: number; record?: boolean } = {}) {
      await stop();
      const t = new Run(scenes, valScenes, opts.seed ?? SEED, opts.learningRate ?? LEARNING_RATE);
      const memory: { numTensors: number; bytesInUse: number; bytesAllocated: number }[] = [];
      const steps: { predDist: number[]; predScores: number[]; gtLabels: number[]; gtBoxes: number[]; gtMask: number[] }[] = [];
      try {
        for (let i = 0; i < n; i++) {
          const r = await t.next(opts.record);
          memory.push({ numTensors: tf.memory().numTensors, ...detlossPool() });
          if (opts.record) {
            const { predDist, predScores } = r.detloss.inputs!;
            steps.push({ predDist: Array.from(predDist), predScores: Array.from(predScores), gtLabels: Array.from(r.targets.gtLabels), gtBoxes: Array.from(r.targets.gtBoxes), gtMask: Array.from(r.targets.gtMask) });
          }
        }
        const params = Object.fromEntries(await Promise.all(SIDES.map(async (s) => [s, Array.from(await t.trainers[s].params())]))) as Record<Side, number[]>;
        const d = t.trainers.detloss;
        return {
          backend: tf.getBackend(),
          losses: Object.fromEntries(SIDES.map((s) => [s, t.history[s].map(({ total, box, cls, dfl }) => ({ total, box, cls, dfl }))])) as Record<Side, { total: number; box: number; cls: number; dfl: number }[]>,
          ms: Object.fromEntries(SIDES.map((s) => [s, t.history[s].map((r) => r.ms)])) as Record<Side, number[]>,
          init: t.init.values.flatMap((v) => Array.from(v)),
          params,
          memory,
          /** B, A (both levels), R, C and M of every batch, and the strides of the levels. */
          shapes: { batch: BATCH, anchors: ANCHORS, regMax: REG_MAX, classes: CLASSES, rows: MAX_OBJECTS, strides: [...STRIDES] },
          anchors: Array.from(await d.anchors.data()),
          strides: Array.from(await d.strides.data()),
          steps,
        };
      } finally {
        t.dispose();
      }
    },
    /** Puts a NaN into one weight of the live TF.js-ops model, so its next step's loss is not finite. */
    poison() {
      const v = run.trainers.tfjs.vars[0];
      tf.tidy(() => v.assign(tf.fill(v.shape, NaN)));
    },
    stop,
    resume: start,
    /** Resolves once the training loop has ended (at once when none runs); changes nothing. */
    idle: async () => {
      await loop;
    },
  };
  (window as unknown as { trainDemo: typeof hooks }).trainDemo = hooks;

  render();
  setPhase('warmup', 'starting', "Warming up TF.js: compiling the detector's forward pass on the validation images…");
  await drawValidation();
  document.body.dataset.ready = 'true';
  if (new URLSearchParams(location.search).get('autostart') !== '0') start();
  else setPhase('stopped', 'stopped', 'Ready. Press Resume to train.');
  buttons();
}

main().catch((e) => {
  const fatal = $<HTMLElement>('#fatal');
  fatal.textContent = `The trainer could not start: ${(e as Error).message ?? e}`;
  fatal.hidden = false;
  document.body.dataset.ready = 'false';
});
