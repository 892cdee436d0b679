/** Fuzz knobs from the environment (set by scripts/fuzz.mjs for the long run). */
export const env = {
  seed: Number(process.env.FUZZ_SEED ?? 20240917),
  minutes: Number(process.env.FUZZ_MINUTES ?? 30),
  /** Replay one case: `FUZZ_CASE=i`. */
  only: process.env.FUZZ_CASE !== undefined ? Number(process.env.FUZZ_CASE) : undefined,
  /** Only these ops (`FUZZ_OPS=rotated_iou_loss,pairwise_probiou`): case i is of ops[i % ops.length]. */
  ops: process.env.FUZZ_OPS ? process.env.FUZZ_OPS.split(',').filter(Boolean) : undefined,
};
