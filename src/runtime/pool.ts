/** Bytes held by the pool. */
export interface PoolStats {
  /** Bytes of every buffer the pool has created and not destroyed. */
  bytesAllocated: number;
  /** Bytes of buffers handed out and not yet released. */
  bytesInUse: number;
  /** Buffers created over the pool's life. */
  buffersCreated: number;
}

/** Size class: the next power of two, at least 256 bytes. */
export const sizeClass = (bytes: number) => Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(1, bytes))));

/**
 * Reuses GPU buffers by usage and power-of-two size class, so repeated calls
 * of the same sizes allocate nothing. Buffers return with `release`; WebGPU
 * orders queue operations, so a buffer released after a submit can be
 * rewritten by the next call's `writeBuffer` safely.
 */
export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  private inUse = new Set<GPUBuffer>();
  private allocated = 0;
  private used = 0;
  private created = 0;

  constructor(private readonly device: GPUDevice, private readonly maxBufferSize: number) {}

  acquire(bytes: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    const size = Math.min(sizeClass(bytes), Math.max(bytes, this.maxBufferSize));
    const key = `${usage}:${size}`;
    const list = this.free.get(key);
    let buf = list?.pop();
    if (!buf) {
      buf = this.device.createBuffer({ size, usage, label });
      this.allocated += size;
      this.created++;
    } else {
      buf.label = label;
    }
    this.inUse.add(buf);
    this.used += buf.size;
    return buf;
  }

  release(buf: GPUBuffer): void {
    if (!this.inUse.delete(buf)) return;
    this.used -= buf.size;
    const key = `${buf.usage}:${buf.size}`;
    const list = this.free.get(key) ?? [];
    list.push(buf);
    this.free.set(key, list);
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
    for (const b of this.inUse) b.destroy();
    this.inUse.clear();
    this.allocated = 0;
    this.used = 0;
  }

  stats(): PoolStats {
    return { bytesAllocated: this.allocated, bytesInUse: this.used, buffersCreated: this.created };
  }
}
