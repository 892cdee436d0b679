// ce.wgsl: cross_entropy (F.cross_entropy) with class weights, ignore_index and label smoothing
// (ops.md): loss = (1-ls)(-w_y q_y) - (ls/c) sum_j w_j q_j, q = log_softmax(x); 0 for an ignored
// row, whose gradient is written as 0 too. 'mean' divides by the summed weights of the rows not
// ignored; the runtime folds that denominator into the gradient factor g.
//
// Without label smoothing only w_y enters (PyTorch calls nll_loss then): another class's weight,
// NaN or infinite, reaches no loss. With it, sum_j w_j q_j is summed term by term once lse is
// known (in the gradient's loop, or a loop of its own without gradients), so that an infinite
// weight gives the reference's infinity rather than Inf - Inf. A row whose softmax is undefined
// (a NaN or +Inf logit, every logit -Inf) is NaN, and so is a row whose label on the device is no
// class and not ignore_index (the host refuses such labels; it cannot read them on the device).

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

// A label that is neither ignore_index nor a class: only possible on the device.
fn ce_invalid(y: i32) -> bool {
  return y != params.ignore_index && (y < 0 || y >= i32(params.c));
}

// d loss / d x_j = p_j a - (ls/c) w_j - [j == y] (1-ls) w_y, a = (1-ls) w_y + (ls/c) W; without
// smoothing a = w_y and no other weight is read.
fn ce_grad(j: u32, y: u32, x: f32, m: f32, s: f32, a: f32, wy: f32) -> f32 {
  let ls = params.label_smoothing;
  let spread = select(0.0, ls / f32(params.c) * class_weight(j), ls > 0.0);
  return exp(x - m) / s * a - spread - select(0.0, (1.0 - ls) * wy, j == y);
}

// Row i's share of the 'mean' denominator (denominator.wgsl), its weight w applied: w w[y_i], 0
// for an ignored row (whose weight does not enter), NaN for a label that is no class.
fn element_denominator(i: u32, w: f32) -> f32 {
  let y = in_labels[i];
  let share = w * class_weight(min(u32(max(y, 0)), params.c - 1u));
  return select(select(share, nan_f32(), ce_invalid(y)), 0.0, y == params.ignore_index);
}

// The loss from the row's terms; sm = sum_j w_j q_j (unused without smoothing).
fn ce_loss(xy: f32, lse: f32, wy: f32, sm: f32) -> f32 {
  let ls = params.label_smoothing;
  let main = -(1.0 - ls) * wy * (xy - lse);
  return select(main, main - ls / f32(params.c) * sm, ls > 0.0);
}

// A row that is ignored (0) or whose label is no class (NaN): its loss, its gradient written.
fn ce_skip_row(base: u32, first: u32, step: u32, invalid: bool, want_grad: bool) -> f32 {
  let v = select(0.0, nan_f32(), invalid);
  if (want_grad) {
    for (var j = first; j < params.c; j += step) {
      out_grad_logits[base + j] = v;
    }
  }
  return v;
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  let base = i * c;
  let yl = in_labels[i];
  let invalid = ce_invalid(yl);
  if (yl == params.ignore_index || invalid) {
    return ce_skip_row(base, 0u, 1u, invalid, want_grad);
  }
  let y = u32(yl);
  var m = in_logits[base];
  for (var j = 1u; j < c; j++) {
    m = max(m, in_logits[base + j]);
  }
  var s = 0.0;
  var wsum = 0.0;
  for (var j = 0u; j < c; j++) {
    s += exp_shifted(in_logits[base + j], m);
    wsum += class_weight(j);
  }
  let lse = m + log(s);
  let ls = params.label_smoothing;
  let smoothing = ls > 0.0;
  let wy = class_weight(y);
  var sm = 0.0; // sum_j w_j q_j
  if (want_grad) {
    let a = select(wy, (1.0 - ls) * wy + ls / f32(c) * wsum, smoothing);
    for (var j = 0u; j < c; j++) {
      let x = in_logits[base + j];
      out_grad_logits[base + j] = g * ce_grad(j, y, x, m, s, a, wy);
      sm += class_weight(j) * (x - lse);
    }
  } else if (smoothing) {
    for (var j = 0u; j < c; j++) {
      sm += class_weight(j) * (in_logits[base + j] - lse);
    }
  }
  return select(ce_loss(in_logits[base + y], lse, wy, sm), nan_f32(), softmax_row_bad(m, s));
}

fn row_loss_wg(row: u32, lane: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  let base = row * c;
  let yl = in_labels[row];
  let invalid = ce_invalid(yl);
  if (yl == params.ignore_index || invalid) {
    return ce_skip_row(base, lane, row_lanes(), invalid, want_grad);
  }
  let y = u32(yl);
  var m = -3.0e38;
  for (var j = lane; j < c; j += row_lanes()) {
    m = max(m, in_logits[base + j]);
  }
  m = row_max(m, lane);
  var s = 0.0;
  var wsum = 0.0;
  for (var j = lane; j < c; j += row_lanes()) {
    s += exp_shifted(in_logits[base + j], m);
    wsum += class_weight(j);
  }
  s = row_sum(s, lane);
  wsum = row_sum(wsum, lane);
  let lse = m + log(s);
  let ls = params.label_smoothing;
  let smoothing = ls > 0.0;
  let wy = class_weight(y);
  var sm = 0.0;
  if (want_grad) {
    let a = select(wy, (1.0 - ls) * wy + ls / f32(c) * wsum, smoothing);
    for (var j = lane; j < c; j += row_lanes()) {
      let x = in_logits[base + j];
      out_grad_logits[base + j] = g * ce_grad(j, y, x, m, s, a, wy);
      sm += class_weight(j) * (x - lse);
    }
  } else if (smoothing) {
    for (var j = lane; j < c; j += row_lanes()) {
      sm += class_weight(j) * (in_logits[base + j] - lse);
    }
  }
  if (smoothing) {
    sm = row_sum(sm, lane);
  }
  return select(ce_loss(in_logits[base + y], lse, wy, sm), nan_f32(), softmax_row_bad(m, s));
}
