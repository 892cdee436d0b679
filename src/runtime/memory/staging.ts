import type { ContextLimits } from '../public';

// How a call's outputs come back to the host: the readback (staging) buffers and what each holds.

/** The staging parts that are not an output: the resolved timestamps, the value checks' status words, the aux number. */
export const PART = { timestamps: '#timestamps', status: '#status', aux: '#aux', output: '#output:' } as const;

/** The staging part's name of named output `name` (`PART.output` and the name). */
export const outputPart = (name: string) => `${PART.output}${name}`;
/** The named output a staging part holds, if it holds one. */
export const partOutput = (part: string | undefined) => (part?.startsWith(PART.output) ? part.slice(PART.output.length) : undefined);

/** Byte sizes of a call's outputs (an empty gradient is named, not sized). */
export interface OutputSizes {
  lossBytes: number;
  grads: Record<string, number>;
  emptyGrads: string[];
  /** The name of the aux number the call reports (GpuKernel.aux), a 4-byte output. */
  aux?: string;
  /** The op's named outputs (OpDescriptor.outputs): bytes and element type; 0 bytes for an empty one. */
  named?: Record<string, { bytes: number; dtype: 'f32' | 'i32' }>;
}

/** A readback buffer and the outputs copied into it (`name` undefined: the loss). */
export interface Staging {
  buffer: GPUBuffer;
  bytes: number;
  parts: { name?: string; bytes: number; at: number }[];
}

/**
 * How the outputs are read back: one staging buffer for all of them (one `mapAsync`), unless
 * together they pass maxBufferSize; then as few buffers as fit it (each output fits one).
 */
export function stagingPlan(limits: ContextLimits, outs: OutputSizes, timingBytes: number, statusBytes = 0): Omit<Staging, 'buffer'>[] {
  const parts: { name?: string; bytes: number }[] = [];
  // Timestamps first: 8-byte values at an offset that keeps them aligned.
  if (timingBytes) parts.push({ name: PART.timestamps, bytes: timingBytes });
  if (statusBytes) parts.push({ name: PART.status, bytes: statusBytes });
  if (outs.lossBytes) parts.push({ bytes: outs.lossBytes });
  for (const [name, bytes] of Object.entries(outs.grads)) parts.push({ name, bytes });
  if (outs.aux) parts.push({ name: PART.aux, bytes: 4 });
  for (const [name, o] of Object.entries(outs.named ?? {})) if (o.bytes) parts.push({ name: outputPart(name), bytes: o.bytes });
  const plan: Omit<Staging, 'buffer'>[] = [];
  for (const p of parts) {
    let s = plan[plan.length - 1];
    if (!s || s.bytes + p.bytes > limits.maxBufferSize) {
      s = { bytes: 0, parts: [] };
      plan.push(s);
    }
    s.parts.push({ ...p, at: s.bytes });
    s.bytes += p.bytes;
  }
  return plan;
}
