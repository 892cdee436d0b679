import { join } from 'node:path';

/**
 * Where the Node tests note the adapter they ran on, for the summary reporter: a file in the run's
 * private folder (`DETLOSS_TEST_RUN_DIR`, made by vite.config.ts). Kept apart from node-gpu.ts so the
 * reporter, loaded with the config, does not load WebGPU.
 */
export const adapterLogOf = (runDir: string) => join(runDir, 'node-adapters.txt');

/** How the log names an adapter: `vendor / architecture description`, plus `(software fallback)`. */
export function describeAdapter(a: { vendor: string; architecture: string; description: string; isFallbackAdapter: boolean }): string {
  const text = [a.vendor, a.architecture].filter(Boolean).join(' / ') + (a.description ? ` ${a.description}` : '');
  return `${text.trim() || 'unnamed adapter'}${a.isFallbackAdapter ? ' (software fallback)' : ''}`;
}
