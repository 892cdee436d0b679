// bce.wgsl: binary_cross_entropy_with_logits with an optional pos_weight [c] (ops.md):
// loss = w t softplus(-x) + (1 - t) softplus(x), in log space, stable for any x.

struct Params {
  c: u32,
  has_pos_weight: u32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_logits: array<f32>;
@group(0) @binding(7) var<storage, read> in_targets: array<f32>;
@group(0) @binding(8) var<storage, read> in_pos_weight: array<f32>;
@group(0) @binding(9) var<storage, read_write> out_grad_logits: array<f32>;

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let x = in_logits[i];
  let t = in_targets[i];
  var w = 1.0;
  if (params.has_pos_weight != 0u) {
    w = in_pos_weight[i % params.c];
  }
  let lg = logistic(x);
  if (want_grad) {
    out_grad_logits[i] = g * (-w * t * lg.y + (1.0 - t) * lg.x);
  }
  return w * t * lg.w + (1.0 - t) * lg.z;
}
