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
@group(0) @binding(6) var<storage, read> in_logits: array<f32>;
@group(0) @binding(7) var<storage, read> in_targets: array<f32>;
@group(0) @binding(8) var<storage, read_write> out_grad_logits: array<f32>;

// (loss, d loss / d x)
fn sigmoid_focal(x: f32, t: f32) -> vec2<f32> {
  let gamma = params.gamma;
  let alpha = params.alpha;
  let lg = logistic(x);
  let s = lg.x;
  let sn = lg.y;
  let ce = lg.z - x * t;
  let q = s * (1.0 - t) + sn * t;
  let dq = (1.0 - 2.0 * t) * s * sn;
  let qg = pow0(q, gamma);
  let dqg = select(gamma * pow0(q, gamma - 1.0) * dq, 0.0, gamma == 0.0 || q <= 0.0);
  // alpha < 0 turns alpha weighting off
  let at = select(1.0, alpha * t + (1.0 - alpha) * (1.0 - t), alpha >= 0.0);
  return vec2(at * ce * qg, at * ((s - t) * qg + ce * dqg));
}

// mmdetection does not detach the focal weight, so it is differentiated too.
fn varifocal(x: f32, t: f32) -> vec2<f32> {
  let lg = logistic(x);
  let s = lg.x;
  let sn = lg.y;
  let bce = lg.z - x * t;
  if (t > 0.0) {
    let w = select(1.0, t, IOU_WEIGHTED);
    return vec2(bce * w, (s - t) * w);
  }
  let e = abs(s - t);
  let w = params.alpha * pow0(e, params.gamma);
  let dw = select(params.alpha * params.gamma * pow0(e, params.gamma - 1.0) * sgn(s - t) * s * sn, 0.0, e == 0.0);
  return vec2(bce * w, (s - t) * w + bce * dw);
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let x = in_logits[i];
  let t = in_targets[i];
  var r: vec2<f32>;
  if (OP == 0u) {
    r = sigmoid_focal(x, t);
  } else {
    r = varifocal(x, t);
  }
  if (want_grad) {
    out_grad_logits[i] = g * r.y;
  }
  return r.x;
}
