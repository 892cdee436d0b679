/**
 * The iou_loss params the playground offers as small controls (ops.md, "More box losses"): which
 * variant each applies to, its default, and the control that edits it. The page passes a param only
 * where it applies and differs from its default (mpdiou's imageSize always), so the library's
 * refusals (a param given to a variant it does not apply to) never come from the page itself, and
 * any other refusal (power with ciouAlpha 'mmdet', focaler with d >= u, a value out of range) is
 * the library's own message.
 */

/** A value a control holds: a number (NaN when the field does not hold one), a name, or a pair. */
export type ParamValue = number | string | [number, number];

/** How one param is edited. */
export interface ParamControl {
  /** The iou_loss param name, as ops.md spells it. */
  param: string;
  /** Short label beside the control. */
  label: string;
  /** Tooltip: what the param does. */
  title: string;
  kind: 'number' | 'range' | 'select' | 'pair';
  /** The library's default (for imageSize, the canvas size: the param has no default there). */
  default: ParamValue;
  /** Always passed, even at its default (the variant needs it). */
  required?: boolean;
  min?: number;
  max?: number;
  step?: number;
  /** For selects: the values and their labels. For pairs: the two parts' labels. */
  options?: readonly (readonly [string, string])[];
  parts?: readonly [string, string];
}

/** Every param control, in the order the page lists them. */
export function paramControls(canvas: { width: number; height: number }): readonly ParamControl[] {
  return [
    {
      param: 'imageSize',
      label: 'image size',
      title: "MPDIoU's [W, H]: the corner distances are divided by W² + H² (here the canvas, by default)",
      kind: 'pair',
      default: [canvas.width, canvas.height],
      required: true,
      min: 1,
      step: 10,
      parts: ['W', 'H'],
    },
    { param: 'scale', label: 'scale', title: "Shape-IoU's scale s: weights the offsets by the target's shape (0: no weighting)", kind: 'number', default: 0, min: 0, step: 0.1 },
    {
      param: 'wiouVersion',
      label: 'version',
      title: 'Wise-IoU version: v1 (no focusing), v2 (monotonic, √β), v3 (non-monotonic, β / (δ·α^(β−δ)))',
      kind: 'select',
      default: 3,
      options: [
        ['1', 'v1'],
        ['2', 'v2'],
        ['3', 'v3'],
      ],
    },
    { param: 'iouMean', label: 'mean of 1 − IoU', title: "Wise-IoU's running mean of 1 − IoU (β = (1 − IoU) / mean); > 0", kind: 'number', default: 1, min: 0.05, step: 0.05 },
    { param: 'wiouAlpha', label: 'α', title: "Wise-IoU v3's α (> 1)", kind: 'number', default: 1.9, min: 1.1, step: 0.1 },
    { param: 'wiouDelta', label: 'δ', title: "Wise-IoU v3's δ (> 0)", kind: 'number', default: 3, min: 0.1, step: 0.1 },
    {
      param: 'ciouAlpha',
      label: 'α convention',
      title: "How CIoU weights v: torchvision's α = v / (1 − IoU + v), or mmdetection's (0 below IoU 0.5, clamped loss)",
      kind: 'select',
      default: 'torchvision',
      options: [
        ['torchvision', 'torchvision'],
        ['mmdet', 'mmdetection'],
      ],
    },
    { param: 'power', label: 'power', title: 'Alpha-IoU: the IoU and the penalties raised to this power (>= 1; 1 is the plain loss)', kind: 'number', default: 1, min: 1, step: 0.5 },
    { param: 'innerRatio', label: 'inner ratio', title: 'Inner-IoU: the IoU term of auxiliary boxes scaled by r about their centres (dotted; 1 is the plain IoU)', kind: 'range', default: 1, min: 0.5, max: 1.5, step: 0.05 },
    {
      param: 'focaler',
      label: 'focaler',
      title: 'Focaler-IoU: the IoU term mapped linearly from [d, u] onto [0, 1], clamped (0 <= d < u <= 1)',
      kind: 'pair',
      default: [0, 1],
      min: 0,
      max: 1,
      step: 0.05,
      parts: ['d', 'u'],
    },
  ];
}

/** The variants (page keys) each variant-specific param applies to; the others apply to all. */
const ONLY: Record<string, readonly string[]> = {
  imageSize: ['mpdiou'],
  scale: ['shape'],
  wiouVersion: ['wiou'],
  iouMean: ['wiou'],
  wiouAlpha: ['wiou'],
  wiouDelta: ['wiou'],
  ciouAlpha: ['ciou'],
  // Alpha-IoU: the linear IoU loss, GIoU, DIoU and CIoU only.
  power: ['iou/linear', 'giou', 'diou', 'ciou'],
};

/** Whether `param` applies to the variant of page key `key` (as 'iou/linear' or 'giou'). */
export const appliesTo = (param: string, key: string) => ONLY[param]?.includes(key) ?? true;

