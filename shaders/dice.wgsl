// dice.wgsl: dice (mmdetection dice_loss) on s = sigmoid(logits), a row of p per sample (ops.md):
// 1 - 2a / (b + c) with a = sum s t, b = sum s^2 + eps, c = sum t^2 + eps; naive:
// 1 - (2a + eps) / (sum s + sum t + eps).

override NAIVE: bool = false;

struct Params {
  p: u32,
  eps: f32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_logits: array<f32>;
@group(0) @binding(7) var<storage, read> in_targets: array<f32>;
@group(0) @binding(8) var<storage, read_write> out_grad_logits: array<f32>;

// The three sums' terms for one entry: (s t, s or s^2, t or t^2).
fn dice_terms(x: f32, t: f32) -> vec3<f32> {
  let s = sigmoid(x);
  return select(vec3(s * t, s * s, t * t), vec3(s * t, s, t), NAIVE);
}

// (numerator, denominator) of the dice coefficient from the sums.
fn dice_ratio(sums: vec3<f32>) -> vec2<f32> {
  let eps = params.eps;
  if (NAIVE) {
    return vec2(2.0 * sums.x + eps, sums.y + sums.z + eps);
  }
  return vec2(2.0 * sums.x, sums.y + sums.z + 2.0 * eps);
}

fn dice_grad(x: f32, t: f32, r: vec2<f32>) -> f32 {
  let s = sigmoid(x);
  let db = select(2.0 * s, 1.0, NAIVE);
  let dd = safe_div(2.0 * t, r.y) - safe_div(r.x * db, r.y * r.y);
  return -dd * s * sigmoid(-x);
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let p = params.p;
  let base = i * p;
  var sums = vec3(0.0);
  for (var j = 0u; j < p; j++) {
    sums += dice_terms(in_logits[base + j], in_targets[base + j]);
  }
  let r = dice_ratio(sums);
  if (want_grad) {
    for (var j = 0u; j < p; j++) {
      out_grad_logits[base + j] = g * dice_grad(in_logits[base + j], in_targets[base + j], r);
    }
  }
  return 1.0 - safe_div(r.x, r.y);
}

fn row_loss_wg(row: u32, lane: u32, g: f32, want_grad: bool) -> f32 {
  let p = params.p;
  let base = row * p;
  var sums = vec3(0.0);
  for (var j = lane; j < p; j += row_lanes()) {
    sums += dice_terms(in_logits[base + j], in_targets[base + j]);
  }
  let r = dice_ratio(vec3(row_sum(sums.x, lane), row_sum(sums.y, lane), row_sum(sums.z, lane)));
  if (want_grad) {
    for (var j = lane; j < p; j += row_lanes()) {
      out_grad_logits[base + j] = g * dice_grad(in_logits[base + j], in_targets[base + j], r);
    }
  }
  return 1.0 - safe_div(r.x, r.y);
}
