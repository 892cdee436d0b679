/**
 * The box playground: drag and resize a predicted and a target box; every iou_loss variant is
 * recomputed for the pair (GPU, or the CPU reference) and the chosen variant's gradient is drawn
 * as descent arrows on the predicted box.
 */
import { cursorFor, dragBox, hitTest, type Box, type Grip } from './boxes';
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
] as const;

const WIDTH = 640;
const HEIGHT = 400;

interface Boxes {
  pred: Box;
  target: Box;
}

/** The page elements the playground uses. */
export interface PlaygroundElements {
  canvas: HTMLCanvasElement;
  select: HTMLSelectElement;
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
  const boxes: Boxes = { pred: [170, 110, 350, 250], target: [250, 150, 450, 310] };
  let results = new Map<string, Computed>();
  const ctx = setupCanvas(el.canvas);
  const rows = buildTable(el, () => redraw());

  const redraw = () => {
    const key = el.select.value;
    drawScene(ctx, WIDTH, HEIGHT, boxes.pred, boxes.target, results.get(key)?.grad.pred);
    el.canvas.dataset.pred = list(Float32Array.from(boxes.pred));
    el.canvas.dataset.target = list(Float32Array.from(boxes.target));
    el.coords.innerHTML =
      `<span class="pred">pred</span> [${boxes.pred.map((v) => fmt(v, 1)).join(', ')}] ` +
      `<span class="target">target</span> [${boxes.target.map((v) => fmt(v, 1)).join(', ')}] (x1, y1, x2, y2; pixels)`;
    for (const [k, tr] of rows) tr.classList.toggle('selected', k === key);
    el.legend.textContent = legendText(key, results.get(key));
  };

  let first: () => void = () => {};
  const firstDone = new Promise<void>((ok) => (first = ok));
  const update = latestOnly<Boxes>(
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
    redraw();
    update({ pred: [...boxes.pred], target: [...boxes.target] });
  };

  attachDrag(el.canvas, boxes, changed);
  el.select.addEventListener('change', redraw);
  // After a device loss the table is recomputed where the page computes now (a new context, or the CPU).
  gpu.onChange((s) => {
    if (s.state === 'recovered' || s.state === 'cpu') changed();
  });
  changed();
  await firstDone;
}

/** Every variant's loss and gradient for one pair, one call each (in order: a context runs one call at a time best). */
async function computeAll(gpu: GpuSession, s: Boxes): Promise<Map<string, Computed>> {
  const pred = Float32Array.from(s.pred);
  const target = Float32Array.from(s.target);
  const out = new Map<string, Computed>();
  for (const v of VARIANTS) out.set(v.key, await compute(gpu, 'iou_loss', { pred, target }, { ...v.params, reduction: 'none' }));
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
      `<th scope="row">${v.label}<small>${v.formula}</small></th>` +
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

/** Writes results into the table, with the exact numbers and the boxes they belong to as data attributes. */
function showResults(el: PlaygroundElements, rows: Map<string, HTMLTableRowElement>, results: Map<string, Computed>, s: Boxes) {
  const backends = new Set<string>();
  for (const [key, r] of results) {
    const tr = rows.get(key)!;
    const loss = r.loss[0];
    const g = Array.from(r.grad.pred ?? []);
    tr.dataset.loss = String(loss);
    tr.dataset.grad = g.join(',');
    tr.dataset.backend = r.backend;
    const cells = tr.cells;
    cells[1].textContent = fmt(loss, 6);
    g.forEach((v, k) => (cells[2 + k].textContent = fmtGrad(v)));
    cells[6].textContent = r.backend === 'gpu' ? 'GPU' : 'CPU reference';
    cells[6].className = `backend ${r.backend}`;
    backends.add(backendLabel(r.backend));
  }
  el.table.dataset.pred = list(Float32Array.from(s.pred));
  el.table.dataset.target = list(Float32Array.from(s.target));
  el.table.dataset.updates = String(Number(el.table.dataset.updates ?? 0) + 1);
  const by = el.table.querySelector<HTMLElement>('#computed-by');
  if (by) {
    by.textContent = [...backends].join(' and ');
    by.className = backends.size === 1 && backends.has(backendLabel('gpu')) ? 'gpu' : 'cpu';
  }
  const iou = 1 - Number(results.get('iou/linear')?.loss[0]);
  el.status.classList.remove('error');
  el.status.textContent = `IoU = ${fmt(iou, 4)}; the table updates on every change, one computation in flight at a time.`;
}

function legendText(key: string, r: Computed | undefined): string {
  const v = VARIANTS.find((x) => x.key === key);
  if (!v || !r) return '';
  const g = Array.from(r.grad.pred ?? []);
  const gmax = Math.max(...g.map(Math.abs));
  if (!(gmax > 1e-12)) return `${v.label}: the gradient is zero here (no arrows); the plain IoU losses give disjoint boxes no gradient.`;
  return (
    `Arrows: the descent direction −∂L/∂(x1, y1, x2, y2) of ${v.label} at the edges of the prediction, ` +
    `scaled so the longest is ${gmax.toExponential(2)} per pixel (${r.backend === 'gpu' ? 'GPU' : 'CPU reference'}).`
  );
}
