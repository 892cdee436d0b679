/**
 * The detection panel: the controls, one NMS per change on the GPU, on TF.js and on the CPU
 * reference (runners.ts), the kept boxes drawn, the three median times side by side, and whether the
 * results agree. Changes made while a run is in flight are coalesced: only the latest runs next.
 */
import type { DetlossContext } from 'detloss';
import { agreement, describe, type Agreement } from './compare';
import { drawDetections } from './draw';
import { RUNS, runCpu, runGpu, runTfjs, tfjsTwin, type NmsSettings, type Run } from './runners';
import { COUNTS, DEFAULT_COUNT, makeScene, type Scene } from './scene';

/** The page elements the panel uses. */
export interface PanelElements {
  form: HTMLFormElement;
  iou: HTMLInputElement;
  iouOut: HTMLOutputElement;
  score: HTMLInputElement;
  scoreOut: HTMLOutputElement;
  n: HTMLSelectElement;
  seed: HTMLInputElement;
  classes: HTMLInputElement;
  canvas: HTMLCanvasElement;
  caption: HTMLElement;
  results: HTMLTableElement;
  agree: HTMLUListElement;
  status: HTMLElement;
  runs: HTMLElement;
}

/** What the controls ask for, with the revision of the change that set it. */
interface Request extends NmsSettings {
  rev: number;
  n: number;
  seed: number;
}

/** The results of one request: a run per backend (or why there is none), and detloss's nms_tfjs on tf.image's inputs. */
interface Outcome {
  gpu?: Run;
  gpuNote?: string;
  tfjs?: Run;
  tfjsNote?: string;
  cpu: Run;
  twin?: Int32Array;
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));
const why = (e: unknown) => `failed: ${(e as Error).message ?? e}`;

/** Wires the controls; runs once for the starting values. Resolves when that first run is shown. */
export async function mountPanel(el: PanelElements, dl: DetlossContext | undefined): Promise<void> {
  for (const n of COUNTS) el.n.add(new Option(n.toLocaleString('en-US'), String(n)));
  el.n.value = String(DEFAULT_COUNT);
  el.runs.textContent = String(RUNS);
  el.form.addEventListener('submit', (e) => e.preventDefault());

  let rev = 0;
  let scene: Scene | undefined;
  const read = (): Request => {
    el.iouOut.value = Number(el.iou.value).toFixed(2);
    el.scoreOut.value = Number(el.score.value).toFixed(2);
    const seed = Math.max(1, Math.floor(Number(el.seed.value)) || 1);
    el.form.dataset.rev = String(++rev); // the latest change; the results say which one they show
    return { rev, n: Number(el.n.value), seed, iouThreshold: Number(el.iou.value), scoreThreshold: Number(el.score.value), classAware: el.classes.checked };
  };

  const work = async (r: Request) => {
    if (!scene || scene.seed !== r.seed || scene.n !== r.n) scene = makeScene(r.seed, r.n);
    el.status.dataset.state = 'running';
    el.status.textContent = `Running NMS on ${r.n.toLocaleString('en-US')} boxes…`;
    const out = await runAll(dl, scene, r);
    show(el, scene, r, out);
  };
  const fail = (e: unknown) => {
    el.status.dataset.state = 'error';
    el.status.textContent = `The run failed: ${(e as Error).message ?? e}`;
    console.error(e);
  };

  // At most one run in flight; a change made meanwhile replaces any waiting one.
  let pending: Request | undefined;
  let running: Promise<void> | undefined;
  const request = (r: Request) => {
    pending = r;
    running ??= (async () => {
      while (pending) {
        const next = pending;
        pending = undefined;
        await work(next).catch(fail);
      }
      running = undefined;
    })();
    return running;
  };
  for (const input of [el.iou, el.score, el.seed]) input.addEventListener('input', () => void request(read()));
  for (const input of [el.n, el.classes]) input.addEventListener('change', () => void request(read()));
  await request(read());
}

/** Runs the three backends in turn (and the nms_tfjs check); a failing GPU or TF.js run is noted, not fatal. */
async function runAll(dl: DetlossContext | undefined, scene: Scene, o: NmsSettings): Promise<Outcome> {
  const out: Partial<Outcome> = {};
  if (dl) {
    try {
      out.gpu = await runGpu(dl, scene, o);
    } catch (e) {
      out.gpuNote = why(e);
    }
  } else out.gpuNote = 'not run: no WebGPU';
  try {
    out.tfjs = await runTfjs(scene, o);
  } catch (e) {
    out.tfjsNote = why(e);
  }
  out.cpu = await runCpu(scene, o);
  try {
    out.twin = await tfjsTwin(out.gpu ? dl : undefined, scene, o);
  } catch (e) {
    console.error(e);
  }
  return out as Outcome;
}

