import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createDetloss, DetlossError } from '../index';
import { HELPER_OPS, OPS } from '../ops/registry';
import type { PlanRecord, TuneOp, TuneProgress } from '../runtime/public';
import { adapterLine, list, milliseconds, parse, positiveInts } from './command';
import { exitCodeOf, importOptional, ToolError } from './errors';
import { nodeAdapterAdvice } from './parity';
import { ensureRuntimeDir } from './runtime-dir';
import { choicesTable, progressLine, seconds } from './tune-report';
import { TUNE_USAGE } from './usage';

// `detloss tune --node`: Detloss.tune() on Node's WebGPU, its progress on stderr, a table of what
// it chose, and the record written as JSON for createDetloss({ plans }).

/** The ops tuned when `--ops` is not given: one of each family the benchmark's quick preset times. */
export const DEFAULT_TUNE_OPS: readonly TuneOp[] = ['smooth_l1', { op: 'iou_loss', options: { variant: 'ciou' } }, 'sigmoid_focal', 'cross_entropy'];

/** The budget of `detloss tune` when `--budget` is not given (ms); tuning ends sooner when the search does. */
export const DEFAULT_TUNE_BUDGET_MS = 20_000;

/** An op as `--ops` names it: `smooth_l1`, or with a variant `iou_loss:ciou` (or `iou_loss{ciou}`). */
export function parseTuneOp(text: string): TuneOp {
  const m = /^([a-z0-9_]+)(?::([a-z0-9_]+)|\{([a-z0-9_]+)\})?$/i.exec(text);
  if (!m) throw new ToolError('bad_args', `--ops takes op names, with a variant as iou_loss:ciou or iou_loss{ciou}; got "${text}"`);
  const [, op, a, b] = m;
  const desc = Object.hasOwn(OPS, op) ? OPS[op] : HELPER_OPS.find((d) => d.name === op);
  if (!desc) throw new ToolError('bad_args', `--ops: unknown op "${op}"`);
  if (!desc.gpu) throw new ToolError('bad_args', `--ops: ${op} has no GPU kernel, so no launch plan to tune`);
  if (desc.gpu.program) throw new ToolError('bad_args', `--ops: ${op} runs a program of passes fixed per plan kind; it has no launch plan to tune`);
  const variant = a ?? b;
  return variant === undefined ? op : { op, options: { variant } };
}

/** An op of the list as the command lines show it: `iou_loss{ciou}`. */
export const tuneOpText = (o: TuneOp) => (typeof o === 'string' ? o : `${o.op}${o.options?.variant ? `{${String(o.options.variant)}}` : ''}`);

/** The family (kernel module) an op's plans are kept under. */
const familyOf = (o: TuneOp) => OPS[typeof o === 'string' ? o : o.op]?.gpu?.shaderId ?? HELPER_OPS.find((d) => d.name === (typeof o === 'string' ? o : o.op))?.gpu?.shaderId;

/** Reads `--plans`: a missing file or one that is not JSON is a bad argument (createDetloss checks the record's fields). */
function readPlans(file: string): unknown {
  if (!existsSync(file)) throw new ToolError('bad_args', `--plans ${file}: no such file`);
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ToolError('bad_args', `--plans ${file}: not JSON (${(e as Error).message})`, { cause: e });
  }
}

/**
 * A detloss context on Node's WebGPU with timestamps, holding the record read from `plansFile`. No
 * adapter is a `no_adapter` ToolError; a record createDetloss refuses (it checks its options before
 * it asks for an adapter) is a `bad_args` one naming the file and the field.
 */
async function nodeContext(plans: unknown, plansFile?: string) {
  ensureRuntimeDir();
  const webgpu = await importOptional<{ create(flags: string[]): unknown; globals: object }>('webgpu', "npm install webgpu (Node's WebGPU, Dawn): tuning runs on it");
  Object.assign(globalThis, webgpu.globals);
  try {
    // Whole timestamps: Dawn rounds them to 65.536 µs unless told not to, coarser than a small call.
    return await createDetloss({ gpu: webgpu.create(['disable-dawn-features=timestamp_quantization']) as GPU, timestamps: true, plans: plans as PlanRecord | undefined });
  } catch (e) {
    if (e instanceof DetlossError && e.argument?.startsWith('plans')) throw new ToolError('bad_args', `--plans ${plansFile}: ${e.message.replace(/^createDetloss: /, '')}`, { cause: e });
    if (exitCodeOf(e) === 2) throw new ToolError('no_adapter', nodeAdapterAdvice((e as Error).message, 'npx detloss tune --node', false), { cause: e });
    throw e;
  }
}

