import type { InputInfo, Resolved } from '../../ops/validate';
import type { OpDescriptor } from '../../ops/types';
import { RULE_CODES, ruleArgs, valueRulesOf, type ValueRule } from '../../ops/value-rules';
import { USAGE, WG } from '../device/constants';
import type { CallAllocation, Tensor } from '../memory/allocation';
import type { Kernel } from '../compile/pipelines';
import { initialStatus, statusVerdict, type CallStatus, type ValueCheck } from './status';
import type { Runtime } from './runtime';

// The check pass: the value rules (src/ops/value-rules.ts) of inputs that live on the GPU, and
// `check: true`'s finite rule on them, checked by shaders/check.wgsl in the call's own command
// buffer. Its status words come back with the results (`run` refuses the call) or guard the copy
// into a framework's tensors (the synchronous path: the verdict arrives with the GPU's others).
//
// The status words are laid out in ./status.ts.

/** Bytes between the uniform slots of the check pass (minUniformBufferOffsetAlignment's usual value). */
const SLOT = 256;

/**
 * The checks a call runs on its GPU-resident inputs: the op's value rules, and with `check: true`
 * the finite rule on every f32 input (weights and gradOutput included).
 */
export function planChecks(desc: OpDescriptor, r: Resolved, gpu: Record<string, unknown>, info: Record<string, InputInfo | undefined>): ValueCheck[] {
  const checks: ValueCheck[] = [];
  const args = ruleArgs(r.dims, r.params);
  const add = (input: string, rule: ValueRule) => {
    const length = info[input]?.length ?? 0;
    if (length > 0) checks.push({ input, rule, args, length, slot: checks.length + 1 });
  };
  for (const { input, rule, withCheck } of valueRulesOf(desc.name)) {
    // A custom op of the same name has its own inputs: a rule applies to one of them only.
    if (Object.hasOwn(gpu, input) && Object.hasOwn(desc.inputs, input) && (!withCheck || r.check)) add(input, rule);
  }
  if (r.check) {
    for (const name of Object.keys(gpu)) {
      const spec = Object.hasOwn(desc.inputs, name) ? desc.inputs[name] : undefined;
      if ((spec?.dtype ?? info[name]?.kind ?? 'f32') === 'f32') add(name, 'finite');
    }
  }
  return checks;
}

/** Chunks of a check within one binding: [first element, count]. */
function chunks(length: number, maxBinding: number): [number, number][] {
  // Offsets must be multiples of 256 bytes: 64 elements.
  const per = Math.max(64, Math.floor(maxBinding / 256) * 64);
  const out: [number, number][] = [];
  for (let at = 0; at < length; at += per) out.push([at, Math.min(per, length - at)]);
  return out;
}

/** Uniform bytes of the check pass (one slot per check and chunk). */
export function checkUniformBytes(checks: readonly ValueCheck[], maxBinding: number): number {
  return Math.max(SLOT, checks.reduce((s, c) => s + chunks(c.length, maxBinding).length, 0) * SLOT);
}

/** Allocates nothing: writes the status (word 0 cleared) and uniforms and encodes the check pass into `enc`. */
export function encodeChecks(
  device: GPUDevice,
  enc: GPUCommandEncoder,
  kernel: Kernel | undefined,
  status: CallStatus,
  tensors: Record<string, Tensor | undefined>,
  maxBinding: number,
  maxGroups: number,
  label: string,
): number {
  device.queue.writeBuffer(status.buffer, 0, initialStatus(status.checks));
  if (!status.checks.length || !status.uniforms || !kernel) return 0;
  const bytes = new ArrayBuffer(checkUniformBytes(status.checks, maxBinding));
  const view = new DataView(bytes);
  const pass = enc.beginComputePass({ label: `detloss:${label}:check` });
  pass.setPipeline(kernel.pipeline);
  let slot = 0;
  let dispatches = 0;
  for (const c of status.checks) {
    const t = tensors[c.input];
    if (!t) continue;
    for (const [first, count] of chunks(c.length, maxBinding)) {
      const at = slot * SLOT;
      view.setUint32(at, count, true);
      view.setUint32(at + 4, first, true);
      view.setUint32(at + 8, c.slot, true);
      view.setUint32(at + 12, RULE_CODES[c.rule], true);
      view.setInt32(at + 16, c.rule === 'dfl' ? clampI32(c.args.k) : clampI32(c.args.c), true);
      view.setInt32(at + 20, clampI32(c.args.ignore), true);
      pass.setBindGroup(
        0,
        device.createBindGroup({
          label: `detloss:${label}:check:${c.input}`,
          layout: kernel.layout,
          entries: [
            { binding: 0, resource: { buffer: status.uniforms, offset: at, size: 32 } },
            { binding: 1, resource: { buffer: t.buffer, offset: first * 4, size: count * 4 } },
            { binding: 2, resource: { buffer: status.buffer, offset: 0, size: status.bytes } },
          ],
        }),
      );
      const g = Math.ceil(count / WG);
      pass.dispatchWorkgroups(Math.min(g, maxGroups), Math.ceil(g / maxGroups));
      dispatches++;
      slot++;
    }
  }
  pass.end();
  device.queue.writeBuffer(status.uniforms, 0, bytes);
  return dispatches;
}

