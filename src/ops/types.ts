import { DetlossError } from '../errors';
import type { CpuForward, CpuInputs, Dims, ResolvedParams } from '../cpu/types';

/** Element type of a tensor. */
export type DType = 'f32' | 'i32';

/** A dimension: a fixed size, or a symbol (`'n'`, `'c'`) solved from the inputs. */
export type Dim = number | string;

/** How an input tensor looks. The first dimension named by the op's `rows` is the one work is split along. */
export interface TensorSpec {
  dtype: DType;
  shape: readonly Dim[];
  optional?: boolean;
  /** This input receives a gradient (`grad.<name>`). */
  grad?: boolean;
}

/**
 * A param's spec. `byVariant` gives the default for some values of the op's `variant` param, where
 * they differ from `default` (`rotated_iou_loss`: `eps` is 1e-6 for `kfiou`, 1e-7 otherwise).
 */
export type ParamSpec =
  /**
   * A number. With no `default` it is absent unless given (`nms`'s `scoreThreshold`), or, with
   * `required`, refused when missing (`nms`'s `iouThreshold`). `infinite` admits -Infinity and
   * +Infinity (`nms_tfjs`'s `scoreThreshold`, -Infinity by default).
   */
  | { kind: 'number'; default?: number; required?: boolean; infinite?: boolean; min?: number; max?: number; minExclusive?: boolean; integer?: boolean; byVariant?: Readonly<Record<string, number>> }
  /**
   * A count with no upper limit (ONNX's `max_output_boxes_per_class`, an int64): an integer number
   * or a bigint of any size. It resolves to a number in [0, 2^31 - 1]: a negative count is 0, and
   * one past any tensor's length means no limit. `required` as for a number (`nms_tfjs`'s
   * `maxOutputSize`).
   */
  | { kind: 'limit'; default?: number; required?: boolean }
  | { kind: 'enum'; values: readonly string[]; default: string; byVariant?: Readonly<Record<string, string>> }
  | { kind: 'bool'; default: boolean }
  /** Two numbers, `[lo, hi]` or `[W, H]`; no default means the param is absent unless given. */
  | { kind: 'pair'; default?: readonly [number, number]; min?: number; max?: number; minExclusive?: boolean };

export type { ParamValue, ResolvedParams, Dims, CpuInputs, CpuForward } from '../cpu/types';

