/**
 * The box playground: drag and resize a predicted and a target box; every iou_loss variant is
 * recomputed for the pair (GPU, or the CPU reference) and the chosen variant's gradient is drawn
 * as descent arrows on the predicted box. Each variant keeps its own params, edited with the small
 * controls under the variant select (only those that apply to it); a value the library refuses is
 * shown as its message, in that variant's row and under the controls.
 */
import { cpu, DetlossError } from 'detloss';
import { cursorFor, DEFAULT_BOXES, dragBox, hitTest, type Box, type Grip } from './boxes';
import { callParams, defaultValues, describeParams, markInvalid, paramControls, renderControls, type ParamValue } from './box-params';
import { backendLabel, compute, type Computed } from './compute';
import { drawScene } from './draw';
import type { GpuSession } from './gpu-session';
import { latestOnly } from './latest';

/** The iou_loss variants the table lists: a key for the page and the params of the call. */
export const VARIANTS = [
  { key: 'iou/linear', label: 'IoU, linear', formula: '1 − IoU', params: { variant: 'iou', mode: 'linear' } },
  { key: 'iou/square', label: 'IoU, square', formula: '1 − IoU²', params: { variant: 'iou', mode: 'square' } },
  { key: 'iou/log', label: 'IoU, log', formula: '−log IoU', params: { variant: 'iou', mode: 'log' } },
  { key: 'giou', label: 'GIoU', formula: '1 − IoU + |C∖U| / |C|', params: { variant: 'giou' } },
  { key: 'diou', label: 'DIoU', formula: '1 − IoU + ρ² / c²', params: { variant: 'diou' } },
  { key: 'ciou', label: 'CIoU', formula: 'DIoU + α·v', params: { variant: 'ciou' } },
  { key: 'eiou', label: 'EIoU', formula: 'DIoU + Δw²/cw² + Δh²/ch²', params: { variant: 'eiou' } },
  { key: 'siou', label: 'SIoU', formula: '1 − IoU + (Δ + Ω) / 2', params: { variant: 'siou' } },
  { key: 'mpdiou', label: 'MPDIoU', formula: '1 − IoU + (d₁² + d₂²) / (W² + H²)', params: { variant: 'mpdiou' } },
  { key: 'shape', label: 'Shape-IoU', formula: '1 − IoU + dist + ½·shape', params: { variant: 'shape' } },
  { key: 'wiou', label: 'Wise-IoU', formula: 'r · exp(ρ² / c²) · (1 − IoU)', params: { variant: 'wiou' } },
] as const;

const WIDTH = 640;
const HEIGHT = 400;

/** The param controls; mpdiou's imageSize defaults to the canvas. */
const CONTROLS = paramControls({ width: WIDTH, height: HEIGHT });

interface Boxes {
  pred: Box;
  target: Box;
}

/** What is computed: the boxes, and the params each variant is called with (beyond its own). */
interface State extends Boxes {
  params: Map<string, Record<string, ParamValue>>;
  /** Counts the changes, so the page (and tests) can tell which change a result belongs to. */
  rev: number;
}

/** One variant's result, or the library's refusal of its params. */
type Outcome = { params: Record<string, ParamValue> } & ({ ok: true; r: Computed } | { ok: false; message: string; argument?: string });

/** The page elements the playground uses. */
export interface PlaygroundElements {
  canvas: HTMLCanvasElement;
  select: HTMLSelectElement;
  /** Where the chosen variant's param controls go. */
  params: HTMLElement;
  /** Where the library's refusal of the chosen variant's params is shown. */
  paramError: HTMLElement;
  table: HTMLTableElement;
  coords: HTMLElement;
  legend: HTMLElement;
  status: HTMLElement;
}

const fmt = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : String(v));
const fmtGrad = (v: number) => (v === 0 ? '0' : Math.abs(v) >= 1e-3 ? v.toFixed(5) : v.toExponential(2));
const list = (b: ArrayLike<number>) => Array.from(b).join(',');

/**
 * Mounts the playground on its elements and computes the first state.
 * Resolves once the table shows the first results.
 */
