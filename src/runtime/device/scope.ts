import { DetlossError } from '../../errors';

/** What a call's out-of-memory and validation error scopes caught. */
export interface ScopeErrors {
  validation: GPUError | null;
  oom: GPUError | null;
}

/**
 * Runs `body` inside an out-of-memory and a validation error scope, popped as soon as it returns
 * or throws (scopes are a stack every call on the device shares, so none stays open across an
 * await). `caught` is what the two scopes caught.
 */
export function inErrorScopes<T>(device: GPUDevice, body: () => T): { value: T; caught: Promise<ScopeErrors> } {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let caught: Promise<ScopeErrors> | undefined;
  try {
    const value = body();
    caught = pop(device);
    return { value, caught };
  } finally {
    // A body that threw: the scopes are popped all the same, and their verdict is not needed.
    if (!caught) pop(device).catch(() => {});
  }
}

function pop(device: GPUDevice): Promise<ScopeErrors> {
  return Promise.all([device.popErrorScope(), device.popErrorScope()]).then(([validation, oom]) => ({ validation, oom }));
}

/**
 * The refusal in what a call's scopes caught, or undefined: out of memory before validation.
 * `buffers` says the scopes held the call's allocation (with its size in bytes), `work` its passes.
 */
export function scopeError(op: string, caught: ScopeErrors, what: { buffers: number } | 'work'): DetlossError | undefined {
  const { oom, validation } = caught;
  if (what === 'work') {
    if (oom) return new DetlossError('gpu_out_of_memory', `${op}: out of GPU memory: ${oom.message}`);
    if (validation) return new DetlossError('gpu_validation', `${op}: the GPU rejected the work: ${validation.message}`);
    return undefined;
  }
  if (oom) return new DetlossError('gpu_out_of_memory', `${op}: out of GPU memory allocating ${what.buffers} bytes for this call: ${oom.message}`);
  if (validation) return new DetlossError('gpu_validation', `${op}: the GPU refused this call's buffers: ${validation.message}`);
  return undefined;
}
