/**
 * The box playground: drag and resize a predicted and a target box; every iou_loss variant is
 * recomputed for the pair (GPU, or the CPU reference) and the chosen variant's gradient is drawn
 * as descent arrows on the predicted box. Each variant keeps its own params, edited with the small
 * controls under the variant select (only those that apply to it); a value the library refuses is
 * shown as its message, in that variant's row and under the controls.
 *
 * Rotated mode (the checkbox above the canvas) gives each box an angle, turned with a handle; the
 * rotated_iou_loss variants are computed for the turned pair in a second table, each at its defaults,
 * while the iou_loss table goes on with the boxes' axis-aligned versions (the angles ignored).
 */
import { cpu, DetlossError } from 'detloss';
import {
  angleStep,
  cursorFor,
  cursorForRotated,
  DEFAULT_BOXES,
  dragBox,
  dragRotated,
  handleAngle,
  hitTest,
  hitTestRotated,
  rotatedOf,
  turnAbout,
  type Angles,
  type Box,
  type Grip,
  type RotatedGrip,
} from './boxes';
import { callParams, defaultValues, describeParams, markInvalid, paramControls, renderControls, type ParamValue } from './box-params';
import { backendLabel, compute, type Computed } from './compute';
import { drawRotatedScene, drawScene } from './draw';
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

/** The rotated_iou_loss variants the rotated table lists (each at its defaults): a page key, and the variant. */
export const ROTATED = [
  { key: 'r/probiou', label: 'ProbIoU', formula: '√(1 − e^(−B) + ε), B Bhattacharyya', variant: 'probiou' },
  { key: 'r/gwd', label: 'GWD', formula: 'log1p(Wasserstein, normalized)', variant: 'gwd' },
  { key: 'r/kld', label: 'KLD', formula: 'log1p(√KL(target‖pred))', variant: 'kld' },
  { key: 'r/jd', label: 'JD', formula: 'log1p(√((KL₁₂ + KL₂₁) / 2))', variant: 'jd' },
  { key: 'r/kld_symmax', label: 'KLD symmax', formula: 'log1p(max(√KL₁₂, √KL₂₁))', variant: 'kld_symmax' },
  { key: 'r/kld_symmin', label: 'KLD symmin', formula: 'log1p(min(√KL₁₂, √KL₂₁))', variant: 'kld_symmin' },
  { key: 'r/kfiou', label: 'KFIoU', formula: 'smooth-L1(Δcentre, px) + 1 − KFIoU', variant: 'kfiou' },
] as const;

const isRotatedKey = (key: string) => key.startsWith('r/');

const WIDTH = 640;
const HEIGHT = 400;

/** The param controls; mpdiou's imageSize defaults to the canvas. */
const CONTROLS = paramControls({ width: WIDTH, height: HEIGHT });

interface Boxes {
  pred: Box;
  target: Box;
  /** The boxes' angles (radians); used in rotated mode only. */
  angles: Angles;
}

/** What is computed: the boxes, and the params each variant is called with (beyond its own). */
interface State extends Boxes {
  params: Map<string, Record<string, ParamValue>>;
  /** Counts the changes, so the page (and tests) can tell which change a result belongs to. */
  rev: number;
  /** Rotated mode: the rotated_iou_loss variants are computed too. */
  rotated: boolean;
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
  /** The rotated mode checkbox. */
  rotated: HTMLInputElement;
  /** The rotated_iou_loss table, and the part of the page that holds it (shown in rotated mode only). */
  rtable: HTMLTableElement;
  rpanel: HTMLElement;
}

const fmt = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : String(v));
const fmtGrad = (v: number) => (v === 0 ? '0' : Math.abs(v) >= 1e-3 ? v.toFixed(5) : v.toExponential(2));
const list = (b: ArrayLike<number>) => Array.from(b).join(',');

/**
 * Mounts the playground on its elements and computes the first state.
 * Resolves once the table shows the first results.
 */
