// nll.wgsl: nll (F.nll_loss) with class weights and ignore_index (ops.md, "More classification
// and ranking losses"): loss = -w[y] logProbs[i, y], 0 for an ignored row, whose gradient is
// written as 0 too. The gradient of row i is -g w[y] at column y and 0 elsewhere. 'mean' divides
// by the summed weights of the rows not ignored, as cross_entropy does (denominator.wgsl).

struct Params {
  c: u32,
  ignore_index: i32,
  has_class_weight: u32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_log_probs: array<f32>;
@group(0) @binding(7) var<storage, read> in_labels: array<i32>;
@group(0) @binding(8) var<storage, read> in_class_weight: array<f32>;
@group(0) @binding(9) var<storage, read_write> out_grad_log_probs: array<f32>;

fn nll_class_weight(j: u32) -> f32 {
  return select(1.0, in_class_weight[j], params.has_class_weight != 0u);
}

// A label that is neither ignore_index nor a class: only possible on the device (the host
// refuses it, and cannot read labels there). Its row is NaN, loss and gradient, never a finite
// wrong number (ops.md, Conventions).
fn nll_invalid(y: i32) -> bool {
  return y != params.ignore_index && (y < 0 || y >= i32(params.c));
}

// Row i's share of the 'mean' denominator (denominator.wgsl), its weight w applied: w w[y_i], 0
// for an ignored row (whose weight does not enter), NaN for a label that is no class.
fn element_denominator(i: u32, w: f32) -> f32 {
  let y = in_labels[i];
  let share = w * nll_class_weight(min(u32(max(y, 0)), params.c - 1u));
  return select(select(share, nan_f32(), nll_invalid(y)), 0.0, y == params.ignore_index);
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  let base = i * c;
  let yl = in_labels[i];
  let invalid = nll_invalid(yl);
  let skip = yl == params.ignore_index || invalid;
  let y = select(u32(max(yl, 0)), c, skip);
  // -w[y]; 0 for an ignored row, NaN for an invalid one (its gradient is NaN too)
  let nw = select(-nll_class_weight(min(y, c - 1u)), select(0.0, nan_f32(), invalid), skip);
  if (want_grad) {
    for (var j = 0u; j < c; j++) {
      out_grad_log_probs[base + j] = select(select(0.0, g * nw, j == y), nw, invalid);
    }
  }
  if (skip) {
    return nw;
  }
  return nw * in_log_probs[base + y];
}

fn row_loss_wg(row: u32, lane: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  let base = row * c;
  let yl = in_labels[row];
  let invalid = nll_invalid(yl);
  let skip = yl == params.ignore_index || invalid;
  let y = select(u32(max(yl, 0)), c, skip);
  let nw = select(-nll_class_weight(min(y, c - 1u)), select(0.0, nan_f32(), invalid), skip);
  if (want_grad) {
    for (var j = lane; j < c; j += row_lanes()) {
      out_grad_log_probs[base + j] = select(select(0.0, g * nw, j == y), nw, invalid);
    }
  }
  if (skip) {
    return nw;
  }
  return nw * in_log_probs[base + y];
}
