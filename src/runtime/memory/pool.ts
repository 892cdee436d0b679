import type { PoolStats } from '../public';

/** Sizes up to this many bytes round up to a power of two; larger ones to a sixteenth of one. */
const POW2_UP_TO = 1 << 20;

/**
 * Size class of a request: at least 256 bytes; up to 1 MiB the next power of two; above it the
 * next multiple of 1/16 of the power of two below the request, so a large buffer wastes at most
 * 6.25% (a 560 MB array takes 570 MB, not 1 GiB) while sizes that differ slightly still share a
 * class.
 */
export function sizeClass(bytes: number): number {
  const b = Math.max(1, bytes);
  if (b <= POW2_UP_TO) return Math.max(256, 2 ** Math.ceil(Math.log2(b)));
  const step = 2 ** (Math.floor(Math.log2(b)) - 4);
  return Math.ceil(b / step) * step;
}

/**
 * Reuses GPU buffers by usage and size class, so repeated calls of the same sizes allocate
 * nothing. Buffers return with `release`; WebGPU orders queue operations, so a buffer released
 * after a submit can be rewritten by the next call's `writeBuffer` safely. A buffer whose creation
 * failed (out of memory) is handed to `discard`, which destroys it and keeps the books true.
 */
export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  /** Buffers handed out, with their size and usage (kept here: a buffer whose creation failed may not report them). */
  private inUse = new Map<GPUBuffer, { size: number; usage: number }>();
  private allocated = 0;
  private used = 0;
  private created = 0;

  constructor(private readonly device: GPUDevice, private readonly maxBufferSize: number) {}

  /**
   * A buffer of at least `bytes` (the size class, or exactly `bytes` where the class would pass
   * maxBufferSize). `fresh` is set when it was created by this call rather than reused.
   */
  acquire(bytes: number, usage: GPUBufferUsageFlags, label: string, fresh?: Set<GPUBuffer>): GPUBuffer {
    const cls = sizeClass(bytes);
    const size = cls <= this.maxBufferSize ? cls : Math.max(bytes, 4);
    const key = `${usage}:${size}`;
    const list = this.free.get(key);
    let buf = list?.pop();
    if (!buf) {
      buf = this.device.createBuffer({ size, usage, label });
      this.allocated += size;
      this.created++;
      fresh?.add(buf);
    } else {
      buf.label = label;
    }
    this.inUse.set(buf, { size, usage });
    this.used += size;
    return buf;
  }

  release(buf: GPUBuffer): void {
    const at = this.inUse.get(buf);
    if (!at) return;
    this.inUse.delete(buf);
    this.used -= at.size;
    const key = `${at.usage}:${at.size}`;
    const list = this.free.get(key) ?? [];
    list.push(buf);
    this.free.set(key, list);
  }

  /** Destroys a buffer handed out by `acquire` that must not be reused (its creation failed). */
  discard(buf: GPUBuffer): void {
    const at = this.inUse.get(buf);
    if (!at) return;
    this.inUse.delete(buf);
    this.used -= at.size;
    this.allocated -= at.size;
    buf.destroy();
  }

  /** Destroys every free buffer (buffers in use stay). */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) {
      this.allocated -= b.size;
      b.destroy();
    }
    this.free.clear();
  }

  destroy(): void {
    this.trim();
    for (const b of this.inUse.keys()) b.destroy();
    this.inUse.clear();
    this.allocated = 0;
    this.used = 0;
  }

  stats(): PoolStats {
    return { bytesAllocated: this.allocated, bytesInUse: this.used, buffersCreated: this.created };
  }
}
