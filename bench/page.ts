/**
 * The benchmark page: the shared harness (bench/harness.ts) on the browser's WebGPU, with TF.js's
 * webgpu and cpu backends, registered on window for the runner's page.evaluate calls.
 */
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgpu';
import { createDetloss } from '../src/index';
import { createHarness } from './harness';

const api = createHarness({
  async open() {
    const dl = await createDetloss();
    const dlRows = await createDetloss({ device: dl.device, rowThreshold: 0 });
    return { dl, dlRows, adapter: { ...dl.adapter } };
  },
  fresh: () => createDetloss(),
  tfjsCpu: true,
  tfjsCpuMaxN: 1e5,
});

(window as unknown as { bench: typeof api }).bench = api;
(window as unknown as { benchReady: boolean }).benchReady = true;
