import { DetlossError } from '../../errors';
import { MAX_REDUCE_PER } from '../device/launch-plan';
import type { LaunchPlan, PlanLimits } from '../public';

/** A slice of rows processed by one dispatch of the fused pass. */
export interface Chunk {
  rowStart: number;
  rows: number;
  /** Output elements in the chunk. */
  outCount: number;
  /** Threads taking part (a multiple of the thread unit). */
  threads: number;
  /** Index of this chunk's first partial in the partials buffer. */
  partialStart: number;
  /** Workgroups to dispatch, folded into two dimensions. */
  grid: [number, number];
}


/**
 * Folds a count of workgroups into (x, y) with x, y <= maxPerDim and x*y >= count.
 * Shaders recover the linear index as gid.x + gid.y * nwg.x * WG.
 */
export function foldGrid(workgroups: number, maxPerDim: number): [number, number] {
  if (workgroups <= maxPerDim) return [workgroups, 1];
  const y = Math.ceil(workgroups / maxPerDim);
  if (y > maxPerDim) throw new DetlossError('too_large', `${workgroups} workgroups exceed maxComputeWorkgroupsPerDimension^2 (${maxPerDim}^2)`);
  return [Math.ceil(workgroups / y), y];
}

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;
const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;

/**
 * The fewest rows whose bytes are a multiple of `alignment` in every chunked tensor: chunk
 * boundaries at multiples of it keep every binding offset aligned. Rows of 32 KiB align on any
 * row; rows of 4 bytes need 64 rows at an alignment of 256.
 */
export function alignedRowUnit(rowBytes: readonly number[], alignment: number): number {
  let unit = 1;
  for (const b of rowBytes) if (b > 0) unit = lcm(unit, alignment / gcd(alignment, b));
  return unit;
}

/**
 * Splits `rows` into chunks whose every chunked tensor fits one binding, with
 * row offsets that keep each binding offset aligned.
 *
 * @param maxBytesPerRow the largest bytes per row over every chunked tensor
 * @param rowBytes bytes per row of each chunked tensor (outputs included); the alignment unit of
 *   the chunks is derived from them. Without it every row is assumed to be 4 bytes long (the
 *   strictest case).
 * @param outPerRow output elements per row
 */
export function planChunks(opts: {
  rows: number;
  maxBytesPerRow: number;
  rowBytes?: readonly number[];
  outPerRow: number;
  wg: number;
  maxThreads: number;
  limits: PlanLimits;
  label: string;
  /** Threads that serve one output element: 1, or a workgroup for row-per-workgroup kernels. */
  threadsPerOutput?: number;
  /** Output elements one thread takes per loop step: 1, or 4 for the vec4 kernels. */
  outputsPerStep?: number;
}): Chunk[] {
  const { rows, maxBytesPerRow, outPerRow, wg, maxThreads, limits, label } = opts;
  const perOutput = opts.threadsPerOutput ?? 1;
  const perStep = opts.outputsPerStep ?? 1;
  const align = limits.minStorageBufferOffsetAlignment;
  // Chunk boundaries fall on multiples of rowUnit, so that every chunked binding offset is aligned.
  const rowUnit = alignedRowUnit(opts.rowBytes ?? [4], align);
  let chunkRows = rows;
  if (rows * maxBytesPerRow > limits.maxStorageBufferBindingSize) {
    chunkRows = Math.floor(limits.maxStorageBufferBindingSize / maxBytesPerRow / rowUnit) * rowUnit;
    if (chunkRows < 1) {
      throw new DetlossError(
        'too_large',
        `${label}: ${rowUnit} rows of ${maxBytesPerRow} bytes (the fewest that keep chunk offsets aligned to ${align} bytes) do not fit one binding (maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize})`,
      );
    }
  }
  // Partials of each chunk start at an aligned offset too: threads come in multiples of this.
  const threadUnit = lcm(wg, Math.max(1, align / 4));
  const chunks: Chunk[] = [];
  let partialStart = 0;
  for (let rowStart = 0; rowStart < rows; rowStart += chunkRows) {
    const r = Math.min(chunkRows, rows - rowStart);
    const outCount = r * outPerRow;
    if (outCount === 0) continue;
    const threads = Math.min(roundUp(Math.ceil(outCount / perStep) * perOutput, threadUnit), Math.max(threadUnit, Math.floor(maxThreads / threadUnit) * threadUnit));
    chunks.push({
      rowStart,
      rows: r,
      outCount,
      threads,
      partialStart,
      grid: foldGrid(threads / wg, limits.maxComputeWorkgroupsPerDimension),
    });
    partialStart += threads;
  }
  return chunks;
}


/** One level of the reduction tree: `count` values in, `groups` workgroups, each lane adding `per`. */
export interface ReduceLevel {
  count: number;
  per: number;
  groups: number;
  grid: [number, number];
}

/**
 * The fixed-shape tree that adds `count` partials: levels until one value is left. The shape
 * depends only on the count and the plan, so results are bitwise repeatable. A workgroup adds at
 * least two partials, or a level would leave as many as it took: one lane (`reduceLanes: 1`) adds
 * at least two each.
 */
export function reduceLevels(count: number, plan: Pick<LaunchPlan, 'reduceLanes' | 'reducePer'>, maxPerDim: number): ReduceLevel[] {
  const lanes = plan.reduceLanes;
  const levels: ReduceLevel[] = [];
  const least = lanes > 1 ? 1 : 2;
  let n = Math.max(0, count);
  for (;;) {
    const per = Math.max(least, plan.reducePer > 0 ? plan.reducePer : Math.min(MAX_REDUCE_PER, Math.ceil(n / lanes)));
    // No partials (an empty input) is one workgroup writing 0.
    const groups = Math.max(1, Math.ceil(n / (lanes * per)));
    levels.push({ count: n, per, groups, grid: foldGrid(groups, maxPerDim) });
    if (groups === 1) return levels;
    n = groups;
  }
}