/** Runs `detloss tune` with `args`; returns the exit status (0, or 1 when an op family got no measurement within the budget). */
export async function tuneCommand(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    {
      node: { type: 'boolean' },
      ops: { type: 'string' },
      sizes: { type: 'string' },
      budget: { type: 'string' },
      reps: { type: 'string' },
      out: { type: 'string' },
      plans: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    false,
  );
  if (values.help) {
    console.log(TUNE_USAGE);
    return 0;
  }
  if (!values.node) {
    throw new ToolError('bad_args', "tuning needs --node for now: it runs on Node's WebGPU (the webgpu package, Dawn). In a browser, call dl.tune() and keep the record it returns (in localStorage, say)");
  }
  const ops = values.ops === undefined ? DEFAULT_TUNE_OPS : list('ops', values.ops).map(parseTuneOp);
  const sizes = values.sizes === undefined ? [1e6] : positiveInts('sizes', values.sizes);
  const budgetMs = values.budget === undefined ? DEFAULT_TUNE_BUDGET_MS : milliseconds('budget', values.budget);
  const repList = values.reps === undefined ? [5] : positiveInts('reps', values.reps);
  if (repList.length !== 1 || repList[0] > 100) throw new ToolError('bad_args', `--reps takes one integer from 1 to 100, got "${values.reps}"`);
  const out = resolve(values.out ?? 'plans.json');
  const old = values.plans === undefined ? undefined : readPlans(resolve(values.plans));

  const dl = await nodeContext(old, values.plans);
  try {
    const timer = dl.device.features.has('timestamp-query') ? 'GPU timestamps' : 'wall time';
    console.log(`detloss tune: ${ops.map(tuneOpText).join(', ')} at ${sizes.map((n) => n.toExponential(0)).join(', ')}; a budget of ${seconds(budgetMs)}, ${repList[0]} timed calls a candidate (${timer})`);
    console.log(`adapter: ${adapterLine(dl.adapter)}; Node's WebGPU (Dawn)`);
    const loaded = dl.stats().plan.tuned;
    if (values.plans !== undefined) console.log(`loaded ${loaded.length} plan${loaded.length === 1 ? '' : 's'} from ${values.plans}`);
    // The default plan's pipelines compiled first, as an app's are by the time it tunes (warmup()
    // or its first calls), so the budget goes to timing candidates.
    const w0 = performance.now();
    await dl.warmup(ops.map((o) => (typeof o === 'string' ? o : { op: o.op, options: o.options })));
    console.log(`compiled the default plan's pipelines in ${seconds(performance.now() - w0)} (before tuning, outside the budget)`);
    const measured = new Set<string>();
    const onProgress = (p: TuneProgress) => {
      measured.add(`${p.family} ${p.size}`);
      console.error(`  ${progressLine(p)}`);
    };
    const t0 = performance.now();
    const record = await dl.tune({ ops, sizes, budgetMs, reps: repList[0], onProgress });
    const took = performance.now() - t0;
    const now = record.plans.filter((c) => measured.has(`${c.family} ${c.size}`));
    console.log(`\n${choicesTable(now).join('\n')}\n`);
    const kept = record.plans.filter((c) => !measured.has(`${c.family} ${c.size}`));
    if (kept.length) console.log(`kept from ${values.plans}: ${kept.map((c) => `${c.family} ${c.size}`).join(', ')}`);
    console.log(`tuning took ${seconds(took)} of a ${seconds(budgetMs)} budget`);
    for (const w of dl.stats().plan.warnings) console.error(`warning: ${w}`);
    const tmp = `${out}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
    renameSync(tmp, out);
    console.log(`wrote ${out}: ${record.plans.length} plan${record.plans.length === 1 ? '' : 's'} (${now.length} tuned now); load it with createDetloss({ plans })`);
    const missed = [...new Set(ops.map(familyOf))].filter((f) => f !== undefined && ![...measured].some((k) => k.startsWith(`${f} `)));
    if (missed.length) {
      console.error(`detloss tune: no measurement of ${missed.join(', ')} fit in the budget; give a larger --budget`);
      return 1;
    }
    return 0;
  } finally {
    dl.destroy();
  }
}
