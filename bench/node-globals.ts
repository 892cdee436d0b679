/**
 * Node's WebGPU (the `webgpu` package, Dawn) as the browser globals TF.js and the harness expect.
 * Imported first by bench/node.ts: TF.js's webgpu backend registers itself only when it finds
 * navigator.gpu as its module loads.
 */
import { create, globals } from 'webgpu';
import { ensureRuntimeDir } from '../src/tools/runtime-dir';

Object.assign(globalThis, globals);
// A valid XDG_RUNTIME_DIR before create(): without one, libwayland prints an error line (runtime-dir.ts).
ensureRuntimeDir();
/**
 * The one GPU entry point of this process. Dawn rounds GPU timestamps down to 65.536 µs unless told
 * not to; a benchmark that times passes of tens of microseconds needs them whole.
 */
export const gpu = create(['disable-dawn-features=timestamp_quantization']) as unknown as GPU;
const g = globalThis as unknown as { navigator?: { gpu?: GPU } };
if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
