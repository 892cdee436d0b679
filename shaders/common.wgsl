// common.wgsl: numerics shared by every family (design.md, "Numerics in WGSL").
// WGSL may assume that NaN and infinity never occur, so every denominator is
// guarded and choices are made with select(), never by multiplying with a mask.

// NaN tests and values by bit pattern: a compiler may assume that NaN never occurs and fold a
// comparison such as x != x to false, but it cannot fold bit operations (ops.md, Conventions: a NaN
// input makes the loss it reaches NaN).
fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}
// Whether x is NaN or +-Inf.
fn is_non_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}
// A quiet NaN. Its bits come from a private variable: `bitcast<f32>(0x7fc00000u)` is a constant
// expression, and WGSL refuses a constant that is NaN ("value nan cannot be represented").
var<private> NAN_BITS: u32 = 0x7fc00000u;
fn nan_f32() -> f32 {
  return bitcast<f32>(NAN_BITS);
}

// Loss and slope (or any pair) made NaN where `bad`: how an element that a NaN input reaches, or
// whose target or label on the device is no valid value (the host could not check it), is
// poisoned rather than given a finite wrong number (ops.md, Conventions).
fn poison2(v: vec2<f32>, bad: bool) -> vec2<f32> {
  return select(v, vec2(nan_f32()), bad);
}

// Whether t lies outside [0, 1], NaN included (tested first: comparisons with NaN are unreliable).
fn outside_unit(t: f32) -> bool {
  return is_nan(t) || t < 0.0 || t > 1.0;
}

// exp(x - m) for a softmax over a row whose maximum is m, NaN where x is NaN: max() may drop a
// NaN from m, so the row's sum carries it instead (see softmax_row_bad).
fn exp_shifted(x: f32, m: f32) -> f32 {
  return select(exp(x - m), nan_f32(), is_nan(x));
}

// Whether a row's softmax is undefined, from its maximum m and its sum s of exp_shifted terms: a
// NaN entry (s is NaN), a +Inf entry (m is +Inf: Inf - Inf) or no entry above -Inf (m is -Inf, or
// s is 0 where the row kernels start m at -3e38). The float64 reference gives NaN for each, as
// PyTorch's log_softmax does.
fn softmax_row_bad(m: f32, s: f32) -> bool {
  return is_nan(s) || is_non_finite(m) || s < 0.5;
}

// Sign with sign(0) = 0, the gradient PyTorch gives abs() at 0 (ops.md, Conventions).
fn sgn(x: f32) -> f32 {
  return select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0);
}

// a / b, with 0 where b is 0.
fn safe_div(a: f32, b: f32) -> f32 {
  return select(a / b, 0.0, b == 0.0);
}

// log(1 + y) for y > -1, accurate near 0 (WGSL has no log1p): below |y| = 0.25 as
// 2 atanh(w), w = y / (2 + y), by its series (|w| < 0.15: six terms reach f32 precision).
fn log1p(y: f32) -> f32 {
  if (abs(y) >= 0.25) {
    return log(1.0 + y);
  }
  let w = y / (2.0 + y);
  let w2 = w * w;
  return 2.0 * w * (1.0 + w2 * (1.0 / 3.0 + w2 * (0.2 + w2 * (1.0 / 7.0 + w2 * (1.0 / 9.0 + w2 / 11.0)))));
}

// exp(x) - 1, accurate near 0 (WGSL has no expm1): below |x| = 0.25 by its Taylor series.
fn expm1(x: f32) -> f32 {
  if (abs(x) >= 0.25) {
    return exp(x) - 1.0;
  }
  return x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x * (1.0 / 720.0 + x / 5040.0))))));
}

// log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|)).
fn softplus(x: f32) -> f32 {
  return max(x, 0.0) + log1p(exp(-abs(x)));
}

// 1 / (1 + exp(-x)) without overflow for either sign.
fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0), nan_f32(), is_nan(x));
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

// sigmoid(x), sigmoid(-x), softplus(x) and softplus(-x) from one exp(-|x|) and one log:
// (s, 1 - s, log(1 + exp(x)), log(1 + exp(-x))), each to f32's relative precision (no
// softplus(x) - x, which is 0 where the exact value is exp(-x)). The losses on logits need
// several of them; one exp and one log is a fraction of the work. All four are NaN for a NaN x
// (max() and the sign test could drop it).
fn logistic(x: f32) -> vec4<f32> {
  let e = exp(-abs(x));
  let r = 1.0 / (1.0 + e);
  let big = r;      // sigmoid(|x|)
  let small = e * r; // sigmoid(-|x|)
  let pos = x >= 0.0;
  let l = log1p(e);
  let v = vec4(select(small, big, pos), select(big, small, pos), max(x, 0.0) + l, max(-x, 0.0) + l);
  return select(v, vec4(nan_f32()), is_nan(x));
}
