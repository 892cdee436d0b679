// The types of tuned launch plans that users name: a plan as a record keeps it, the record,
// `tune()`'s options and progress. Types only, importing nothing; public.ts re-exports them.

/** Who computes a long row: a thread per row, or a workgroup or subgroup per row. */
export type RowStrategy = 'thread' | 'workgroup' | 'subgroup';

/**
 * A tuned launch plan as a {@link PlanRecord} keeps it: the fields of {@link LaunchPlan} that tuning
 * chooses, with the row strategy in place of `rowThreshold` and `rowLanes` (it applies to a size
 * class whose row length is fixed).
 */
export interface TunedPlan {
  maxThreads: number;
  workgroupSize: number;
  vectorWidth: 1 | 4;
  reduceLanes: number;
  reducePer: number;
  rows: RowStrategy;
}

/** One candidate's time, as tuning measured it. */
export interface CandidateTime {
  plan: TunedPlan;
  /** The fastest of the timed calls (GPU time from timestamps, or wall time: `PlanRecord.timer`). */
  ms: number;
}

/**
 * The plan chosen for one op family (the kernel module its ops share: `'regression'` for l1, mse,
 * smooth_l1, huber and balanced_l1) and size class (`'1e6'`: the call's output elements to the
 * nearest power of ten; a row op adds its row length: `'1e6/1e2'`).
 */
export interface PlanChoice {
  family: string;
  size: string;
  plan: TunedPlan;
  /** The chosen plan's time, and the context's own plan's, measured in the same run. */
  ms: number;
  defaultMs: number;
  /** The op and options it was timed with. */
  op: string;
  /** Every candidate measured, in the order tried. */
  candidates: CandidateTime[];
}

/**
 * What `tune()` returns and `createDetloss({ plans })` loads: JSON, kept by the caller (in
 * `localStorage`, a file). It holds for one adapter and one version of detloss.
 */
export interface PlanRecord {
  format: 'detloss-plans';
  /** The detloss version that measured it; another version ignores the record. */
  detloss: string;
  /** The adapter it was measured on; another adapter ignores the record. */
  adapter: { vendor: string; architecture: string; device: string; description: string };
  /** How the candidates were timed: timestamp queries (`'gpu'`) or wall time. */
  timer: 'gpu' | 'wall';
  /** When it was measured (ISO 8601). */
  created: string;
  plans: PlanChoice[];
}

/** What one op of {@link TuneOptions.ops} names: an op (default options), or an op with options and dims. */
export type TuneOp = string | { op: string; options?: Record<string, unknown>; dims?: Record<string, number> };

/** Options of `Detloss.tune()`. */
export interface TuneOptions {
  /**
   * The ops to tune: names, or `{ op, options, dims }` (`dims` fixes a row op's row length:
   * `{ c: 80 }`). Default: the ops this context has warmed up or run.
   */
  ops?: readonly TuneOp[];
  /** Sizes to tune at, in output elements (rows for a row op); each picks its size class. Default: the sizes run so far, else 1e6. */
  sizes?: readonly number[];
  /** Most milliseconds to spend (default 4000); tuning stops before starting a measurement it cannot finish in time. */
  budgetMs?: number;
  /** Calls timed per candidate (default 5; the fastest counts). */
  reps?: number;
  /** Candidate values of each plan field (default: every value the device allows, see docs/api.md). */
  candidates?: Partial<{ [K in keyof TunedPlan]: readonly TunedPlan[K][] }>;
  /** `'exhaustive'`: time every combination of the candidates (slow; for comparison). Default `'descent'`. */
  search?: 'descent' | 'exhaustive';
  /** Called after each measurement. */
  onProgress?(p: TuneProgress): void;
}

/** Progress of a `tune()` run. */
export interface TuneProgress {
  family: string;
  size: string;
  /** Candidates measured so far in the whole run, and the milliseconds spent. */
  measured: number;
  elapsedMs: number;
  budgetMs: number;
  /** The candidate just measured, and its time. */
  plan: TunedPlan;
  ms: number;
}
