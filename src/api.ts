import { CORE_ALIASES, type HasOutputs, optionsArg, positionalInputs, splitOptions, wrappers, type IsMatrix, type OptionalInputs, type SelfReduced, type Wrapper, type WrapperArgs, type WrapperName, type WrapperTable, type Flat, type WrapperParams } from './catalogue';
import type { F32Tensor, I32Tensor, OpParams } from './ops/op-types';
import { getOp } from './ops/registry';
import { rotatedTalAssignOp, type RotatedTalOptions } from './ops/rotated-tal';
import { detectionsOf, yoloNmsOp, type YoloDetections, type YoloNmsOptions } from './ops/yolo-nms';
import type { SharedOptions } from './ops/validate';
import { Detloss, openContext } from './runtime/context';
import type { AnyInput, DetlossOptions, RunResult } from './runtime/public';

/** Options every typed wrapper takes: the shared options plus the optional `weight` and `gradOutput` arrays. */
export type WrapperOptions = SharedOptions & {
  /** Multiplies the unreduced loss (same shape as the `'none'` output). */
  weight?: F32Tensor;
  /** Upstream gradient: the `'none'` shape, or one number for `'mean'`/`'sum'`. */
  gradOutput?: F32Tensor;
};

/** Options of the ops with named outputs (`talAssign`, `yoloLoss`): no reduction, weight or avgFactor. */
export type OutputsOptions = Omit<WrapperOptions, 'weight' | 'avgFactor' | 'reduction'>;

/** Options of the ranking losses: they reduce themselves ('mean' only) and take no weight or avgFactor. */
export type RankingOptions = Omit<WrapperOptions, 'weight' | 'avgFactor' | 'reduction'> & { reduction?: 'mean' };

/**
 * A detloss context with typed wrappers over {@link Detloss.run}, one per entry of the wrapper
 * catalogue (`src/catalogue.ts`: `l1`, `smoothL1`, `iouLoss`, `ciou`, `crossEntropy`, `rankSort`,
 * `pairwiseIou`...), named as in `detloss/tfjs` and `detloss/ort`. Create it with {@link createDetloss}.
 *
 * @example
 * const dl = await createDetloss();
 * const { loss, grad } = await dl.smoothL1(pred, target, { beta: 0.11 });
 */
export class DetlossContext extends Detloss {
  /**
   * The YOLO post-process of an exported ultralytics detector's output `[b, 4 + C, A]` (YOLOv8/11:
   * `[1, 84, 8400]`), host array or GPU buffer: decode, best class (or every class above the
   * threshold with `multiLabel`), class-aware NMS, at most `maxDet` per image; one submit, and the
   * detections read back once. Equal to ultralytics' `non_max_suppression` (docs/losses.md).
   *
   * @example
   * const { boxes, scores, classes, count } = await dl.yoloNms({ buffer, shape: [1, 84, 8400] }, { confThreshold: 0.25 });
   */
  async yoloNms(output: AnyInput, options: YoloNmsOptions = {}): Promise<YoloDetections> {
    return detectionsOf(await this.run(yoloNmsOp as never, { output } as never, options as never));
  }

  /**
   * ultralytics' `RotatedTaskAlignedAssigner` (YOLO OBB's assigner): `talAssign` with boxes
   * `(cx, cy, w, h, theta)` (`predBoxes` [b, a, 5], `gtBoxes` [b, m, 5], radians), an anchor a
   * candidate of a gt when its centre lies in the rotated box, and ProbIoU for the overlap. Returns
   * `outputs` `labels`, `boxes` [b, a, 5], `targetScores`, `foreground`, `gtIndex`, as `talAssign`
   * does (docs/losses.md, "Rotated task-aligned assignment"). Not an op of the contract.
   *
   * @example
   * const r = await dl.rotatedTalAssign(scores, predBoxes, anchorsPx, gtLabels, gtBoxes, gtMask, { topk: 10 });
   * r.outputs!.foreground; // Int32Array [b * a]
   */
  async rotatedTalAssign(scores: AnyInput, predBoxes: AnyInput, anchors: AnyInput, gtLabels: AnyInput, gtBoxes: AnyInput, gtMask: AnyInput, options: RotatedTalOptions = {}): Promise<RunResult> {
    return this.run(rotatedTalAssignOp as never, { scores, predBoxes, anchors, gtLabels, gtBoxes, gtMask } as never, options as never);
  }
}