/** The controls shown for variant `key`, in page order. */
export const controlsFor = (controls: readonly ParamControl[], key: string) => controls.filter((c) => appliesTo(c.param, key));

const same = (a: ParamValue, b: ParamValue) =>
  Array.isArray(a) && Array.isArray(b) ? a[0] === b[0] && a[1] === b[1] : a === b;

/**
 * The params to pass for variant `key`: its applicable controls whose value is not the default,
 * and the required ones. A number field that holds no number passes NaN, which the library refuses.
 */
export function callParams(controls: readonly ParamControl[], key: string, values: Record<string, ParamValue>): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const c of controlsFor(controls, key)) {
    const v = values[c.param] ?? c.default;
    if (c.required || !same(v, c.default)) out[c.param] = Array.isArray(v) ? [v[0], v[1]] : v;
  }
  return out;
}

/** The default values of every control. */
export function defaultValues(controls: readonly ParamControl[]): Record<string, ParamValue> {
  return Object.fromEntries(controls.map((c) => [c.param, Array.isArray(c.default) ? [...c.default] : c.default]));
}

/** A short text of the params passed (for the table row), e.g. "power 3, focaler [0.1, 0.9]". */
export function describeParams(p: Record<string, ParamValue>): string {
  return Object.entries(p)
    .map(([k, v]) => `${k} ${Array.isArray(v) ? `[${v.join(', ')}]` : typeof v === 'string' ? `'${v}'` : String(v)}`)
    .join(', ');
}

/**
 * Builds the controls of `key` into `host`, showing `values`; `changed(param, value)` is called on
 * every edit. Each input carries `data-param` (and `data-index`, 0 or 1, for a pair's two fields).
 */
export function renderControls(
  host: HTMLElement,
  controls: readonly ParamControl[],
  key: string,
  values: Record<string, ParamValue>,
  changed: (param: string, value: ParamValue) => void,
): void {
  host.replaceChildren();
  for (const c of controlsFor(controls, key)) {
    const wrap = document.createElement('label');
    wrap.className = `param ${c.kind}`;
    wrap.title = c.title;
    wrap.dataset.param = c.param;
    const name = document.createElement('span');
    name.className = 'param-name';
    name.textContent = c.label;
    wrap.append(name);
    const v = values[c.param] ?? c.default;
    if (c.kind === 'select') {
      const sel = document.createElement('select');
      sel.dataset.param = c.param;
      for (const [value, label] of c.options ?? []) sel.add(new Option(label, value));
      sel.value = String(v);
      sel.addEventListener('change', () => changed(c.param, typeof c.default === 'number' ? Number(sel.value) : sel.value));
      wrap.append(sel);
    } else if (c.kind === 'pair') {
      const pairValue = (Array.isArray(v) ? [...v] : [NaN, NaN]) as [number, number];
      (c.parts ?? ['', '']).forEach((part, i) => {
        const small = document.createElement('span');
        small.className = 'part';
        small.textContent = part;
        const input = numberInput(c, pairValue[i]);
        input.dataset.param = c.param;
        input.dataset.index = String(i);
        input.setAttribute('aria-label', `${c.param} ${part}`);
        input.addEventListener('input', () => {
          pairValue[i] = input.valueAsNumber;
          changed(c.param, [pairValue[0], pairValue[1]]);
        });
        wrap.append(small, input);
      });
    } else if (c.kind === 'range') {
      const input = numberInput(c, v as number);
      input.type = 'range';
      input.dataset.param = c.param;
      const out = document.createElement('output');
      out.textContent = fmtValue(v as number);
      input.addEventListener('input', () => {
        out.textContent = fmtValue(input.valueAsNumber);
        changed(c.param, input.valueAsNumber);
      });
      wrap.append(input, out);
    } else {
      const input = numberInput(c, v as number);
      input.dataset.param = c.param;
      input.addEventListener('input', () => changed(c.param, input.valueAsNumber));
      wrap.append(input);
    }
    host.append(wrap);
  }
}

const fmtValue = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '—');

function numberInput(c: ParamControl, value: number): HTMLInputElement {
  const input = document.createElement('input');
  input.type = 'number';
  // No min/max on number fields: an out-of-range value goes to the library, which says what is wrong.
  if (c.kind === 'range') {
    input.min = String(c.min);
    input.max = String(c.max);
  }
  if (c.step !== undefined) input.step = String(c.step);
  input.value = Number.isFinite(value) ? String(value) : '';
  return input;
}

/** Marks the control of `param` (all its fields) as the one at fault, and clears the others. */
export function markInvalid(host: HTMLElement, param: string | undefined): void {
  for (const e of Array.from(host.querySelectorAll<HTMLElement>('[data-param]'))) {
    const bad = param !== undefined && e.dataset.param === param;
    if (e instanceof HTMLLabelElement) e.classList.toggle('invalid', bad);
    else if (bad) e.setAttribute('aria-invalid', 'true');
    else e.removeAttribute('aria-invalid');
  }
}