/** Puts one outcome on the page: the canvas, the table's rows, the agreement lines, and data-* for tests. */
function show(el: PanelElements, scene: Scene, r: Request, out: Outcome) {
  const drawn = out.gpu ?? out.cpu;
  drawDetections(el.canvas, scene, drawn.keep, r.scoreThreshold);
  const candidates = scene.scores.filter((s) => s > r.scoreThreshold).length;
  el.caption.textContent =
    `${scene.n.toLocaleString('en-US')} boxes, seed ${scene.seed}, ${scene.objects.length} objects; ${candidates} score over ${r.scoreThreshold.toFixed(2)}; ` +
    `${drawn.keep.length} kept by ${out.gpu ? 'detloss nms on the GPU' : 'the CPU reference'}${r.classAware ? ' (class-aware)' : ''}.`;

  const runs: Record<'gpu' | 'tfjs' | 'cpu', Run | undefined> = { gpu: out.gpu, tfjs: out.tfjs, cpu: out.cpu };
  const slowest = Math.max(...Object.values(runs).map((x) => x?.ms ?? 0));
  for (const row of Array.from(el.results.tBodies[0].rows)) {
    const b = row.dataset.backend as keyof typeof runs;
    const run = runs[b];
    const note = b === 'gpu' ? out.gpuNote : b === 'tfjs' ? out.tfjsNote : undefined;
    row.querySelector('.kept')!.textContent = run ? String(run.keep.length) : '—';
    row.querySelector('.ms')!.textContent = run ? fmt(run.ms) : (note ?? '—');
    row.querySelector<HTMLElement>('.bar span')!.style.width = run ? `${(100 * run.ms) / slowest}%` : '0';
    row.dataset.kept = run ? String(run.keep.length) : '';
    row.dataset.ms = run ? String(run.ms) : '';
  }

  // Which pairs must agree: the GPU and the CPU reference (one op), and tf.image and detloss's nms_tfjs (one algorithm).
  // nms against tf.image may part where an IoU equals the threshold (> against >=); that is said, not flagged.
  const lines: { pair: string; g: Agreement; mayDiffer: boolean }[] = [];
  if (out.gpu) lines.push({ pair: 'gpu-cpu', g: agreement(out.gpu.keep, out.cpu.keep), mayDiffer: false });
  if (out.tfjs && out.twin) lines.push({ pair: 'tfjs-twin', g: agreement(out.tfjs.keep, out.twin), mayDiffer: false });
  if (out.tfjs) lines.push({ pair: 'nms-tfjs', g: agreement(drawn.keep, out.tfjs.keep), mayDiffer: true });
  const names: Record<string, [string, string]> = {
    'gpu-cpu': ['detloss nms on the GPU', 'the CPU reference'],
    'tfjs-twin': ['tf.image', `detloss nms_tfjs (${out.gpu ? 'GPU' : 'CPU reference'})`],
    'nms-tfjs': [`detloss nms (${out.gpu ? 'GPU' : 'CPU reference'})`, 'tf.image'],
  };
  el.agree.replaceChildren(
    ...lines.map(({ pair, g, mayDiffer }) => {
      const li = document.createElement('li');
      li.dataset.pair = pair;
      li.dataset.same = String(g.same);
      li.dataset.mayDiffer = String(mayDiffer);
      const [a, b] = names[pair];
      li.textContent = describe(g, a, b);
      if (!g.same)
        li.textContent += mayDiffer
          ? ' Expected where an IoU equals the threshold: tf.image drops a box at IoU ≥ iouThreshold, nms only at IoU > iouThreshold.'
          : ' These should agree: this is a bug, or an IoU within float32 rounding of the threshold.';
      return li;
    }),
  );

  // For tests and the console: everything shown, exactly.
  const d = el.results.dataset;
  Object.assign(d, {
    rev: String(r.rev),
    n: String(r.n),
    seed: String(r.seed),
    iou: String(r.iouThreshold),
    score: String(r.scoreThreshold),
    classAware: String(r.classAware),
    gpuKeep: out.gpu ? Array.from(out.gpu.keep).join(',') : '',
    tfjsKeep: out.tfjs ? Array.from(out.tfjs.keep).join(',') : '',
    cpuKeep: Array.from(out.cpu.keep).join(','),
    twinKeep: out.twin ? Array.from(out.twin).join(',') : '',
  });
  el.status.dataset.state = 'done';
  el.status.dataset.rev = String(r.rev);
  el.status.textContent = `Done: ${r.n.toLocaleString('en-US')} boxes, iouThreshold ${r.iouThreshold.toFixed(2)}, scoreThreshold ${r.scoreThreshold.toFixed(2)}${r.classAware ? ', class-aware' : ''}.`;
}
