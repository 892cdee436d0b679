// dfl.wgsl: distribution_focal (mmdetection DFL) over k bins (ops.md): cross-entropy to the two
// bins around the target, weighted by distance: (lse - x_l) wl + (lse - x_r) wr. A row whose
// softmax is undefined (a NaN or +Inf logit, every logit -Inf) is NaN, as in the float64 reference.

struct Params {
  k: u32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_logits: array<f32>;
@group(0) @binding(7) var<storage, read> in_targets: array<f32>;
@group(0) @binding(8) var<storage, read_write> out_grad_logits: array<f32>;

// A target outside [0, k-1), NaN included: only possible on the device (the host refuses it,
// and cannot read targets there). Its row is NaN, never a finite wrong number (ops.md).
fn dfl_target_invalid(t: f32) -> bool {
  return is_nan(t) || t < 0.0 || t >= f32(params.k) - 1.0;
}

// The bins and weights of a target t in [0, k-1): (left, wl, wr).
fn dfl_bins(t: f32) -> vec3<f32> {
  // A NaN target (its row is NaN anyway) takes bin 0, so that no index is read from it.
  let left = min(floor(max(select(t, 0.0, is_nan(t)), 0.0)), f32(params.k) - 2.0);
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
    s += exp_shifted(in_logits[base + j], m);
  }
  let t = in_targets[i];
  let b = dfl_bins(t);
  // an invalid target's gradient is NaN too
  let gi = select(g, nan_f32(), dfl_target_invalid(t));
  if (want_grad) {
    for (var j = 0u; j < k; j++) {
      out_grad_logits[base + j] = gi * dfl_grad(j, in_logits[base + j], m, s, b);
    }
  }
  let lse = m + log(s);
  let left = u32(b.x);
  let loss = (lse - in_logits[base + left]) * b.y + (lse - in_logits[base + left + 1u]) * b.z;
  return select(loss, nan_f32(), softmax_row_bad(m, s) || dfl_target_invalid(t));
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
    s += exp_shifted(in_logits[base + j], m);
  }
  s = row_sum(s, lane);
  let t = in_targets[row];
  let b = dfl_bins(t);
  let gi = select(g, nan_f32(), dfl_target_invalid(t));
  if (want_grad) {
    for (var j = lane; j < k; j += row_lanes()) {
      out_grad_logits[base + j] = gi * dfl_grad(j, in_logits[base + j], m, s, b);
    }
  }
  let lse = m + log(s);
  let left = u32(b.x);
  let loss = (lse - in_logits[base + left]) * b.y + (lse - in_logits[base + left + 1u]) * b.z;
  return select(loss, nan_f32(), softmax_row_bad(m, s) || dfl_target_invalid(t));
}