export async function mountPlayground(el: PlaygroundElements, gpu: GpuSession): Promise<void> {
  const boxes: Boxes = { pred: [...DEFAULT_BOXES.pred], target: [...DEFAULT_BOXES.target], angles: { pred: 0, target: 0 } };
  // Each variant's own param values, every control at its default to start with.
  const values = new Map<string, Record<string, ParamValue>>(VARIANTS.map((v) => [v.key, defaultValues(CONTROLS)]));
  let rev = 0;
  let results = new Map<string, Outcome>();
  let rresults = new Map<string, Computed>();
  const ctx = setupCanvas(el.canvas);
  const rows = buildTable(el, () => selected());
  const rrows = buildRotatedTable(el, () => selected());
  const rotatedMode = () => el.rotated.checked;

  const redraw = () => {
    const key = el.select.value;
    const rotated = rotatedMode();
    const o = results.get(key);
    const p = o?.params ?? {};
    const ro = rresults.get(key);
    const arrows = rotated
      ? drawRotatedScene(ctx, WIDTH, HEIGHT, boxes.pred, boxes.target, boxes.angles, isRotatedKey(key) ? ro?.grad.pred : undefined)
      : drawScene(ctx, WIDTH, HEIGHT, boxes.pred, boxes.target, o?.ok ? o.r.grad.pred : undefined, {
          innerRatio: typeof p.innerRatio === 'number' && Number.isFinite(p.innerRatio) ? p.innerRatio : 1,
          corners: key === 'mpdiou',
        });
    el.canvas.dataset.pred = list(Float32Array.from(boxes.pred));
    el.canvas.dataset.target = list(Float32Array.from(boxes.target));
    el.canvas.dataset.angles = list(Float32Array.from([boxes.angles.pred, boxes.angles.target]));
    el.canvas.dataset.rotated = String(rotated);
    el.canvas.dataset.variant = key;
    el.canvas.dataset.arrows = String(arrows);
    const deg = (a: number) => `${fmt((a * 180) / Math.PI, 1)}°`;
    el.coords.innerHTML =
      `<span class="pred">pred</span> [${boxes.pred.map((v) => fmt(v, 1)).join(', ')}] ` +
      `<span class="target">target</span> [${boxes.target.map((v) => fmt(v, 1)).join(', ')}] (x1, y1, x2, y2; pixels)` +
      (rotated
        ? `; θ: <span class="pred">pred</span> ${fmt(boxes.angles.pred, 4)} rad (${deg(boxes.angles.pred)}), ` +
          `<span class="target">target</span> ${fmt(boxes.angles.target, 4)} rad (${deg(boxes.angles.target)}). ` +
          'The x1…y2 are the axis-aligned versions (dotted), which iou_loss sees.'
        : '');
    for (const [k, tr] of rows) tr.classList.toggle('selected', k === key);
    for (const [k, tr] of rrows) tr.classList.toggle('selected', k === key);
    el.legend.textContent = isRotatedKey(key)
      ? rotatedLegendText(key, ro)
      : rotated
        ? 'No arrows in rotated mode for the axis-aligned losses: pick a rotated variant to see its gradient.'
        : legendText(key, o);
    showParamError(el, isRotatedKey(key) ? undefined : o);
  };

  let first: () => void = () => {};
  const firstDone = new Promise<void>((ok) => (first = ok));
  const update = latestOnly<State>(
    async (state) => {
      ({ results, rresults } = await computeAll(gpu, state));
      showResults(el, rows, results, state);
      showRotatedResults(el, rrows, rresults, state);
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
      angles: { ...boxes.angles },
      params: new Map(VARIANTS.map((v) => [v.key, callParams(CONTROLS, v.key, values.get(v.key)!)])),
      rev,
      rotated: rotatedMode(),
    });
  };
  const showControls = () => {
    // The rotated variants run at their defaults: no controls ('none').
    if (isRotatedKey(el.select.value)) return el.params.replaceChildren();
    renderControls(el.params, CONTROLS, el.select.value, values.get(el.select.value)!, (param, value) => {
      values.get(el.select.value)![param] = value;
      changed();
    });
  };
  const selected = () => {
    showControls();
    redraw();
  };

  attachDrag(el.canvas, boxes, rotatedMode, changed);
  el.select.addEventListener('change', selected);
  // Rotated mode: the rotated panel and the rotated variants in the select (an axis-aligned one is chosen again on leaving it).
  let axisKey = el.select.value;
  const group = document.createElement('optgroup');
  group.label = 'rotated_iou_loss (rotated mode)';
  for (const v of ROTATED) group.append(new Option(`${v.label} (${v.formula})`, v.key));
  el.rotated.addEventListener('change', () => {
    const on = rotatedMode();
    el.rpanel.hidden = !on;
    document.body.classList.toggle('rotated-mode', on);
    if (on) {
      axisKey = el.select.value;
      el.select.append(group);
      el.select.value = ROTATED[0].key;
    } else {
      if (isRotatedKey(el.select.value)) el.select.value = axisKey;
      group.remove();
    }
    if (!on) rresults = new Map();
    showControls();
    changed();
  });
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
async function computeAll(gpu: GpuSession, s: State): Promise<{ results: Map<string, Outcome>; rresults: Map<string, Computed> }> {
  const pred = Float32Array.from(s.pred);
  const target = Float32Array.from(s.target);
  const out = new Map<string, Outcome>();
  const rout = new Map<string, Computed>();
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
  if (s.rotated) {
    // rotated_iou_loss takes (cx, cy, w, h, theta) rows; the same pair, with its angles.
    const rpred = Float32Array.from(rotatedOf(s.pred, s.angles.pred));
    const rtarget = Float32Array.from(rotatedOf(s.target, s.angles.target));
    for (const v of ROTATED) rout.set(v.key, await compute(gpu, 'rotated_iou_loss', { pred: rpred, target: rtarget }, { variant: v.variant, reduction: 'none' }));
  }
  return { results: out, rresults: rout };
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

/**
 * Pointer handling: press on a box's inside (move) or an edge/corner (resize), drag, release. In rotated
 * mode the edges are the turned box's, and a box's handle turns it about its centre; with Shift held, the
 * handle turns the pair together, the other box's centre turned about this one's.
 */
function attachDrag(canvas: HTMLCanvasElement, boxes: Boxes, rotated: () => boolean, changed: () => void) {
  let drag: { grip: Grip | RotatedGrip; start: Box; x: number; y: number } | undefined;
  let turn: { last: number; total: number; theta0: number; other: 'pred' | 'target'; otherStart: Box; otherTheta0: number; both: boolean } | undefined;
  const at = (e: PointerEvent): [number, number] => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * WIDTH) / r.width, ((e.clientY - r.top) * HEIGHT) / r.height];
  };
  canvas.addEventListener('pointerdown', (e) => {
    const [x, y] = at(e);
    const grip = rotated() ? hitTestRotated(boxes, boxes.angles, x, y) : hitTest(boxes, x, y);
    if (!grip) return;
    drag = { grip, start: [...boxes[grip.box]], x, y };
    const other = grip.box === 'pred' ? 'target' : 'pred';
    turn =
      'turn' in grip && grip.turn
        ? { last: handleAngle(boxes[grip.box], x, y), total: 0, theta0: boxes.angles[grip.box], other, otherStart: [...boxes[other]], otherTheta0: boxes.angles[other], both: e.shiftKey }
        : undefined;
    canvas.setPointerCapture(e.pointerId);
    e.preventDefault();
  });
  canvas.addEventListener('pointermove', (e) => {
    const [x, y] = at(e);
    if (!drag) {
      canvas.style.cursor = rotated() ? cursorForRotated(hitTestRotated(boxes, boxes.angles, x, y)) : cursorFor(hitTest(boxes, x, y));
      return;
    }
    const box = drag.grip.box;
    if (turn) {
      // The handle's angle about the centre, followed step by step, so whole turns add up.
      const now = handleAngle(boxes[box], x, y);
      turn.total += angleStep(now, turn.last);
      turn.last = now;
      boxes.angles[box] = turn.theta0 + turn.total;
      if (turn.both) {
        const [cx, cy] = rotatedOf(boxes[box], 0);
        boxes[turn.other] = turnAbout(turn.otherStart, turn.total, cx, cy);
        boxes.angles[turn.other] = turn.otherTheta0 + turn.total;
      }
    } else if (rotated()) boxes[box] = dragRotated(drag.start, boxes.angles[box], drag.grip, x - drag.x, y - drag.y, WIDTH, HEIGHT);
    else boxes[box] = dragBox(drag.start, drag.grip, x - drag.x, y - drag.y, WIDTH, HEIGHT);
    changed();
  });
  const end = () => {
    drag = undefined;
    turn = undefined;
  };
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

