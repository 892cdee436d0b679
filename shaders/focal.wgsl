// focal.wgsl: sigmoid_focal (torchvision) and varifocal (mmdetection), one logit per output
// element (ops.md, "Classification"). Stable forms throughout: 1 - p_t is computed as
// sigmoid(x)(1 - t) + sigmoid(-x) t, exact where p_t rounds to 1.

override OP: u32 = 0u; // 0 sigmoid_focal, 1 varifocal
override IOU_WEIGHTED: bool = true; // varifocal

struct Params {
  alpha: f32,
  gamma: f32,
}

@group(0) @binding(5) var<uniform> params: Params;
// bce(x, t) = (1 - t) softplus(x) + t softplus(-x) and its slope s (1 - t) - t (1 - s), as sums
// of terms of one sign where t is 0 or 1: exact where s rounds to 1.
fn bce_pair(lg: vec4<f32>, t: f32) -> vec2<f32> {
  return vec2((1.0 - t) * lg.z + t * lg.w, lg.x * (1.0 - t) - t * lg.y);
}

// gamma e^(gamma - 1) de/dx written as gamma e^gamma (de/dx / e): e^(gamma - 1) overflows f32
// where e underflows (logits past ±88), and 0 * inf is no number. 0 where e is 0 or subnormal
// (the product is below f32's range there).
fn pow_slope(e: f32, gamma: f32, de: f32) -> f32 {
  let tiny = e < 1.17549435e-38;
  return select(gamma * pow0(e, gamma) * (de / select(e, 1.0, tiny)), 0.0, tiny || gamma == 0.0);
}

// (loss, d loss / d x)
fn sigmoid_focal(x: f32, t: f32) -> vec2<f32> {
  let gamma = params.gamma;
  let alpha = params.alpha;
  let lg = logistic(x);
  let s = lg.x;
  let sn = lg.y;
  let ce = bce_pair(lg, t);
  let q = s * (1.0 - t) + sn * t;
  let dq = (1.0 - 2.0 * t) * s * sn;
  let qg = pow0(q, gamma);
  let dqg = pow_slope(q, gamma, dq);
  // alpha < 0 turns alpha weighting off
  let at = select(1.0, alpha * t + (1.0 - alpha) * (1.0 - t), alpha >= 0.0);
  return vec2(at * ce.x * qg, at * (ce.y * qg + ce.x * dqg));
}

// mmdetection does not detach the focal weight, so it is differentiated too.
fn varifocal(x: f32, t: f32) -> vec2<f32> {
  let lg = logistic(x);
  let s = lg.x;
  let sn = lg.y;
  let bce = bce_pair(lg, t);
  if (t > 0.0) {
    let w = select(1.0, t, IOU_WEIGHTED);
    return vec2(bce.x * w, bce.y * w);
  }
  let e = abs(s - t);
  let w = params.alpha * pow0(e, params.gamma);
  let dw = params.alpha * pow_slope(e, params.gamma, sgn(s - t) * s * sn);
  return vec2(bce.x * w, bce.y * w + bce.x * dw);
}

// (loss, d loss / d x) of the op this module was compiled for. NaN for a NaN logit, and for a
// target outside [0, 1] (NaN included): the host refuses such a target, but one on the device it
// cannot read, and the focal weights' pow0() and comparisons would give finite numbers for it.
fn focal_entry(x: f32, t: f32) -> vec2<f32> {
  var r: vec2<f32>;
  if (OP == 0u) {
    r = sigmoid_focal(x, t);
  } else {
    r = varifocal(x, t);
  }
  return poison2(r, is_nan(x) || outside_unit(t));
}
