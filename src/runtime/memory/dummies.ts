import { USAGE } from '../device/constants';
import type { BindingInfo } from '../public';

/**
 * Small buffers bound where an optional input or an unused output is absent; one per binding
 * slot, so writable ones never alias.
 */
export class DummyBuffers {
  private readonly buffers = new Map<string, GPUBuffer>();

  constructor(private readonly device: GPUDevice) {}

  /** The dummy of a binding slot, created on first use. */
  get(b: BindingInfo): GPUBufferBinding {
    const key = `${b.binding}:${b.kind}`;
    let buf = this.buffers.get(key);
    if (!buf) {
      buf = this.device.createBuffer({ size: Math.max(256, b.minBindingSize), usage: USAGE.STORAGE, label: `detloss:dummy:${b.name}` });
      this.buffers.set(key, buf);
    }
    return { buffer: buf, offset: 0, size: Math.max(256, b.minBindingSize) };
  }

  /** A 4-byte buffer holding 1 (u32): copied into a call's status word 0 once its work ran. */
  one(): GPUBuffer {
    let buf = this.buffers.get('one');
    if (!buf) {
      buf = this.device.createBuffer({ size: 4, usage: USAGE.COPY_SRC, mappedAtCreation: true, label: 'detloss:one' });
      new Uint32Array(buf.getMappedRange()).set([1]);
      buf.unmap();
      this.buffers.set('one', buf);
    }
    return buf;
  }

  destroy(): void {
    for (const b of this.buffers.values()) b.destroy();
    this.buffers.clear();
  }
}
