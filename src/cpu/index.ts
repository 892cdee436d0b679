import { runCpu } from './run';
import { opNames } from '../ops/registry';

/**
 * The float64 CPU reference: the oracle the GPU kernels are held against.
 * Synchronous, same op names, inputs, options and shapes as `dl.run`.
 *
 * @example
 * import { cpu } from 'detloss';
 * const r = cpu.run('huber', { pred, target }, { delta: 0.5, reduction: 'sum' });
 */
export const cpu = { run: runCpu, ops: opNames };
export type { CpuResult } from './run';
