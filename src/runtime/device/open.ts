import { DetlossError } from '../../errors';
import type { AdapterFacts, ContextLimits, DetlossOptions } from '../public';
import { checkOptions } from './options';


/** The limits a context's device is requested with, at the adapter's own values. */
export const REQUESTED_LIMITS: readonly (keyof GPUSupportedLimits)[] = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupStorageSize',
];

/**
 * The GPU instance and adapter a device came from, kept as long as the device is reachable. In
 * Node (Dawn) a device whose instance was garbage-collected crashes the process on its next
 * event (an abort or a segfault, not an error): `createDetloss({ gpu: create([]) })` holds no
 * other reference to that instance.
 */
const owners = new WeakMap<GPUDevice, unknown[]>();

/**
 * The device a context runs on: the given one, or a new one from `navigator.gpu` (or `options.gpu`)
 * with the adapter's own limits. Throws `DetlossError('no_webgpu')` saying what is missing.
 */
export async function openDevice(options: DetlossOptions = {}): Promise<{ device: GPUDevice; adapter: AdapterFacts }> {
  checkOptions(options);
  if (options.device) return { device: options.device, adapter: deviceFacts(options.device) };
  const gpu = options.gpu ?? (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) {
    throw new DetlossError(
      'no_webgpu',
      'WebGPU is not available: navigator.gpu is missing. Use a WebGPU browser on a secure page (https or http://localhost; ' +
        'on Linux Chromium needs --enable-unsafe-webgpu), or in Node pass { gpu: create([]) } from the `webgpu` package.',
    );
  }
  const adapter = await gpu.requestAdapter();
  if (!adapter) {
    const inNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string' && !(globalThis as { document?: unknown }).document;
    throw new DetlossError(
      'no_webgpu',
      inNode
        ? 'WebGPU is present but no GPU adapter was found. Node\'s WebGPU (Dawn) needs a Vulkan driver: install the Vulkan loader ' +
            '(libvulkan1) and a driver (the GPU vendor\'s, or SwiftShader: apt-get install chromium ships one), then start Node with ' +
            'VK_ICD_FILENAMES=<the driver\'s ICD json, e.g. /usr/lib/chromium/vk_swiftshader_icd.json> and, for SwiftShader, ' +
            'LD_LIBRARY_PATH=/usr/lib/chromium.'
        : 'WebGPU is present but no GPU adapter was found. On a headless Linux machine without a GPU, Chromium provides a software ' +
            'adapter (SwiftShader) with --enable-unsafe-webgpu; check chrome://gpu for why WebGPU is disabled.',
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const k of REQUESTED_LIMITS) requiredLimits[k] = adapter.limits[k] as number;
  // Timestamps wherever the adapter has them: tune() times candidate plans with them. Calls are
  // timed only with `timestamps: true` (each such call costs a query set's resolve).
  const requiredFeatures: GPUFeatureName[] = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  // Subgroups cost nothing to ask for; the subgroup-per-row kernels need them.
  if (adapter.features.has('subgroups')) requiredFeatures.push('subgroups' as GPUFeatureName);
  const device = await adapter.requestDevice({ label: 'detloss', requiredLimits, requiredFeatures });
  owners.set(device, [gpu, adapter]);
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const fallback = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? false;
  return { device, adapter: adapterFacts(info, fallback) };
}

/** The adapter facts of a device the caller already has (read at once: a framework's device). */
export function deviceFacts(device: GPUDevice): AdapterFacts {
  return adapterFacts((device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo, false);
}

function adapterFacts(info: GPUAdapterInfo | undefined, fallback: boolean): AdapterFacts {
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    isFallbackAdapter: fallback || ((info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? false),
    subgroupMaxSize: (info as { subgroupMaxSize?: number } | undefined)?.subgroupMaxSize,
  };
}

/** The limits a context plans with: the device's, lowered where `options.limits` asks. */
export function contextLimits(device: GPUDevice, options: DetlossOptions): ContextLimits {
  const dl = device.limits;
  const cap = (k: keyof NonNullable<DetlossOptions['limits']>) => Math.min(dl[k], options.limits?.[k] ?? Infinity);
  return {
    maxStorageBufferBindingSize: cap('maxStorageBufferBindingSize'),
    maxBufferSize: cap('maxBufferSize'),
    maxComputeWorkgroupsPerDimension: cap('maxComputeWorkgroupsPerDimension'),
    minStorageBufferOffsetAlignment: dl.minStorageBufferOffsetAlignment,
  };
}
