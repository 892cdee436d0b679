// softmax-focal.wgsl: softmax_focal (Lin et al. 2017, multi-class form; ops.md), one row of c
// logits per output element: -w_y (1 - p_y)^gamma log p_y, 0 for an ignored row (whose gradient
// is written as 0 too). 'mean' divides by the summed weights of the rows not ignored, as
// cross_entropy does (element_denominator, for denominator.wgsl).
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

// Ignored rows, and labels that are no class (possible only for labels already on the device,
// which the host cannot check), contribute nothing.
fn sf_ignored(y: i32) -> bool {
  return y == params.ignore_index || y < 0 || y >= i32(params.c);
}

// Row i's share of the 'mean' denominator (denominator.wgsl): w[y_i], 0 for an ignored row.
fn element_denominator(i: u32) -> f32 {
  let y = in_labels[i];
  return select(class_weight(min(u32(max(y, 0)), params.c - 1u)), 0.0, sf_ignored(y));
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
  if (sf_ignored(yl)) {
    if (want_grad) {
      for (var j = 0u; j < c; j++) {
        out_grad_logits[base + j] = 0.0;
      }
    }
    return 0.0;
  }
  let y = u32(yl);
  var m = in_logits[base];
  for (var j = 1u; j < c; j++) {
    m = max(m, in_logits[base + j]);
  }
  var s = 0.0;
  var other = 0.0;
  for (var j = 0u; j < c; j++) {
    let e = exp(in_logits[base + j] - m);
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
  return wy * t.x;
}

fn row_loss_wg(row: u32, lane: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  let base = row * c;
  let yl = in_labels[row];
  if (sf_ignored(yl)) {
    if (want_grad) {
      for (var j = lane; j < c; j += row_lanes()) {
        out_grad_logits[base + j] = 0.0;
      }
    }
    return 0.0;
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
    let e = exp(in_logits[base + j] - m);
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
  return wy * t.x;
}
