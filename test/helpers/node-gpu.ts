import { appendFileSync } from 'node:fs';
import { create, globals } from 'webgpu';
import { createDetloss } from '../../src/api';
import { DetlossError } from '../../src/errors';
import type { DetlossOptions } from '../../src/runtime/public';
import { ensureRuntimeDir } from '../../src/tools/runtime-dir';
import { adapterLogOf, describeAdapter } from './node-gpu-log';

Object.assign(globalThis, globals);
let gpu: GPU | undefined;
let noted = false;

/**
 * A detloss context on Node's WebGPU (Dawn over Chromium's SwiftShader, set up in vite.config.ts).
 * No adapter is a test failure with a clear message, never a skip.
 */
export async function nodeContext(options: DetlossOptions = {}) {
  // vite.config.ts gives the run one already; under another config (a script's own) this does.
  ensureRuntimeDir();
  gpu ??= create([]) as unknown as GPU;
  try {
    const ctx = await createDetloss({ gpu, ...options });
    // Once per worker process; the summary reporter prints each distinct line once per run.
    const runDir = process.env.DETLOSS_TEST_RUN_DIR;
    if (!noted && runDir) {
      noted = true;
      appendFileSync(adapterLogOf(runDir), `${describeAdapter(ctx.adapter)}\n`);
    }
    return ctx;
  } catch (e) {
    // A refusal of the options themselves is the test's business; anything else means no adapter.
    if (e instanceof DetlossError && e.code !== 'no_webgpu') throw e;
    throw new Error(
      `No WebGPU adapter in Node (${(e as Error).message}). Dawn needs a Vulkan driver: install Chromium ` +
        '(apt-get install -y chromium) so /usr/lib/chromium/vk_swiftshader_icd.json exists, then rerun npm test.',
    );
  }
}
