// ce.wgsl: cross_entropy (F.cross_entropy) with class weights, ignore_index and label smoothing
// (ops.md): loss = (1-ls)(-w_y q_y) - (ls/c) sum_j w_j q_j, q = log_softmax(x); 0 for an ignored
// row, whose gradient is written as 0 too. 'mean' divides by the summed weights of the rows not
// ignored; the runtime folds that denominator into the gradient factor g.

struct Params {
  c: u32,
  ignore_index: i32,
  label_smoothing: f32,
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

// A label the kernel can use: ignored rows, and labels that are no class (only possible for
// labels already on the device, which the host cannot check), contribute nothing.
fn ce_ignored(y: i32) -> bool {
  return y == params.ignore_index || y < 0 || y >= i32(params.c);
}

// d loss / d x_j = p_j a - (ls/c) w_j - [j == y] (1-ls) w_y, a = (1-ls) w_y + (ls/c) W
fn ce_grad(j: u32, y: u32, x: f32, m: f32, s: f32, a: f32, wy: f32) -> f32 {
  let ls = params.label_smoothing;
  let lsc = ls / f32(params.c);
  return exp(x - m) / s * a - lsc * class_weight(j) - select(0.0, (1.0 - ls) * wy, j == y);
}

// Row i's share of the 'mean' denominator (denominator.wgsl): w[y_i], 0 for an ignored row.
fn element_denominator(i: u32) -> f32 {
  let y = in_labels[i];
  return select(class_weight(min(u32(max(y, 0)), params.c - 1u)), 0.0, ce_ignored(y));
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  let base = i * c;
  let yl = in_labels[i];
  if (ce_ignored(yl)) {
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
  var wsum = 0.0;
  var wx = 0.0; // sum_j w_j x_j
  for (var j = 0u; j < c; j++) {
    let x = in_logits[base + j];
    s += exp(x - m);
    let w = class_weight(j);
    wsum += w;
    wx += w * x;
  }
  let lse = m + log(s);
  let ls = params.label_smoothing;
  let lsc = ls / f32(c);
  let wy = class_weight(y);
  if (want_grad) {
    let a = (1.0 - ls) * wy + lsc * wsum;
    for (var j = 0u; j < c; j++) {
      out_grad_logits[base + j] = g * ce_grad(j, y, in_logits[base + j], m, s, a, wy);
    }
  }
  // sum_j w_j q_j = sum_j w_j x_j - W lse
  return -(1.0 - ls) * wy * (in_logits[base + y] - lse) - lsc * (wx - wsum * lse);
}

fn row_loss_wg(row: u32, lane: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  let base = row * c;
  let yl = in_labels[row];
  if (ce_ignored(yl)) {
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
  var wsum = 0.0;
  var wx = 0.0;
  for (var j = lane; j < c; j += row_lanes()) {
    let x = in_logits[base + j];
    s += exp(x - m);
    let w = class_weight(j);
    wsum += w;
    wx += w * x;
  }
  s = row_sum(s, lane);
  wsum = row_sum(wsum, lane);
  wx = row_sum(wx, lane);
  let lse = m + log(s);
  let ls = params.label_smoothing;
  let lsc = ls / f32(c);
  let wy = class_weight(y);
  if (want_grad) {
    let a = (1.0 - ls) * wy + lsc * wsum;
    for (var j = lane; j < c; j += row_lanes()) {
      out_grad_logits[base + j] = g * ce_grad(j, y, in_logits[base + j], m, s, a, wy);
    }
  }
  return -(1.0 - ls) * wy * (in_logits[base + y] - lse) - lsc * (wx - wsum * lse);
}
