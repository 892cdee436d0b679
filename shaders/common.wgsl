// common.wgsl: numerics shared by every family (design.md, "Numerics in WGSL").
// WGSL may assume that NaN and infinity never occur, so every denominator is
// guarded and choices are made with select(), never by multiplying with a mask.

// Sign with sign(0) = 0, the gradient PyTorch gives abs() at 0 (ops.md, Conventions).
fn sgn(x: f32) -> f32 {
  return select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0);
}

// a / b, with 0 where b is 0.
fn safe_div(a: f32, b: f32) -> f32 {
  return select(a / b, 0.0, b == 0.0);
}

// log(1 + exp(x)) without overflow: max(x, 0) + log(1 + exp(-|x|)).
fn softplus(x: f32) -> f32 {
  return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}

// 1 / (1 + exp(-x)) without overflow for either sign.
fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

// log(sigmoid(x)) = -softplus(-x).
fn log_sigmoid(x: f32) -> f32 {
  return -softplus(-x);
}

// x^y for x >= 0 with 0^y = 0 (y > 0) and x^0 = 1; WGSL's pow is undefined for x <= 0.
fn pow0(x: f32, y: f32) -> f32 {
  if (y == 0.0) {
    return 1.0;
  }
  if (y == 2.0) {
    return x * x;
  }
  return select(exp2(y * log2(x)), 0.0, x <= 0.0);
}

// sigmoid(x), sigmoid(-x) and softplus(x) from one exp(-|x|): (s, 1 - s, log(1 + exp(x))).
// The losses on logits need all three; one exp and one log is a third of the work.
fn logistic(x: f32) -> vec3<f32> {
  let e = exp(-abs(x));
  let r = 1.0 / (1.0 + e);
  let big = r;      // sigmoid(|x|)
  let small = e * r; // sigmoid(-|x|)
  let pos = x >= 0.0;
  return vec3(select(small, big, pos), select(big, small, pos), max(x, 0.0) + log(1.0 + e));
}
