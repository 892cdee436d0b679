import { runCpu, type CpuResult } from './cpu';
import { DetlossError } from './errors';
import { getOp } from './ops/registry';
import { resolveOptions } from './ops/validate';
import type { CpuInputsOf, DeviceInputs, OpOptions } from './ops/op-types';
import type { Detloss } from './runtime/context';
import type { GpuTensor, RunResult } from './runtime/public';

/** What {@link WiseIoU.state} returns and {@link WiseIoU.load} takes: plain numbers, for a checkpoint's JSON. */
export interface WiseIoUState {
  /** The running mean of `1 - iou` that the next call uses. */
  iouMean: number;
  momentum: number;
  /** Batches folded in so far. */
  steps: number;
}

/** Options of {@link WiseIoU}. */
export interface WiseIoUOptions {
  /** Weight of each batch in the running mean, in (0, 1] (default 0.01, as the authors' current code). */
  momentum?: number;
  /** Starting value of the running mean (default 1, as the authors'). */
  iouMean?: number;
  /** Wise-IoU version: 1 (no focusing), 2 (monotonic), 3 (non-monotonic, default). */
  version?: 1 | 2 | 3;
  /** v3's alpha and delta (defaults 1.9 and 3, the paper's). */
  alpha?: number;
  delta?: number;
}

/** iou_loss's options other than the ones WiseIoU sets. */
export type WiseIoUCallOptions = Omit<OpOptions<'iou_loss'>, 'variant' | 'iouMean' | 'wiouVersion' | 'wiouAlpha' | 'wiouDelta'>;

const SMALLEST_NORMAL = 2 ** -126;

function checkNumber(name: string, v: unknown, ok: (x: number) => boolean, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new DetlossError('invalid_param', `WiseIoU: ${name} must be ${what}, got ${String(v)}`, name);
  return v;
}

/**
 * Wise-IoU's running mean of `1 - iou` for a training loop (ops.md, `wiou`). The op is stateless:
 * each call takes `iouMean` and reports the batch's mean of `1 - iou` as `aux.batchIouMean`. This
 * helper passes its mean to each call and then folds the batch in,
 * `m = (1 - momentum) * m + momentum * batch` (the authors fold it in before the call; with their
 * momentum the two differ by less than the momentum). `state()` and `load()` carry it through a
 * checkpoint.
 *
 * @example
 * const wiou = new WiseIoU({ momentum: 0.01 });
 * const r = await wiou.run(dl, { pred, target }, { reduction: 'mean' }); // r.aux.batchIouMean
 * saveCheckpoint({ wiou: wiou.state() });
 * wiou.load(checkpoint.wiou);
 */
export class WiseIoU {
  private mean: number;
  private readonly momentum: number;
  private steps = 0;
  private readonly version: 1 | 2 | 3;
  private readonly alpha: number;
  private readonly delta: number;

  constructor(options: WiseIoUOptions = {}) {
    this.momentum = checkNumber('momentum', options.momentum ?? 0.01, (x) => x > 0 && x <= 1, 'a number in (0, 1]');
    this.mean = checkNumber('iouMean', options.iouMean ?? 1, (x) => x >= SMALLEST_NORMAL, 'a number > 0');
    this.version = checkNumber('version', options.version ?? 3, (x) => x === 1 || x === 2 || x === 3, '1, 2 or 3') as 1 | 2 | 3;
    this.alpha = checkNumber('alpha', options.alpha ?? 1.9, (x) => x > 0, 'a number > 0');
    this.delta = checkNumber('delta', options.delta ?? 3, (x) => x > 0, 'a number > 0');
    // Refused here, where they are given, by the op's own rules: a setting the op refuses would
    // otherwise be accepted now and make every later call fail.
    checkCallParams(this.options());
  }

  /** The running mean the next call uses. */
  get iouMean(): number {
    return this.mean;
  }

  /** The `iou_loss` options of the next call: the variant, this mean, version, alpha and delta, and `options`. */
  options(options: WiseIoUCallOptions = {}): OpOptions<'iou_loss'> {
    return { ...options, variant: 'wiou', iouMean: this.mean, wiouVersion: this.version, wiouAlpha: this.alpha, wiouDelta: this.delta };
  }