const clampI32 = (v: number) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.trunc(v)));

/** Usage of a status buffer: bound as storage, written by the queue, copied to staging. */
const STATUS_USAGE = USAGE.STORAGE | USAGE.COPY_DST | USAGE.COPY_SRC;

/** A call's status buffer (and the check pass's uniforms), when it checks values or marks that its work ran. */
export function acquireStatus(rt: Pick<Runtime, 'limits'>, a: CallAllocation, checks: ValueCheck[], marker: boolean, late = false): CallStatus | undefined {
  if (!checks.length && !marker) return undefined;
  const bytes = 4 * (1 + checks.length);
  return {
    buffer: a.acquire(bytes, STATUS_USAGE, 'status', a.scratch),
    bytes,
    checks,
    uniforms: checks.length ? a.acquire(checkUniformBytes(checks, rt.limits.maxStorageBufferBindingSize), USAGE.UNIFORM | USAGE.COPY_DST, 'check-uniforms', a.scratch) : undefined,
    marker,
    staging: late && checks.length ? a.acquire(bytes, USAGE.MAP_READ | USAGE.COPY_DST, 'status-staging', a.held) : undefined,
  };
}

/** A resident call's value checks: their words are read after it resolved, and a failure is thrown by the context's next call or flush(). */
export function lateVerdict(rt: Pick<Runtime, 'late'>, desc: OpDescriptor, status: CallStatus | undefined, a: CallAllocation): void {
  if (!status?.staging) return;
  rt.late.watch(statusVerdict(desc, status, status.staging, a.releaseHeld));
}

/**
 * Encodes the guarded copy of `bytes` of `src` into `dst` (shaders/guard.wgsl): the values where
 * the status says the call's work ran and every check passed, NaN everywhere else. In ranges
 * that fit one binding, at offsets that keep the 256-byte alignment.
 */
export function encodeGuardedCopy(
  device: GPUDevice,
  enc: GPUCommandEncoder,
  kernel: Kernel,
  status: CallStatus,
  src: GPUBuffer,
  dst: GPUBuffer,
  bytes: number,
  limits: { maxStorageBufferBindingSize: number; maxComputeWorkgroupsPerDimension: number },
  label: string,
): void {
  if (bytes === 0) return;
  const pass = enc.beginComputePass({ label: `detloss:${label}:guarded-copy` });
  pass.setPipeline(kernel.pipeline);
  for (const [first, count] of chunks(bytes / 4, limits.maxStorageBufferBindingSize)) {
    pass.setBindGroup(
      0,
      device.createBindGroup({
        label: `detloss:${label}:guarded-copy`,
        layout: kernel.layout,
        entries: [
          { binding: 0, resource: { buffer: status.buffer, offset: 0, size: status.bytes } },
          { binding: 1, resource: { buffer: src, offset: first * 4, size: count * 4 } },
          { binding: 2, resource: { buffer: dst, offset: first * 4, size: count * 4 } },
        ],
      }),
    );
    const g = Math.ceil(count / WG);
    const max = limits.maxComputeWorkgroupsPerDimension;
    pass.dispatchWorkgroups(Math.min(g, max), Math.ceil(g / max));
  }
  pass.end();
}

