// regression-io-vec4.wgsl: regression-io.wgsl four elements at a time, loaded and stored as vec4
// (a module with fused-vec4.wgsl in place of fused.wgsl).

@group(0) @binding(6) var<storage, read> in_pred: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> in_target: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> out_grad_pred: array<vec4<f32>>;

fn element_loss4(j: u32, g: vec4<f32>, want_grad: bool) -> vec4<f32> {
  let d = in_pred[j] - in_target[j];
  let r0 = regression_loss(d.x);
  let r1 = regression_loss(d.y);
  let r2 = regression_loss(d.z);
  let r3 = regression_loss(d.w);
  if (want_grad) {
    out_grad_pred[j] = g * vec4(r0.y, r1.y, r2.y, r3.y);
  }
  return vec4(r0.x, r1.x, r2.x, r3.x);
}
