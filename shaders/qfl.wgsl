// qfl.wgsl: quality_focal (mmdetection QFL), a row of c logits per output element (ops.md).
// The label's column: bce(x, score) * |score - sigmoid(x)|^beta; every other column:
// softplus(x) * sigmoid(x)^beta. Labels outside 0..c-1 are background (no label column).

struct Params {
  c: u32,
  beta: f32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_logits: array<f32>;
@group(0) @binding(7) var<storage, read> in_labels: array<i32>;
@group(0) @binding(8) var<storage, read> in_scores: array<f32>;
@group(0) @binding(9) var<storage, read_write> out_grad_logits: array<f32>;

// (loss, d loss / d x) of one entry; positive: this is the row's label column.
fn qfl_entry(x: f32, positive: bool, score: f32) -> vec2<f32> {
  let beta = params.beta;
  let lg = logistic(x);
  let s = lg.x;
  let sn = lg.y;
  if (positive) {
    let e = abs(score - s);
    // bce(x, score) = (1 - score) softplus(x) + score softplus(-x), slope s (1 - score) - score (1 - s)
    let bce = (1.0 - score) * lg.z + score * lg.w;
    let eb = pow0(e, beta);
    // beta e^(beta - 1) de/dx as beta e^beta (de/dx / e): no overflow where e underflows
    let tiny = e < 1.17549435e-38;
    let de = select(beta * eb * (sgn(s - score) * s * sn / select(e, 1.0, tiny)), 0.0, tiny || beta == 0.0);
    return vec2(bce * eb, (s * (1.0 - score) - score * sn) * eb + bce * de);
  }
  let sp = lg.z;
  let sb = pow0(s, beta);
  // d s^beta / dx = beta s^beta (1 - s)
  return vec2(sp * sb, s * sb + sp * beta * sb * sn);
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  let y = in_labels[i];
  let score = in_scores[i];
  var sum = 0.0;
  for (var j = 0u; j < c; j++) {
    let r = qfl_entry(in_logits[i * c + j], i32(j) == y, score);
    sum += r.x;
    if (want_grad) {
      out_grad_logits[i * c + j] = g * r.y;
    }
  }
  return sum;
}

fn row_loss_wg(row: u32, lane: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  let y = in_labels[row];
  let score = in_scores[row];
  var sum = 0.0;
  for (var j = lane; j < c; j += row_lanes()) {
    let r = qfl_entry(in_logits[row * c + j], i32(j) == y, score);
    sum += r.x;
    if (want_grad) {
      out_grad_logits[row * c + j] = g * r.y;
    }
  }
  return row_sum(sum, lane);
}
