// yolo-dfl.wgsl: the DFL distances of one anchor, shared by yolo_decode and yolo_loss (the
// module that takes it binds in_pred_dist): side s (left, top, right, bottom) is the expectation
// sum_i i * softmax(z_s)_i over its r bins (ops.md, "Decode").

// The r logits' largest value m, sum s of exp(z - m) and the sum of i * exp(z_i - m): the softmax
// is exp(z - m) / s, its expectation e / s, and logsumexp m + log(s).
fn dfl_softmax(base: u32, r: u32) -> vec3<f32> {
  var m = in_pred_dist[base];
  for (var k = 1u; k < r; k++) {
    m = max(m, in_pred_dist[base + k]);
  }
  var s = 0.0;
  var e = 0.0;
  for (var k = 0u; k < r; k++) {
    let q = exp(in_pred_dist[base + k] - m);
    s += q;
    e += f32(k) * q;
  }
  return vec3(m, s, e);
}

fn dfl_side(base: u32, r: u32) -> f32 {
  let t = dfl_softmax(base, r);
  return t.z / t.y;
}

fn dfl_distances(i: u32) -> vec4<f32> {
  let r = params.d / 4u;
  let base = i * params.d;
  return vec4(dfl_side(base, r), dfl_side(base + r, r), dfl_side(base + 2u * r, r), dfl_side(base + 3u * r, r));
}
