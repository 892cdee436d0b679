// fused.wgsl: the loop every element-wise loss shares (design.md, point 5).
//
// Thread `tid` walks output elements tid, tid + threads, ... For each one the
// family's element_loss(i, g, want_grad) writes that element's gradients,
// already multiplied by g (gradOutput * scale * weight), and returns the
// element's unweighted loss. With reduction 'none' the weighted loss is stored
// per element; otherwise each thread keeps a compensated (Kahan) sum of the
// weighted losses times `scale` (1/count for 'mean': scaled before they are
// added, so a mean that float32 holds never overflows on the way) and writes one
// partial, which reduce.wgsl adds in a fixed order.
// No workgroup barrier (very costly on SwiftShader) and no atomics (WGSL has no
// float atomics), so the result is deterministic. The uniforms, flags and bindings are
// fused-header.wgsl's, which comes before this file in the module.

alias LossElement = f32;
alias PartialWord = f32;

// gradOutput when it is one number (reductions 'mean'/'sum'), else 1.
fn scalar_grad_output() -> f32 {
  if (has_flag(FLAG_GRAD_OUTPUT) && !has_flag(FLAG_GRAD_OUTPUT_ELEMENTWISE)) {
    return in_grad_output[0];
  }
  return 1.0;
}

// (weight, gradient factor) of output element i: the factor is gradOutput * scale * weight.
fn element_factors(i: u32, go: f32) -> vec2<f32> {
  var w = 1.0;
  if (has_flag(FLAG_WEIGHT)) {
    w = in_weight[i];
  }
  var gi = go;
  if (has_flag(FLAG_GRAD_OUTPUT_ELEMENTWISE)) {
    gi = in_grad_output[i];
  }
  return vec2(w, gi * run.scale * w);
}

// Compensated (Kahan) addition: acc = (sum, compensation). Once the sum is infinite or NaN the
// compensation is 0, not (inf - inf) = NaN: an infinite loss sums to infinity (a NaN one to NaN),
// as the float64 reference's plain sum does.
fn kahan_add(acc: vec2<f32>, x: f32) -> vec2<f32> {
  let y = x - acc.y;
  let t = acc.x + y;
  return vec2(t, select((t - acc.x) - y, 0.0, is_non_finite(t)));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  // Grids wider than maxComputeWorkgroupsPerDimension are folded into y.
  let tid = gid.x + gid.y * nwg.x * WG;
  if (tid >= run.threads) {
    return;
  }
  let store = has_flag(FLAG_STORE_LOSS);
  let want_grad = has_flag(FLAG_GRAD);
  let go = scalar_grad_output();
  var acc = vec2(0.0);
  for (var i = tid; i < run.n; i += run.threads) {
    let f = element_factors(i, go);
    let l = f.x * element_loss(i, f.y, want_grad);
    if (store) {
      out_loss[i] = l;
    } else {
      acc = kahan_add(acc, l * run.scale);
    }
  }
  if (!store) {
    partials[tid] = acc.x;
  }
}
