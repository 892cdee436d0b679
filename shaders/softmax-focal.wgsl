// softmax-focal.wgsl: softmax_focal (Lin et al. 2017, multi-class form; ops.md), one row of c
// logits per output element: -w_y (1 - p_y)^gamma log p_y, 0 for an ignored row (whose gradient
// is written as 0 too). 'mean' divides by the summed weights of the rows not ignored, as
// cross_entropy does (element_denominator, for denominator.wgsl). A row whose softmax is
// undefined (a NaN or +Inf logit, every logit -Inf) is NaN, as in the float64 reference.
//
// 1 - p_y is `other / s`, other = sum_{j != y} exp(x_j - m): the other classes' share, with no
// 1 - p cancellation. With u = 1 - p_y and l = -log p_y, the gradient is
// w_y F (p_j - [j == y]), F = u^gamma (1 + gamma p_y l / u) (l / u -> 1 as u -> 0).

struct Params {
  c: u32,
  ignore_index: i32,
  gamma: f32,
  has_class_weight: u32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_logits: array<f32>;
@group(0) @binding(7) var<storage, read> in_labels: array<i32>;
@group(0) @binding(8) var<storage, read> in_class_weight: array<f32>;
@group(0) @binding(9) var<storage, read_write> out_grad_logits: array<f32>;

fn class_weight(j: u32) -> f32 {
  return select(1.0, in_class_weight[j], params.has_class_weight != 0u);
}

// A label that is neither ignore_index nor a class: only possible on the device (the host
// refuses it, and cannot read labels there). Its row is NaN, loss and gradient.
fn sf_invalid(y: i32) -> bool {
  return y != params.ignore_index && (y < 0 || y >= i32(params.c));
}

// Row i's share of the 'mean' denominator (denominator.wgsl), its weight w applied: w w[y_i], 0
// for an ignored row (whose weight does not enter), NaN for a label that is no class.
fn element_denominator(i: u32, w: f32) -> f32 {
  let y = in_labels[i];
  let share = w * class_weight(min(u32(max(y, 0)), params.c - 1u));
  return select(select(share, nan_f32(), sf_invalid(y)), 0.0, y == params.ignore_index);
}

// An ignored row (0) or one whose label is no class (NaN): its loss, its gradient written.
fn sf_skip_row(base: u32, first: u32, step: u32, invalid: bool, want_grad: bool) -> f32 {
  let v = select(0.0, nan_f32(), invalid);
  if (want_grad) {
    for (var j = first; j < params.c; j += step) {
      out_grad_logits[base + j] = v;
    }
  }
  return v;
}

// From the row's sums s = sum_j exp(x_j - m) and other (the same without j = y), and
// dy = x_y - m: (loss / w_y, F, u = 1 - p_y).
fn sf_terms(s: f32, other: f32, dy: f32) -> vec3<f32> {
  let ey = exp(dy);
  let u = other / s;
  let py = ey / s;
  // -log p_y = log(s / e_y): log1p(other / e_y) where p_y >= 1/2, exact near p_y = 1.
  var l = log(s) - dy;
  if (other <= ey) {
    l = log1p(other / ey);
  }
  let gamma = params.gamma;
  let ug = pow0(u, gamma);
  let ratio = select(safe_div(l, u), 1.0, u < 1.17549435e-38);
  return vec3(ug * l, ug * (1.0 + gamma * py * ratio), u);
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  let base = i * c;
  let yl = in_labels[i];
  let invalid = sf_invalid(yl);
  if (yl == params.ignore_index || invalid) {
    return sf_skip_row(base, 0u, 1u, invalid, want_grad);
  }
  let y = u32(yl);
  var m = in_logits[base];
  for (var j = 1u; j < c; j++) {
    m = max(m, in_logits[base + j]);
  }
  var s = 0.0;
  var other = 0.0;
  for (var j = 0u; j < c; j++) {
    let e = exp_shifted(in_logits[base + j], m);
    s += e;
    other += select(e, 0.0, j == y);
  }
  let t = sf_terms(s, other, in_logits[base + y] - m);
  let wy = class_weight(y);
  if (want_grad) {
    let a = g * wy * t.y;
    for (var j = 0u; j < c; j++) {
      out_grad_logits[base + j] = select(a * (exp(in_logits[base + j] - m) / s), -a * t.z, j == y);
    }
  }
  return select(wy * t.x, nan_f32(), softmax_row_bad(m, s));
}

fn row_loss_wg(row: u32, lane: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  let base = row * c;
  let yl = in_labels[row];
  let invalid = sf_invalid(yl);
  if (yl == params.ignore_index || invalid) {
    return sf_skip_row(base, lane, row_lanes(), invalid, want_grad);
  }
  let y = u32(yl);
  var m = -3.0e38;
  for (var j = lane; j < c; j += row_lanes()) {
    m = max(m, in_logits[base + j]);
  }
  m = row_max(m, lane);
  var s = 0.0;
  var other = 0.0;
  for (var j = lane; j < c; j += row_lanes()) {
    let e = exp_shifted(in_logits[base + j], m);
    s += e;
    other += select(e, 0.0, j == y);
  }
  s = row_sum(s, lane);
  other = row_sum(other, lane);
  let t = sf_terms(s, other, in_logits[base + y] - m);
  let wy = class_weight(y);
  if (want_grad) {
    let a = g * wy * t.y;
    for (var j = lane; j < c; j += row_lanes()) {
      out_grad_logits[base + j] = select(a * (exp(in_logits[base + j] - m) / s), -a * t.z, j == y);
    }
  }
  return select(wy * t.x, nan_f32(), softmax_row_bad(m, s));
}
