// margin-io.wgsl: hinge's and exponential's tensors, one logit and target per output element
// (concatenated after margin.wgsl).

@group(0) @binding(6) var<storage, read> in_logits: array<f32>;
@group(0) @binding(7) var<storage, read> in_targets: array<f32>;
@group(0) @binding(8) var<storage, read_write> out_grad_logits: array<f32>;

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let r = logit_entry(in_logits[i], in_targets[i]);
  if (want_grad) {
    out_grad_logits[i] = g * r.y;
  }
  return r.x;
}
