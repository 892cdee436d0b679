// regression-io.wgsl: the L1 family's tensors, one pred/target element per output element
// (concatenated after regression.wgsl).

@group(0) @binding(6) var<storage, read> in_pred: array<f32>;
@group(0) @binding(7) var<storage, read> in_target: array<f32>;
@group(0) @binding(8) var<storage, read_write> out_grad_pred: array<f32>;

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let r = regression_loss(in_pred[i] - in_target[i]);
  if (want_grad) {
    out_grad_pred[i] = g * r.y;
  }
  return r.x;
}
