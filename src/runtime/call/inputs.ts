import { DetlossError } from '../../errors';
import { checkShape, hostInputs, type HostArray, type HostTensor } from '../../ops/inputs';
import type { OpDescriptor } from '../../ops/types';
import { checkFinite, resolve, type InputInfo, type Resolved, type SharedOptions } from '../../ops/validate';
import { STORAGE } from '../device/constants';
import { isGpuBuffer } from '../memory/allocation';
import type { AnyInput, GpuTensor } from '../public';

function isGpuTensor(x: unknown): x is GpuTensor {
  return isGpuBuffer(x) || (typeof x === 'object' && x !== null && isGpuBuffer((x as { buffer?: unknown }).buffer));
}

/** A call's inputs, checked and resolved: host arrays, GPU tensors, and the op's resolved options. */
export interface CallInputs {
  data: Record<string, HostArray | undefined>;
  info: Record<string, InputInfo | undefined>;
  gpu: Record<string, GpuTensor>;
  /** Whether any input is a GPU tensor. */
  onDevice: boolean;
  r: Resolved;
}

/**
 * Sorts a call's inputs into host arrays and GPU tensors, then checks and resolves them against
 * the op (its validator, and the finiteness scan of `check: true` on host arrays). No GPU work.
 */
export function readInputs(desc: OpDescriptor, inputs: Record<string, AnyInput | undefined>, options: SharedOptions & Record<string, unknown>): CallInputs {
  if (typeof inputs !== 'object' || inputs === null) throw new DetlossError('missing_input', `${desc.name}: inputs must be an object`, 'inputs');
  const host: Record<string, HostTensor> = {};
  const gpu: Record<string, GpuTensor> = {};
  for (const [name, v] of Object.entries(inputs)) {
    if (v === undefined || v === null) continue;
    if (isGpuTensor(v)) gpu[name] = v;
    else host[name] = v as HostTensor;
  }
  const onDevice = Object.keys(gpu).length > 0;
  const { data, info } = hostInputs(desc.name, host);
  for (const [name, t] of Object.entries(gpu)) info[name] = gpuInfo(desc, name, t);
  const r = resolve(desc, info, options, false);
  desc.validate?.(data, r.params, r.dims, r.given, r.check, r.present);
  // GPU buffers are checked by the check pass on the GPU (./checks.ts), host arrays here.
  if (r.check) checkFinite(desc, data);
  return { data, info, gpu, onDevice, r };
}

/** The length and dtype of a GPU tensor input; a buffer too small for its shape is refused. */
function gpuInfo(desc: OpDescriptor, name: string, t: GpuTensor): InputInfo {
  const buffer = isGpuBuffer(t) ? t : t.buffer;
  const spec = Object.hasOwn(desc.inputs, name) ? desc.inputs[name] : undefined;
  const dtype = isGpuBuffer(t) ? spec?.dtype ?? 'f32' : t.dtype ?? spec?.dtype ?? 'f32';
  if (!(buffer.usage & STORAGE)) {
    throw new DetlossError('invalid_value', `${desc.name}: GPU buffer for ${name} needs STORAGE usage`, name);
  }
  if (isGpuBuffer(t)) return { length: Math.floor(buffer.size / 4), kind: dtype };
  checkShape(desc.name, name, t.shape);
  const length = t.shape.reduce((a, b) => a * b, 1);
  if (length * 4 > buffer.size) {
    throw new DetlossError('shape_mismatch', `${desc.name}: ${name} has shape [${t.shape.join(', ')}] but its buffer holds ${buffer.size} bytes`, name);
  }
  return { length, kind: dtype, shape: t.shape };
}