/** How the GPU runs an op: which shader, which entry point, which compile-time and run-time constants. */
export interface GpuKernel {
  /** Full WGSL source of the module. */
  shader: string;
  /** Shader id used in pipeline cache keys and labels (one per source). */
  shaderId: string;
  /** Entry point of the fused forward+backward pass: one thread per output element. */
  entry: string;
  /**
   * For row ops: an entry point that gives each output element (row) a whole workgroup, whose
   * lanes split the row and reduce in workgroup memory (shaders/rows.wgsl). The runtime uses it
   * when `length(dims)` reaches the context's `rowThreshold`.
   */
  rows?: {
    entry: string;
    length(dims: Dims): number;
    /**
     * The same family with a subgroup per row (shaders/rows-subgroup.wgsl in place of rows.wgsl,
     * the module opening with subgroups-enable.wgsl): the full source, its shader id, and the same
     * entry name. Used on devices with the `subgroups` feature where the plan says so.
     */
    subgroup?: { shader: string; shaderId: string };
  };
  /**
   * For element-wise ops: the same family with four output elements per loop step, loaded and
   * stored as vec4 (shaders/fused-vec4.wgsl in place of fused.wgsl; the family's
   * `element_loss4`). Used where the plan's `vectorWidth` is 4 and every chunk holds a multiple
   * of four elements.
   */
  vec4?: { shader: string; shaderId: string };
  /**
   * The same kernel without the bindings of some optional inputs (and their gradients), for calls
   * that leave all of them out: `rotated_iou_loss` binds 10 storage buffers with KFIoU's
   * `predDelta` and `targetDelta`, 7 without, and a device with the default limits (TF.js's WebGPU
   * backend) allows 8. The module declares the same `Params` and entry point as `shader`.
   */
  narrow?: { shader: string; shaderId: string; without: readonly string[] };
  /**
   * The entry point that sums the op's data-dependent 'mean' denominator on the GPU
   * (shaders/denominator.wgsl; the op's `element_denominator`), for inputs already on the device.
   * An op with a `meanDenominator` and no such entry needs `avgFactor` there.
   */
  denominator?: string;
  /**
   * A number the op reports beside its loss (`RunResult.aux[name]`) when `when(params)`: the
   * unweighted mean over the output elements of what `entry` sums per thread (as the fused loop, into
   * `partials`), computed in the same submit after the loss and reduced by the same tree. The CPU
   * reference gives it in `CpuForward.aux`. `iou_loss` with variant `'wiou'`: `batchIouMean`.
   */
  aux?: { name: string; entry: string; when(p: ResolvedParams): boolean };
  /** `override` constants: values that change the compiled code. */
  overrides?(p: ResolvedParams, dims: Dims): Record<string, number>;
  /** Members of the shader's `Params` uniform, by name (sizes are added by the runtime). */
  uniforms?(p: ResolvedParams, dims: Dims): Record<string, number>;
  /**
   * A program of several passes, run in place of the fused pass and the reduction tree
   * (src/runtime/call/program.ts; the ranking losses). Each pass runs one entry point of `shader` with
   * the fused bindings, `partials` being the program's scratch: over `threads(dims, params)` threads, or
   * over the workgroup counts (three u32) that earlier passes wrote at byte `indirect` of the
   * scratch. `gradOnly` passes are skipped with `grad: false`. The output is already reduced, of
   * shape `lossShape`. `scratch` gives the scratch's size in 4-byte words and the `run.threads`
   * the passes read, from the dims and the inputs held on the host (absent for GPU tensors).
   *
   * A pass may run an entry point of a `module` of its own instead of `shader`: a module that
   * declares only the bindings its passes use, so that an op with many inputs and outputs
   * (`tal_assign`: six and five) stays within the 8 storage buffers per stage that a device with
   * the default limits (TF.js's) allows. Such modules need not declare every input or the shared
   * bindings; together, the op's modules must bind every input, gradient and output.
   */
  program?: {
    passes: readonly { entry: string; threads?(dims: Dims, params: ResolvedParams): number; indirect?: number; gradOnly?: boolean; module?: PassModule }[];
    lossShape: readonly number[];
    scratch(dims: Dims, host: Record<string, ArrayLike<number> | undefined>, p: ResolvedParams): { words: number; threads: number };
    /**
     * Other passes for a software adapter (launch plan `kind: 'software'`, a CPU emulating a GPU),
     * where the total work counts and parallelism does not: the same results, fewer operations.
     */
    software?: { passes: readonly { entry: string; threads?(dims: Dims, params: ResolvedParams): number; indirect?: number; gradOnly?: boolean; module?: PassModule }[] };
  };
}

/**
 * A named output of an op, beside (or in place of) its loss: `tal_assign`'s `labels` (i32 [b, a]),
 * `yolo_detection_loss`'s `components` (f32 [3]). The kernel writes it through a binding
 * `out_<snake name>`; the results carry it as `outputs.<name>`, host or resident.
 */
export interface OutputSpec {
  dtype: DType;
  shape: readonly Dim[];
  /**
   * For an output whose length depends on the data (NMS's kept indices): the most rows it can
   * have. `shape[0]` is then the number of rows the op wrote (the result's shape says it), and
   * `Resolved.outputShapes` gives the capacity, what the runtime allocates.
   */
  capacity?(dims: Dims, p: ResolvedParams): number;
  /**
   * With `capacity`: the op's i32 [1] output that holds this one's row count, which a resident
   * result reads alone. The CPU reference fills it from the rows it returns.
   */
  count?: string;
}