export async function mountPlayground(el: PlaygroundElements, gpu: GpuSession): Promise<void> {
  const boxes: Boxes = { pred: [...DEFAULT_BOXES.pred], target: [...DEFAULT_BOXES.target] };
  // Each variant's own param values, every control at its default to start with.
  const values = new Map<string, Record<string, ParamValue>>(VARIANTS.map((v) => [v.key, defaultValues(CONTROLS)]));
  let rev = 0;
  let results = new Map<string, Outcome>();
  const ctx = setupCanvas(el.canvas);
  const rows = buildTable(el, () => selected());

  const redraw = () => {
    const key = el.select.value;
    const o = results.get(key);
    const p = o?.params ?? {};
    const arrows = drawScene(ctx, WIDTH, HEIGHT, boxes.pred, boxes.target, o?.ok ? o.r.grad.pred : undefined, {
      innerRatio: typeof p.innerRatio === 'number' && Number.isFinite(p.innerRatio) ? p.innerRatio : 1,
      corners: key === 'mpdiou',
    });
    el.canvas.dataset.pred = list(Float32Array.from(boxes.pred));
    el.canvas.dataset.target = list(Float32Array.from(boxes.target));
    el.canvas.dataset.variant = key;
    el.canvas.dataset.arrows = String(arrows);
    el.coords.innerHTML =
      `<span class="pred">pred</span> [${boxes.pred.map((v) => fmt(v, 1)).join(', ')}] ` +
      `<span class="target">target</span> [${boxes.target.map((v) => fmt(v, 1)).join(', ')}] (x1, y1, x2, y2; pixels)`;
    for (const [k, tr] of rows) tr.classList.toggle('selected', k === key);
    el.legend.textContent = legendText(key, o);
    showParamError(el, o);
  };

  let first: () => void = () => {};
  const firstDone = new Promise<void>((ok) => (first = ok));
  const update = latestOnly<State>(
    async (state) => {
      results = await computeAll(gpu, state);
      showResults(el, rows, results, state);
      redraw();
      first();
    },
    (e) => {
      el.status.textContent = `Computation failed: ${(e as Error).message ?? e}`;
      el.status.classList.add('error');
      console.error(e);
      first();
    },
  );
  const changed = () => {
    rev++;
    el.canvas.dataset.rev = String(rev);
    redraw();
    update({
      pred: [...boxes.pred],
      target: [...boxes.target],
      params: new Map(VARIANTS.map((v) => [v.key, callParams(CONTROLS, v.key, values.get(v.key)!)])),
      rev,
    });
  };
  const showControls = () =>
    renderControls(el.params, CONTROLS, el.select.value, values.get(el.select.value)!, (param, value) => {
      values.get(el.select.value)![param] = value;
      changed();
    });
  const selected = () => {
    showControls();
    redraw();
  };

  attachDrag(el.canvas, boxes, changed);
  el.select.addEventListener('change', selected);
  // After a device loss the table is recomputed where the page computes now (a new context, or the CPU).
  gpu.onChange((s) => {
    if (s.state === 'recovered' || s.state === 'cpu') changed();
  });
  showControls();
  changed();
  await firstDone;
}

/**
 * Every variant's loss and gradient for one pair, one call each (in order: a context runs one call
 * at a time best). A variant whose params the library refuses gets its message instead.
 */
async function computeAll(gpu: GpuSession, s: State): Promise<Map<string, Outcome>> {
  const pred = Float32Array.from(s.pred);
  const target = Float32Array.from(s.target);
  const out = new Map<string, Outcome>();
  for (const v of VARIANTS) {
    const params = s.params.get(v.key) ?? {};
    try {
      const r = await compute(gpu, 'iou_loss', { pred, target }, { ...v.params, ...params, reduction: 'none' });
      out.set(v.key, { ok: true, r, params });
    } catch (e) {
      if (!(e instanceof DetlossError) || e.code !== 'invalid_param') throw e;
      out.set(v.key, { ok: false, message: e.message, argument: e.argument, params });
    }
  }
  return out;
}


function setupCanvas(canvas: HTMLCanvasElement): CanvasRenderingContext2D {
  const dpr = Math.max(1, Math.min(3, window.devicePixelRatio || 1));
  canvas.width = WIDTH * dpr;
  canvas.height = HEIGHT * dpr;
  canvas.style.aspectRatio = `${WIDTH} / ${HEIGHT}`;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('this browser gives no 2D canvas context');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

/** Pointer handling: press on a box's inside (move) or an edge/corner (resize), drag, release. */
function attachDrag(canvas: HTMLCanvasElement, boxes: Boxes, changed: () => void) {
  let drag: { grip: Grip; start: Box; x: number; y: number } | undefined;
  const at = (e: PointerEvent): [number, number] => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * WIDTH) / r.width, ((e.clientY - r.top) * HEIGHT) / r.height];
  };
  canvas.addEventListener('pointerdown', (e) => {
    const [x, y] = at(e);
    const grip = hitTest(boxes, x, y);
    if (!grip) return;
    drag = { grip, start: [...boxes[grip.box]], x, y };
    canvas.setPointerCapture(e.pointerId);
    e.preventDefault();
  });
  canvas.addEventListener('pointermove', (e) => {
    const [x, y] = at(e);
    if (!drag) {
      canvas.style.cursor = cursorFor(hitTest(boxes, x, y));
      return;
    }
    boxes[drag.grip.box] = dragBox(drag.start, drag.grip, x - drag.x, y - drag.y, WIDTH, HEIGHT);
    changed();
  });
  const end = () => (drag = undefined);
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
}


