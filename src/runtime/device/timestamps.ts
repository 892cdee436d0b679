import type { LastCall } from '../public';

/** A call's timed passes, and where their timestamps are written and resolved. */
export interface CallTiming {
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  passes: string[];
}

/**
 * GPU timing of a context's calls, when it takes timestamps: one query set (two queries per
 * pass) that the calls reuse in queue order.
 */
export class Timestamps {
  private queries?: GPUQuerySet;

  constructor(
    private readonly device: GPUDevice,
    /** Whether calls are timed (asked for, and the device has 'timestamp-query'). */
    readonly enabled: boolean,
  ) {}

  /** The passes a call times, in order; undefined when calls are not timed. */
  passes(gpuDenominator: boolean, reduced: boolean): string[] | undefined {
    return this.enabled ? [...(gpuDenominator ? ['denominator'] : []), 'fused', ...(reduced ? ['reduce'] : [])] : undefined;
  }

  private programQueries?: GPUQuerySet;

  /** A query set of at least `count` queries for a program's passes (two per pass), kept for the next call. */
  programQuerySet(count: number): GPUQuerySet {
    if (!this.programQueries || this.programQueries.count < count) {
      this.programQueries?.destroy();
      this.programQueries = this.device.createQuerySet({ type: 'timestamp', count: Math.max(16, count), label: 'detloss:program-timestamps' });
    }
    return this.programQueries;
  }

  /** The context's timestamp query set, created on first use. */
  querySet(): GPUQuerySet {
    this.queries ??= this.device.createQuerySet({ type: 'timestamp', count: 8, label: 'detloss:timestamps' });
    return this.queries;
  }

  destroy(): void {
    this.queries?.destroy();
    this.programQueries?.destroy();
  }
}

/** Where a pass writes its begin and end (at 2i and 2i + 1), when the call times it. */
export function timestampWrites(timing: CallTiming | undefined, name: string): GPUComputePassTimestampWrites | undefined {
  const i = timing?.passes.indexOf(name) ?? -1;
  return timing && i >= 0 ? { querySet: timing.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } : undefined;
}

/** Fills a call's `gpuMs` and `passes` from its resolved timestamps (nanoseconds, begin and end per pass). */
export function readTimestamps(last: LastCall, passes: string[], view: DataView): void {
  last.passes = passes.map((name, i) => {
    const begin = view.getBigUint64(16 * i, true);
    const end = view.getBigUint64(16 * i + 8, true);
    return { name, gpuMs: end > begin ? Number(end - begin) / 1e6 : 0 };
  });
  last.gpuMs = last.passes.reduce((a, p) => a + p.gpuMs, 0);
}
