/**
 * What the float64 CPU reference works with. The op descriptors (src/ops) build on these types; the
 * reference itself imports nothing from src/ops, so the dependency runs one way (ops -> cpu).
 */

/** A resolved parameter value. */
export type ParamValue = number | string | boolean | readonly number[];
/** An op's parameters, defaults filled in. */
export type ResolvedParams = Record<string, ParamValue>;
/** The sizes of an op's symbolic dimensions (`n`, `c`, ...), solved from the inputs. */
export type Dims = Record<string, number>;

/** Inputs as the CPU reference sees them: floats widened to float64, labels as int32. */
export type CpuInputs = Record<string, Float64Array | Int32Array | undefined>;

/** What an op's CPU reference computes for the unreduced loss. */
export interface CpuForward {
  /** The per-element `'none'` output, before `weight`. */
  loss: Float64Array;
  /**
   * Gradients of `sum(upstream * loss)` with respect to each input that has `grad: true`;
   * `upstream` has the length of `loss`.
   */
  backward(upstream: Float64Array): Record<string, Float64Array>;
  /** Numbers an op reports beside its loss (`iou_loss` with variant `'wiou'`: `batchIouMean`). */
  aux?: Record<string, number>;
  /**
   * Set by an op that reduces itself (the ranking losses, a mean over their positives): its
   * `'mean'` output and that output's shape. `reduceCpu` returns it as is, and `backward` then
   * gets the scalar `gradOutput` (1 without one) as `upstream[0]`.
   */
  reduced?: { loss: Float64Array; shape: number[] };
  /**
   * Named outputs beside the loss, for an op that declares them (`OpDescriptor.outputs`):
   * `tal_assign`'s `labels`, `boxes`, `targetScores`, `foreground` and `gtIndex`, or
   * `yolo_detection_loss`'s `components`. i32 outputs as Int32Array, f32 ones as Float64Array, each
   * flat in the declared shape. An op with no loss of its own (`tal_assign`) sets `reduced` to an
   * empty loss of shape `[0]`.
   */
  outputs?: Record<string, Float64Array | Int32Array>;
}
