/**
 * What the float64 CPU reference works with. The op descriptors (src/ops) build on these types; the
 * reference itself imports nothing from src/ops, so the dependency runs one way (ops -> cpu).
 */

/** A resolved parameter value. */
export type ParamValue = number | string | boolean;
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
}
