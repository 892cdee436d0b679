// bce.wgsl: binary_cross_entropy_with_logits with an optional pos_weight [c] (ops.md):
// loss = w t softplus(-x) + (1 - t) softplus(x), in log space, stable for any x.

struct Params {
  c: u32,
  has_pos_weight: u32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(8) var<storage, read> in_pos_weight: array<f32>;

// (loss, d loss / d x) of output element i (its column is i mod c).
fn bce_entry(x: f32, t: f32, i: u32) -> vec2<f32> {
  var w = 1.0;
  if (params.has_pos_weight != 0u) {
    w = in_pos_weight[i % params.c];
  }
  let lg = logistic(x);
  return vec2(w * t * lg.w + (1.0 - t) * lg.z, -w * t * lg.y + (1.0 - t) * lg.x);
}
