// dfl.wgsl: distribution_focal (mmdetection DFL) over k bins (ops.md): cross-entropy to the two
// bins around the target, weighted by distance: (lse - x_l) wl + (lse - x_r) wr.

struct Params {
  k: u32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_logits: array<f32>;
@group(0) @binding(7) var<storage, read> in_targets: array<f32>;
@group(0) @binding(8) var<storage, read_write> out_grad_logits: array<f32>;

// The bins and weights of a target t in [0, k-1): (left, wl, wr).
fn dfl_bins(t: f32) -> vec3<f32> {
  let left = min(floor(max(t, 0.0)), f32(params.k) - 2.0);
  return vec3(left, left + 1.0 - t, t - left);
}

fn dfl_grad(j: u32, x: f32, m: f32, s: f32, b: vec3<f32>) -> f32 {
  let left = u32(b.x);
  return exp(x - m) / s - select(0.0, b.y, j == left) - select(0.0, b.z, j == left + 1u);
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let k = params.k;
  let base = i * k;
  var m = in_logits[base];
  for (var j = 1u; j < k; j++) {
    m = max(m, in_logits[base + j]);
  }
  var s = 0.0;
  for (var j = 0u; j < k; j++) {
    s += exp(in_logits[base + j] - m);
  }
  let b = dfl_bins(in_targets[i]);
  if (want_grad) {
    for (var j = 0u; j < k; j++) {
      out_grad_logits[base + j] = g * dfl_grad(j, in_logits[base + j], m, s, b);
    }
  }
  let lse = m + log(s);
  let left = u32(b.x);
  return (lse - in_logits[base + left]) * b.y + (lse - in_logits[base + left + 1u]) * b.z;
}

fn row_loss_wg(row: u32, lane: u32, g: f32, want_grad: bool) -> f32 {
  let k = params.k;
  let base = row * k;
  var m = -3.0e38;
  for (var j = lane; j < k; j += row_lanes()) {
    m = max(m, in_logits[base + j]);
  }
  m = row_max(m, lane);
  var s = 0.0;
  for (var j = lane; j < k; j += row_lanes()) {
    s += exp(in_logits[base + j] - m);
  }
  s = row_sum(s, lane);
  let b = dfl_bins(in_targets[row]);
  if (want_grad) {
    for (var j = lane; j < k; j += row_lanes()) {
      out_grad_logits[base + j] = g * dfl_grad(j, in_logits[base + j], m, s, b);
    }
  }
  let lse = m + log(s);
  let left = u32(b.x);
  return (lse - in_logits[base + left]) * b.y + (lse - in_logits[base + left + 1u]) * b.z;
}
