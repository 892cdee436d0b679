import { defineConfig } from 'vitest/config';
import base from '../../vite.config.ts';

/**
 * The long fuzz run and the tolerance audit (scripts/fuzz.mjs): the repo's config (Vulkan
 * environment set on import, ?raw imports), but only test/fuzz/long-run.fuzz.ts (or, with
 * FUZZ_AUDIT set, test/fuzz/audit.fuzz.ts) and no per-test timeout. The `test` block is
 * replaced, not merged, so the suite's own include list does not come along.
 */
export default defineConfig({
  ...base,
  test: { include: [process.env.FUZZ_AUDIT ? 'test/fuzz/audit.fuzz.ts' : 'test/fuzz/long-run.fuzz.ts'], testTimeout: 0, hookTimeout: 180_000, reporters: ['default'] },
});