  /**
   * Folds one batch's mean of `1 - iou` into the running mean and returns the new mean. A batch
   * with no boxes reports 0 and should not be folded in; `run` and `runCpu` skip it.
   */
  update(batchIouMean: number): number {
    checkNumber('batchIouMean', batchIouMean, (x) => x >= 0, 'a number >= 0');
    // Kept a normal float32 number > 0: the op refuses a mean it cannot divide by.
    this.mean = Math.max((1 - this.momentum) * this.mean + this.momentum * batchIouMean, SMALLEST_NORMAL);
    this.steps++;
    return this.mean;
  }

  /** Runs `iou_loss` (variant `'wiou'`) on the GPU with the running mean, then folds the batch in. */
  async run(dl: Detloss, inputs: DeviceInputs<'iou_loss', GpuTensor>, options: WiseIoUCallOptions = {}): Promise<RunResult> {
    const r = await dl.run('iou_loss', inputs, this.options(options));
    this.fold(r.aux?.batchIouMean, inputs.pred);
    return r;
  }

  /** The same on the float64 CPU reference. */
  runCpu(inputs: CpuInputsOf<'iou_loss'>, options: WiseIoUCallOptions = {}): CpuResult {
    const r = runCpu('iou_loss', inputs, this.options(options));
    this.fold(r.aux?.batchIouMean, inputs.pred);
    return r;
  }

  /**
   * A batch with no boxes reports 0 and is skipped. So is one whose mean is not finite: a NaN or
   * infinite box makes the call's loss NaN (ops.md: non-finite input is never hidden), and folding
   * it in would spoil every later call; the running mean keeps its value.
   */
  private fold(batch: number | undefined, pred: unknown): void {
    if (batch !== undefined && Number.isFinite(batch) && boxCount(pred) > 0) this.update(batch);
  }

  /** The running state, as plain numbers. */
  state(): WiseIoUState {
    return { iouMean: this.mean, momentum: this.momentum, steps: this.steps };
  }

  /** Restores a state from {@link state}; its momentum must be this helper's (a checkpoint of another setup is refused). */
  load(state: WiseIoUState): void {
    if (typeof state !== 'object' || state === null) throw new DetlossError('invalid_param', 'WiseIoU.load: state must be an object from state()', 'state');
    const mean = checkNumber('iouMean', state.iouMean, (x) => x >= SMALLEST_NORMAL, 'a number > 0');
    const steps = checkNumber('steps', state.steps, (x) => Number.isInteger(x) && x >= 0, 'an integer >= 0');
    if (state.momentum !== this.momentum) {
      throw new DetlossError('invalid_param', `WiseIoU.load: the state's momentum ${String(state.momentum)} is not this helper's ${this.momentum}`, 'momentum');
    }
    checkCallParams({ ...this.options(), iouMean: mean });
    this.mean = mean;
    this.steps = steps;
  }
}

/** What WiseIoU calls its settings, by the iou_loss param each one sets. */
const OWN_NAMES: Record<string, string> = { iouMean: 'iouMean', wiouVersion: 'version', wiouAlpha: 'alpha', wiouDelta: 'delta' };

/** Checks the iou_loss params of a call with the op's own rules; a refusal names the WiseIoU setting. */
function checkCallParams(options: OpOptions<'iou_loss'>): void {
  const desc = getOp('iou_loss');
  try {
    const r = resolveOptions(desc, options as Record<string, unknown>);
    desc.validate?.({}, r.params, { n: 0 }, r.given);
  } catch (e) {
    if (!(e instanceof DetlossError)) throw e;
    const own = e.argument !== undefined ? OWN_NAMES[e.argument] : undefined;
    if (own === undefined) throw e;
    throw new DetlossError(e.code, `WiseIoU: ${own}: ${e.message.replace(/^iou_loss: /, '')}`, own);
  }
}

/** Boxes in a `pred` input of any accepted form (a buffer without a shape counts as some). */
function boxCount(pred: unknown): number {
  if (pred && typeof pred === 'object') {
    if ('length' in pred && typeof (pred as { length: unknown }).length === 'number') return (pred as { length: number }).length / 4;
    if ('data' in pred) return boxCount((pred as { data: unknown }).data);
    if ('shape' in pred && Array.isArray((pred as { shape: unknown }).shape)) return (pred as { shape: number[] }).shape[0] ?? 0;
  }
  return 1;
}
