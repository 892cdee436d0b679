// hinge-embedding-io.wgsl: hinge_embedding's tensors, one prediction and target per output
// element (concatenated after margin.wgsl).

@group(0) @binding(6) var<storage, read> in_pred: array<f32>;
@group(0) @binding(7) var<storage, read> in_targets: array<f32>;
@group(0) @binding(8) var<storage, read_write> out_grad_pred: array<f32>;

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let r = hinge_embedding_entry(in_pred[i], in_targets[i]);
  if (want_grad) {
    out_grad_pred[i] = g * r.y;
  }
  return r.x;
}
