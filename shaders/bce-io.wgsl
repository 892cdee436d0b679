// bce-io.wgsl: bce_with_logits's tensors, one logit and target per output element (concatenated
// after bce.wgsl).

@group(0) @binding(6) var<storage, read> in_logits: array<f32>;
@group(0) @binding(7) var<storage, read> in_targets: array<f32>;
@group(0) @binding(9) var<storage, read_write> out_grad_logits: array<f32>;

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let r = bce_entry(in_logits[i], in_targets[i], i);
  if (want_grad) {
    out_grad_logits[i] = g * r.y;
  }
  return r.x;
}
