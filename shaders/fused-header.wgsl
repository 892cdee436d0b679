// fused-header.wgsl: the uniforms, flags and bindings every op's kernel shares with the runtime
// (src/runtime/fused-slots.ts, contract.ts): fused.wgsl's loop, fused-vec4.wgsl's, and the
// ranking programs. The module that takes it names the element types of two bindings:
//   alias LossElement = f32;    // in_weight's and out_loss's elements (vec4<f32> in fused-vec4.wgsl)
//   alias PartialWord = f32;    // the partials' (u32 in ranking.wgsl: its scratch words)

override WG: u32 = 64u;

const FLAG_WEIGHT: u32 = 1u;
const FLAG_GRAD_OUTPUT: u32 = 2u;
const FLAG_GRAD_OUTPUT_ELEMENTWISE: u32 = 4u;
const FLAG_STORE_LOSS: u32 = 8u;
const FLAG_GRAD: u32 = 16u;

// n: output elements in this chunk; threads: threads that take part (the
// grid may be larger after folding); scale: 1/count for 'mean', else 1.
struct Run {
  n: u32,
  threads: u32,
  flags: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<storage, read> in_weight: array<LossElement>;
// gradOutput stays scalar in every module: with 'mean'/'sum' it is one number, and a caller's
// buffer may hold only those 4 bytes (too small to bind as vec4).
@group(0) @binding(2) var<storage, read> in_grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> out_loss: array<LossElement>;
@group(0) @binding(4) var<storage, read_write> partials: array<PartialWord>;

fn has_flag(f: u32) -> bool {
  return (run.flags & f) != 0u;
}
