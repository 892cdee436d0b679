// fused-vec4.wgsl: fused.wgsl's loop four output elements at a time, for element-wise families
// whose tensors lie element for element beside the output (design.md, point 5). It replaces
// fused.wgsl in the module; the family defines
//   fn element_loss4(j: u32, g: vec4<f32>, want_grad: bool) -> vec4<f32>
// for output elements 4j .. 4j + 3: it loads and stores vec4s, writes their gradients already
// multiplied by g, and returns their unweighted losses. The runtime takes this module only where
// every chunk holds a multiple of four elements (`run.n`), so there is no tail. The uniforms, the
// flags and the partials are fused.wgsl's: one partial per thread, each a compensated sum taken in
// a fixed order, so the result is deterministic for a given plan. The module has
// fused-header.wgsl before this file.

alias LossElement = vec4<f32>;
alias PartialWord = f32;

// fused.wgsl's compensated addition: no compensation once the sum is infinite or NaN.
fn kahan_add(acc: vec2<f32>, x: f32) -> vec2<f32> {
  let y = x - acc.y;
  let t = acc.x + y;
  return vec2(t, select((t - acc.x) - y, 0.0, is_non_finite(t)));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let tid = gid.x + gid.y * nwg.x * WG;
  if (tid >= run.threads) {
    return;
  }
  let store = has_flag(FLAG_STORE_LOSS);
  let want_grad = has_flag(FLAG_GRAD);
  let weighted = has_flag(FLAG_WEIGHT);
  let elementwise_go = has_flag(FLAG_GRAD_OUTPUT_ELEMENTWISE);
  var go = vec4(1.0);
  if (has_flag(FLAG_GRAD_OUTPUT) && !elementwise_go) {
    go = vec4(in_grad_output[0]);
  }
  let n4 = run.n / 4u;
  var acc = vec2(0.0);
  for (var j = tid; j < n4; j += run.threads) {
    var w = vec4(1.0);
    if (weighted) {
      w = in_weight[j];
    }
    var gj = go;
    if (elementwise_go) {
      let i = 4u * j;
      gj = vec4(in_grad_output[i], in_grad_output[i + 1u], in_grad_output[i + 2u], in_grad_output[i + 3u]);
    }
    let l = w * element_loss4(j, gj * run.scale * w, want_grad);
    if (store) {
      out_loss[j] = l;
    } else {
      let ls = l * run.scale;
      acc = kahan_add(kahan_add(kahan_add(kahan_add(acc, ls.x), ls.y), ls.z), ls.w);
    }
  }
  if (!store) {
    partials[tid] = acc.x;
  }
}
