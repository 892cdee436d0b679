// denominator.wgsl: the data-dependent denominator of reduction 'mean' (ops.md: cross_entropy
// divides by the summed weights of the rows not ignored), summed on the GPU for inputs that live
// there. Concatenated after fused.wgsl by families that define
//   fn element_denominator(i: u32, w: f32) -> f32
// (output element i's share, its `weight` w applied: the op decides whether w enters, since an
// ignored row's weight does not, whatever it holds). Same bindings, chunks and partials layout as
// fused.wgsl's main; reduce.wgsl's last level then writes 1 / sum, which the runtime copies into
// the `scale` of the passes that follow.

@compute @workgroup_size(WG)
fn main_denominator(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let tid = gid.x + gid.y * nwg.x * WG;
  if (tid >= run.threads) {
    return;
  }
  var acc = vec2(0.0);
  for (var i = tid; i < run.n; i += run.threads) {
    var w = 1.0;
    if (has_flag(FLAG_WEIGHT)) {
      w = in_weight[i];
    }
    acc = kahan_add(acc, element_denominator(i, w));
  }
  partials[tid] = acc.x;
}