/** The options of core wrapper `K`: its params, the shared options and its op's optional tensor inputs. */
export type CoreWrapperOptions<K extends WrapperName> = Flat<
  IsMatrix<K> extends true
    ? WrapperParams<K> & { check?: boolean }
    : HasOutputs<K> extends true
      ? WrapperParams<K> & OutputsOptions
      : WrapperParams<K> & OptionalInputs<K, F32Tensor> & (SelfReduced<K> extends true ? RankingOptions : WrapperOptions)
>;

/** The typed wrappers of {@link DetlossContext}, one per catalogue entry: positional inputs as the op names them, then options. */
export type CoreWrappers = {
  [K in keyof WrapperTable]: (
    ...args: WrapperArgs<K, F32Tensor, F32Tensor, I32Tensor, CoreWrapperOptions<K>>
  ) => Promise<IsMatrix<K> extends true ? { values: Float32Array; shape: number[] } : RunResult>;
};
/** The old names of some wrappers, each the same method as the name every surface shares. */
export type CoreAliases = { [A in keyof typeof CORE_ALIASES]: CoreWrappers[(typeof CORE_ALIASES)[A]] };

export interface DetlossContext extends CoreWrappers, CoreAliases {}

/** Runs one wrapper of the catalogue on a context: `run(op, { ...inputs, weight, gradOutput, optional inputs }, params)`. */
async function callWrapper(dl: Detloss, w: Wrapper, args: unknown[]): Promise<RunResult | { values: Float32Array; shape: number[] }> {
  const desc = getOp(w.op);
  const { tensors, params } = splitOptions(desc, optionsArg(w, args), w.fixed, w.name);
  // The wrappers' own signatures are the typed ones; here the name is just a name.
  const inputs: Record<string, AnyInput | undefined> = { ...positionalInputs<AnyInput>(w, args), ...(tensors as Record<string, AnyInput>) };
  const r = await dl.run(w.op as string, inputs, params);
  return w.result === 'matrix' ? { values: r.loss, shape: r.shape } : r;
}

for (const w of wrappers()) {
  const method = function (this: Detloss, ...args: unknown[]) {
    return callWrapper(this, w, args);
  };
  Object.defineProperty(method, 'name', { value: w.name });
  Object.defineProperty(DetlossContext.prototype, w.name, { value: method, writable: true, configurable: true });
}
for (const [alias, name] of Object.entries(CORE_ALIASES)) {
  Object.defineProperty(DetlossContext.prototype, alias, { value: (DetlossContext.prototype as unknown as Record<string, unknown>)[name], writable: true, configurable: true });
}

export type { IouOptions, PairwiseOptions };

/**
 * Options of {@link DetlossContext.iouLoss}: `variant`, `format`, `eps`, and `mode` (only with
 * variant `'iou'`: `'linear'` (1 - iou), `'square'`, `'log'`).
 */
type IouOptions = WrapperOptions & OpParams<'iou_loss'>;

/** Options of {@link DetlossContext.pairwiseIou}: `variant`, `format`, `check`. */
type PairwiseOptions = OpParams<'pairwise_iou'> & { check?: boolean };

/**
 * Creates a detloss context: uses `options.device`, or requests an adapter and a device with
 * the adapter's own limits. No WebGPU: `DetlossError` with code `no_webgpu`.
 *
 * @example
 * import { createDetloss } from 'detloss';
 * const dl = await createDetloss();
 * const r = await dl.run('smooth_l1', { pred, target }, { beta: 0.11, reduction: 'mean' });
 */
export async function createDetloss(options: DetlossOptions = {}): Promise<DetlossContext> {
  return openContext(DetlossContext, options);
}