/** Fills the variant select and the table's rows (one per variant); clicking a row selects it. */
function buildTable(el: PlaygroundElements, selected: () => void): Map<string, HTMLTableRowElement> {
  const rows = new Map<string, HTMLTableRowElement>();
  const body = el.table.tBodies[0] ?? el.table.createTBody();
  for (const v of VARIANTS) {
    el.select.add(new Option(`${v.label} (${v.formula})`, v.key));
    const tr = body.insertRow();
    tr.dataset.variant = v.key;
    tr.innerHTML =
      `<th scope="row">${v.label}<small>${v.formula}</small><small class="params"></small></th>` +
      '<td class="loss num">…</td><td class="g num"></td><td class="g num"></td><td class="g num"></td><td class="g num"></td><td class="backend"></td>';
    tr.addEventListener('click', () => {
      el.select.value = v.key;
      selected();
    });
    rows.set(v.key, tr);
  }
  el.select.value = 'giou';
  return rows;
}

/** Writes results into the table, with the exact numbers, the params and the boxes they belong to as data attributes. */
function showResults(el: PlaygroundElements, rows: Map<string, HTMLTableRowElement>, results: Map<string, Outcome>, s: State) {
  const backends = new Set<string>();
  for (const [key, o] of results) {
    const tr = rows.get(key)!;
    const cells = tr.cells;
    tr.dataset.params = JSON.stringify(o.params);
    tr.querySelector('small.params')!.textContent = describeParams(o.params);
    tr.classList.toggle('error', !o.ok);
    if (!o.ok) {
      delete tr.dataset.loss;
      delete tr.dataset.grad;
      delete tr.dataset.backend;
      tr.dataset.error = o.message;
      cells[1].textContent = 'refused';
      cells[1].title = o.message;
      for (let k = 2; k < 6; k++) cells[k].textContent = '';
      cells[6].textContent = '';
      cells[6].className = 'backend';
      continue;
    }
    const r = o.r;
    const loss = r.loss[0];
    const g = Array.from(r.grad.pred ?? []);
    delete tr.dataset.error;
    tr.dataset.loss = String(loss);
    tr.dataset.grad = g.join(',');
    tr.dataset.backend = r.backend;
    cells[1].textContent = fmt(loss, 6);
    cells[1].title = '';
    g.forEach((v, k) => (cells[2 + k].textContent = fmtGrad(v)));
    cells[6].textContent = r.backend === 'gpu' ? 'GPU' : 'CPU reference';
    cells[6].className = `backend ${r.backend}`;
    backends.add(backendLabel(r.backend));
  }
  el.table.dataset.pred = list(Float32Array.from(s.pred));
  el.table.dataset.target = list(Float32Array.from(s.target));
  el.table.dataset.rev = String(s.rev);
  el.table.dataset.updates = String(Number(el.table.dataset.updates ?? 0) + 1);
  const by = el.table.querySelector<HTMLElement>('#computed-by');
  if (by) {
    by.textContent = [...backends].join(' and ');
    by.className = backends.size === 1 && backends.has(backendLabel('gpu')) ? 'gpu' : 'cpu';
  }
  // The plain IoU of the pair (float64), whatever params the IoU rows are given.
  const plain = cpu.run('iou_loss', { pred: Float32Array.from(s.pred), target: Float32Array.from(s.target) }, { variant: 'iou', reduction: 'none' });
  const iou = 1 - plain.loss[0];
  el.status.classList.remove('error');
  el.status.textContent = `IoU = ${fmt(iou, 4)}; the table updates on every change, one computation in flight at a time.`;
}

/** Under the controls: the library's message when it refuses the chosen variant's params; the control at fault is marked. */
function showParamError(el: PlaygroundElements, o: Outcome | undefined) {
  const message = o && !o.ok ? o.message : '';
  el.paramError.textContent = message;
  el.paramError.hidden = message === '';
  markInvalid(el.params, o && !o.ok ? o.argument : undefined);
}

function legendText(key: string, o: Outcome | undefined): string {
  const v = VARIANTS.find((x) => x.key === key);
  if (!v || !o) return '';
  if (!o.ok) return `${v.label}: no arrows, the library refuses these params.`;
  const r = o.r;
  const g = Array.from(r.grad.pred ?? []);
  const gmax = Math.max(...g.map(Math.abs));
  if (!(gmax > 1e-12)) return `${v.label}: the gradient is zero here (no arrows): the plain IoU losses give disjoint boxes none, and Focaler-IoU none outside [d, u].`;
  const with_ = Object.keys(o.params).length ? ` with ${describeParams(o.params)}` : '';
  return (
    `Arrows: the descent direction −∂L/∂(x1, y1, x2, y2) of ${v.label}${with_} at the edges of the prediction, ` +
    `scaled so the longest is ${gmax.toExponential(2)} per pixel (${r.backend === 'gpu' ? 'GPU' : 'CPU reference'}).`
  );
}