/** The rotated table's rows (one per rotated variant); clicking a row picks it for the arrows. */
function buildRotatedTable(el: PlaygroundElements, selected: () => void): Map<string, HTMLTableRowElement> {
  const rows = new Map<string, HTMLTableRowElement>();
  const body = el.rtable.tBodies[0] ?? el.rtable.createTBody();
  for (const v of ROTATED) {
    const tr = body.insertRow();
    tr.dataset.variant = v.key;
    tr.innerHTML =
      `<th scope="row">${v.label}<small>${v.formula}</small></th>` +
      '<td class="loss num">…</td>' +
      '<td class="g num"></td>'.repeat(5) +
      '<td class="backend"></td>';
    tr.addEventListener('click', () => {
      if (!el.rotated.checked) return;
      el.select.value = v.key;
      selected();
    });
    rows.set(v.key, tr);
  }
  return rows;
}

/** Writes the rotated results into their table, with the exact numbers and the (float32) rows they were computed for as data attributes. */
function showRotatedResults(el: PlaygroundElements, rows: Map<string, HTMLTableRowElement>, results: Map<string, Computed>, s: State) {
  if (!s.rotated) return;
  const backends = new Set<string>();
  for (const [key, r] of results) {
    const tr = rows.get(key)!;
    const cells = tr.cells;
    const g = Array.from(r.grad.pred ?? []);
    tr.dataset.loss = String(r.loss[0]);
    tr.dataset.grad = g.join(',');
    tr.dataset.backend = r.backend;
    cells[1].textContent = fmt(r.loss[0], 6);
    g.forEach((v, k) => (cells[2 + k].textContent = fmtGrad(v)));
    cells[7].textContent = r.backend === 'gpu' ? 'GPU' : 'CPU reference';
    cells[7].className = `backend ${r.backend}`;
    backends.add(backendLabel(r.backend));
  }
  el.rtable.dataset.pred = list(Float32Array.from(rotatedOf(s.pred, s.angles.pred)));
  el.rtable.dataset.target = list(Float32Array.from(rotatedOf(s.target, s.angles.target)));
  el.rtable.dataset.rev = String(s.rev);
  const by = el.rtable.querySelector<HTMLElement>('.computed-by');
  if (by) {
    by.textContent = [...backends].join(' and ');
    by.className = `computed-by ${backends.size === 1 && backends.has(backendLabel('gpu')) ? 'gpu' : 'cpu'}`;
  }
}

function rotatedLegendText(key: string, r: Computed | undefined): string {
  const v = ROTATED.find((x) => x.key === key);
  if (!v || !r) return '';
  const g = Array.from(r.grad.pred ?? []);
  if (!g.some((x) => Math.abs(x) > 1e-12)) return `${v.label}: the gradient is zero here (no arrows).`;
  return (
    `Arrows: the descent direction −∂L/∂(cx, cy, w, h, θ) of ${v.label} (rotated_iou_loss, its defaults): (cx, cy) from the centre, ` +
    `w at the right edge and h at the bottom edge (along the box's axes), θ at the handle (per pixel of the handle's arc); ` +
    `the longest is scaled to 64 px (${r.backend === 'gpu' ? 'GPU' : 'CPU reference'}).`
  );
}