/** A WGSL module of one or more program passes (`GpuKernel.program`): its full source and shader id. */
export interface PassModule {
  shader: string;
  shaderId: string;
}

/** Everything the runtime and the CPU reference need to know about one op. */
export interface OpDescriptor {
  name: string;
  /** The family (the WGSL file and the `src/cpu` file it lives in). */
  family: string;
  inputs: Record<string, TensorSpec>;
  params: Record<string, ParamSpec>;
  /** The dimension work is split along (rows); every tensor whose first dimension is it is chunked. */
  rows: string;
  /** Shape of the `'none'` output. */
  output: readonly Dim[];
  /**
   * The inputs whose shapes settle the dims first, before the others in their declared order (the
   * order of positional arguments): then a disagreeing input is the one named. `yolo_detection_loss`
   * takes B, A and C from predScores and M from gtBoxes, though predDist comes first.
   */
  bindOrder?: readonly string[];
  /** Named outputs beside the loss (see {@link OutputSpec}); a program op's kernel writes them. */
  outputs?: Readonly<Record<string, OutputSpec>>;
  /**
   * Reductions the op accepts (default all three); `pairwise_iou` takes `'none'` only. An empty list:
   * the op takes no `reduction` at all (its outputs are what they are: `tal_assign`,
   * `yolo_detection_loss`), and a given one is refused.
   */
  reductions?: readonly ('none' | 'mean' | 'sum')[];
  /**
   * Extra checks once shapes and params are known (value ranges). `inputs` holds the host arrays
   * only; `present` names every input given, GPU tensors included.
   */
  validate?(inputs: Record<string, Float32Array | Int32Array | Float64Array | undefined>, p: ResolvedParams, dims: Dims, given: ReadonlySet<string>, check?: boolean, present?: ReadonlySet<string>): void;
  /** The float64 reference. */
  cpu(inputs: CpuInputs, p: ResolvedParams, dims: Dims): CpuForward;
  /**
   * Denominator of `'mean'` when it is not the output's element count (cross-entropy divides by the
   * summed weights of the rows not ignored). `weight` is the optional `weight` input. `avgFactor` still wins.
   */
  meanDenominator?(inputs: CpuInputs, weight: Float64Array | undefined, p: ResolvedParams, dims: Dims): number;
  /** The GPU kernel; an op without one runs on the CPU reference only and is `unsupported` on the GPU. */
  gpu?: GpuKernel;
}

/** Declares an op; the identity function, here for type checking and a single place to hang checks. */
export function defineOp(d: OpDescriptor): OpDescriptor {
  for (const [name, spec] of Object.entries(d.inputs)) {
    if (spec.shape.length === 0) throw new Error(`${d.name}: input ${name} needs a shape`);
  }
  return d;
}

/** A float parameter with a default. */
export const num = (def: number, range: { min?: number; max?: number; minExclusive?: boolean; integer?: boolean; byVariant?: Readonly<Record<string, number>> } = {}): ParamSpec => ({
  kind: 'number',
  default: def,
  ...range,
});
/** One of a set of names. */
export const oneOf = (values: readonly string[], def: string, byVariant?: Readonly<Record<string, string>>): ParamSpec => ({ kind: 'enum', values, default: def, ...(byVariant ? { byVariant } : {}) });
/** A pair of float numbers (`focaler: [d, u]`, `imageSize: [W, H]`), each in the range given. */
export const pair = (def: readonly [number, number] | undefined, range: { min?: number; max?: number; minExclusive?: boolean } = {}): ParamSpec => ({
  kind: 'pair',
  ...(def ? { default: def } : {}),
  ...range,
});
/** A boolean flag. */
export const flag = (def: boolean): ParamSpec => ({ kind: 'bool', default: def });

export function fail(code: ConstructorParameters<typeof DetlossError>[0], message: string, argument?: string): never {
  throw new DetlossError(code, message, argument);
}

/** `gradOutput` -> `grad_output`: how an input's name appears in WGSL bindings (`in_grad_output`). */
export const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
