// regression.wgsl: the L1 family, d = pred - target (ops.md, "Regression").
// One module for five ops; LOSS picks the op at pipeline compile time.

override LOSS: u32 = 0u; // 0 l1, 1 mse, 2 smooth_l1, 3 huber, 4 balanced_l1

// b = exp(gamma/alpha) - 1 for balanced_l1, computed on the host in float64.
struct Params {
  beta: f32,
  delta: f32,
  alpha: f32,
  gamma: f32,
  b: f32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_pred: array<f32>;
@group(0) @binding(7) var<storage, read> in_target: array<f32>;
@group(0) @binding(8) var<storage, read_write> out_grad_pred: array<f32>;

// (loss, d loss / d d)
fn regression_loss(d: f32) -> vec2<f32> {
  let x = abs(d);
  let s = sgn(d);
  switch LOSS {
    case 0u: {
      return vec2(x, s);
    }
    case 1u: {
      return vec2(d * d, 2.0 * d);
    }
    case 2u: {
      // beta = 0 never takes the quadratic branch: plain l1.
      let beta = params.beta;
      if (x < beta) {
        return vec2(0.5 * d * d / beta, d / beta);
      }
      return vec2(x - 0.5 * beta, s);
    }
    case 3u: {
      let delta = params.delta;
      if (x <= delta) {
        return vec2(0.5 * d * d, d);
      }
      return vec2(delta * (x - 0.5 * delta), delta * s);
    }
    default: {
      let alpha = params.alpha;
      let beta = params.beta;
      let b = params.b;
      if (x < beta) {
        let u = b * x / beta + 1.0;
        let loss = alpha / b * (b * x + 1.0) * log(u) - alpha * x;
        // d/dx = alpha*log(u) + alpha*(b x + 1)/(b x + beta) - alpha
        let dx = alpha * log(u) + alpha * (b * x + 1.0) / (b * x + beta) - alpha;
        return vec2(loss, dx * s);
      }
      return vec2(params.gamma * x + params.gamma / b - alpha * beta, params.gamma * s);
    }
  }
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let r = regression_loss(in_pred[i] - in_target[i]);
  if (want_grad) {
    out_grad_pred[i] = g * r.y;
  }
  return r.x;
}
