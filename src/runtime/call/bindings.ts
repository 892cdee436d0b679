import { DetlossError } from '../../errors';
import { snake, type OpDescriptor } from '../../ops/types';
import type { Resolved } from '../../ops/validate';
import { PARAMS_AT, SLOT } from '../compile/abi';
import type { Tensor } from '../memory/allocation';
import type { DummyBuffers } from '../memory/dummies';
import type { BindingInfo } from '../public';
import type { Chunk } from './chunks';
import type { CallBuffers } from './runtime';

/** The range of a buffer one chunk of a fused pass binds at a shader binding. */
export function bindingResource(
  desc: OpDescriptor,
  b: BindingInfo,
  c: Chunk,
  chunkIndex: number,
  r: Resolved,
  bufs: CallBuffers,
  perRow: Record<string, number>,
  dummies: DummyBuffers,
): GPUBufferBinding {
  const { tensors, out, partials } = bufs;
  const reduced = r.reduction !== 'none';
  const outRange = (buffer: GPUBuffer) => ({ buffer, offset: c.rowStart * r.outPerRow * 4, size: c.outCount * 4 });
  const rowRange = (t: Tensor, bytesPerRow: number) =>
    bytesPerRow === 0 ? dummies.get(b) : { buffer: t.buffer, offset: c.rowStart * bytesPerRow, size: c.rows * bytesPerRow };
  const whole = (t: Tensor) => ({ buffer: t.buffer, offset: 0, size: t.bytes });
  switch (b.name) {
    case 'run':
      return { buffer: bufs.uniforms, offset: chunkIndex * SLOT, size: b.minBindingSize };
    case 'params':
      return { buffer: bufs.uniforms, offset: chunkIndex * SLOT + PARAMS_AT, size: b.minBindingSize };
    case 'in_weight':
      return tensors.weight ? outRange(tensors.weight.buffer) : dummies.get(b);
    case 'in_grad_output':
      if (!tensors.gradOutput) return dummies.get(b);
      return reduced ? whole(tensors.gradOutput) : outRange(tensors.gradOutput.buffer);
    case 'out_loss':
      return reduced ? dummies.get(b) : outRange(out.loss.buffer);
    case 'partials':
      return partials ? { buffer: partials, offset: c.partialStart * 4, size: c.threads * 4 } : dummies.get(b);
  }
  const m = /^(in|out_grad)_(.+)$/.exec(b.name);
  const name = m && Object.keys(desc.inputs).find((k) => snake(k) === m[2]);
  if (!m || !name) throw new DetlossError('pipeline', `${desc.name}: shader binding ${b.name} matches no input of the op`);
  if (m[1] === 'in') {
    const t = tensors[name];
    if (!t) return dummies.get(b);
    return name in perRow ? rowRange(t, perRow[name]) : whole(t);
  }
  const g = out.grads[name];
  if (!g) return dummies.get(b);
  return rowRange(g, perRow[name]);
}
