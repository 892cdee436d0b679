// regression.wgsl: the L1 family, d = pred - target (ops.md, "Regression").
// One module for five ops; LOSS picks the op at pipeline compile time.

override LOSS: u32 = 0u; // 0 l1, 1 mse, 2 smooth_l1, 3 huber, 4 balanced_l1

// balanced_l1's b = exp(gamma/alpha) - 1 as four finite numbers computed on the host in float64:
// b (at most 1e38), inv_b = 1/b (0 below the smallest normal f32, at most 1e30), log_b = log(b)
// and gamma_over_b = gamma/b. b overflows f32 past gamma/alpha = 88.7; the others do not.
struct Params {
  beta: f32,
  delta: f32,
  alpha: f32,
  gamma: f32,
  b: f32,
  inv_b: f32,
  log_b: f32,
  gamma_over_b: f32,
}

@group(0) @binding(5) var<uniform> params: Params;

// (loss, d loss / d d); NaN for a NaN d (a NaN pred or target, or Inf - Inf): the branches below
// compare d, and balanced_l1's max() could give a finite number for it.
fn regression_loss(d: f32) -> vec2<f32> {
  return poison2(regression_terms(d), is_nan(d));
}

fn regression_terms(d: f32) -> vec2<f32> {
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
      return balanced_l1(x, s);
    }
  }
}

// balanced_l1 (ops.md) with q = x/beta, z = b q: for x < beta the loss is alpha/b * f(z),
// f(z) = (beta z + 1) log(1 + z) - beta z, with derivative alpha (log(1 + z) + (1 - beta)/(beta (1 + z))).
fn balanced_l1(x: f32, s: f32) -> vec2<f32> {
  let alpha = params.alpha;
  let beta = params.beta;
  if (x >= beta) {
    return vec2(params.gamma * x + params.gamma_over_b - alpha * beta, params.gamma * s);
  }
  let q = x / beta;
  if (q < 0.5 * params.inv_b) {
    // z < 0.5: loss = alpha q (g(z)/z + (beta - 1)(log(1 + z) - 1)), g(z) = (1 + z) log(1 + z) - z.
    // With w = z/(2 + z), log(1 + z) = 2 atanh(w) = 2w (1 + t) and g(z)/z = w + (1 + w) t, where
    // t = w^2/3 + w^4/5 + ... has only positive terms (w < 0.2: six terms reach f32 precision).
    let z = q * params.b;
    let w = z / (2.0 + z);
    let w2 = w * w;
    let t = w2 * (1.0 / 3.0 + w2 * (0.2 + w2 * (1.0 / 7.0 + w2 * (1.0 / 9.0 + w2 * (1.0 / 11.0 + w2 / 13.0)))));
    let l1 = 2.0 * w * (1.0 + t);
    let h = w + (1.0 + w) * t + (beta - 1.0) * (l1 - 1.0);
    return vec2(alpha * q * h, alpha * (l1 + (1.0 - beta) / (beta * (1.0 + z))) * s);
  }
  var l1: f32;
  var inv: f32; // 1 / (1 + z)
  if (params.inv_b >= 1.0e-30) {
    let z = q * params.b;
    l1 = log(1.0 + z);
    inv = 1.0 / (1.0 + z);
  } else {
    // b q may overflow: 1 + z = b (q + 1/b).
    let qr = max(q + params.inv_b, 1.17549435e-38);
    l1 = params.log_b + log(qr);
    inv = params.inv_b / qr;
  }
  return vec2(alpha * ((x + params.inv_b) * l1 - x), alpha * (l1 + (1.0 - beta) / beta * inv) * s);
}
