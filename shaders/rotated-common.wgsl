// rotated-common.wgsl: rotated boxes (cx, cy, w, h, theta) as 2-D Gaussians (ops.md, "Rotated
// boxes"), shared by rotated.wgsl (the losses) and rotated-pairwise.wgsl (ProbIoU's matrix). The
// terms are written through each box's variances P (along its width axis) and Q (along its height
// axis) and projections on the other box's axes, never through the matrices' entries: those lose
// every digit of a determinant for a thin or degenerate box. As src/cpu/rotated.ts.

const F32_MAX_R: f32 = 3.40282346638528859812e38;
// mmrotate's side clamp and floors.
const SIDE_MIN: f32 = 1e-7;
const SIDE_MAX: f32 = 1e7;
const FLOOR: f32 = 1e-7;
const SQRT_FLOOR: f32 = 3.16227766016837933e-4;
// pi/2 in three parts for the reduction of an angle (Cody-Waite): k * PIO2_A and k * PIO2_B are
// exact for |k| < 2^13, that is |theta| up to about 12,800; beyond that the rounding of k * PIO2_C
// stays below float32's own step of theta.
const PIO2_A: f32 = 1.5703125;
const PIO2_B: f32 = 4.837512969970703e-4; // 2029 / 2^22
const PIO2_C: f32 = 7.549790126404332e-8;
const TWO_OVER_PI: f32 = 0.636619772367581343;

// cos and sin of theta. WGSL bounds the error of its cos and sin only to 2^-11 on [-pi, pi]
// (SwiftShader's are that far off: ProbIoU moved by 1e-3), so theta is reduced by the nearest
// multiple k of pi/2 and cos and sin of the remainder r (|r| <= pi/4) are evaluated by Cephes'
// float32 polynomials, good to a rounding or two. k's parity and sign pick the quadrant.
fn cos_sin(theta: f32) -> vec2<f32> {
  let k = round(theta * TWO_OVER_PI);
  // Past |theta| of about 1.3e7 float32 no longer holds theta's place within its period (nor does
  // float64 past 1e16): there r is clamped so that cos and sin stay numbers in [-1, 1].
  let r = clamp(((theta - k * PIO2_A) - k * PIO2_B) - k * PIO2_C, -0.79, 0.79);
  let z = r * r;
  let s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
  let c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  // k mod 4, for negative k too (k is an integer-valued float; |k| < 2^24 wherever theta is finite and
  // its reduction means anything).
  let j = k - 4.0 * floor(k * 0.25);
  // Quadrant j: (c, s), (-s, c), (-c, -s), (s, -c); selects, no branch.
  let odd = j == 1.0 || j == 3.0;
  let cs = select(vec2(c, s), vec2(-s, c), odd);
  return select(cs, -cs, j >= 2.0);
}

// mmrotate's clamp(w, 1e-7, 1e7) and its derivative (passing at the bounds); a NaN side stays NaN.
fn mm_side(w: f32) -> vec2<f32> {
  if (is_nan(w)) {
    return vec2(w, 1.0);
  }
  if (w < SIDE_MIN) {
    return vec2(SIDE_MIN, 0.0);
  }
  if (w > SIDE_MAX) {
    return vec2(SIDE_MAX, 0.0);
  }
  return vec2(w, 1.0);
}

// x, or float32's largest finite value where x is +Inf: an intermediate that passes float32
// (ops.md, "Finite everywhere") becomes that value, and the callers pass no gradient through it.
fn sat(x: f32) -> f32 {
  return select(x, F32_MAX_R, x > F32_MAX_R);
}
// x clamped to +-F32_MAX (a NaN stays NaN).
fn sat_signed(x: f32) -> f32 {
  return select(clamp(x, -F32_MAX_R, F32_MAX_R), x, is_nan(x));
}
fn sat2(v: vec2<f32>) -> vec2<f32> {
  return vec2(sat_signed(v.x), sat_signed(v.y));
}

// The geometry of one pair (ops.md, "Pair terms"): box 1 is pred, box 2 target.
struct Pair {
  d: vec2<f32>,
  cs1: vec2<f32>,
  cs2: vec2<f32>,
  uv1: vec2<f32>, // (du1, dv1)
  uv2: vec2<f32>, // (du2, dv2)
  cd: f32,
  sd: f32,
  cd2: f32,
  sd2: f32,
  wh1: vec2<f32>, // pred's sides as its family reads them (mmrotate: clamped)
  dwh1: vec2<f32>, // d side / d w, d side / d h
  wh2: vec2<f32>,
  pq1: vec2<f32>, // (P1, Q1)
  pq2: vec2<f32>,
  E: vec2<f32>, // (Euu, Evv): Sigma2 along pred's axes
  F: vec2<f32>, // (Fuu, Fvv): Sigma1 along target's axes
  D: f32, // det(Sigma1 + Sigma2)
  // Whether an intermediate of the pair passed float32 and was saturated (sides or offsets far past
  // the 1e6 of ops.md): the terms built on it then pass no gradient.
  big: bool,
}

fn pair_of(p: array<f32, 5>, t: array<f32, 5>, mm: bool) -> Pair {
  var q: Pair;
  q.d = vec2(sat_diff(p[0], t[0]), sat_diff(p[1], t[1]));
  q.cs1 = cos_sin(p[4]);
  q.cs2 = cos_sin(t[4]);
  let c1 = q.cs1.x;
  let s1 = q.cs1.y;
  let c2 = q.cs2.x;
  let s2 = q.cs2.y;
  // Each product is at most |d|, so a sum of two is at worst +-Inf (never Inf - Inf), then saturated.
  q.uv1 = sat2(vec2(q.d.x * c1 + q.d.y * s1, q.d.y * c1 - q.d.x * s1));
  q.uv2 = sat2(vec2(q.d.x * c2 + q.d.y * s2, q.d.y * c2 - q.d.x * s2));
  q.wh1 = vec2(p[2], p[3]);
  q.wh2 = vec2(t[2], t[3]);
  q.dwh1 = vec2(1.0);
  var k = 1.0 / 12.0;
  if (mm) {
    let w1 = mm_side(p[2]);
    let h1 = mm_side(p[3]);
    q.wh1 = vec2(w1.x, h1.x);
    q.dwh1 = vec2(w1.y, h1.y);
    q.wh2 = vec2(mm_side(t[2]).x, mm_side(t[3]).x);
    k = 0.25;
  }
  q.pq1 = vec2(sat(k * q.wh1.x * q.wh1.x), sat(k * q.wh1.y * q.wh1.y));
  q.pq2 = vec2(sat(k * q.wh2.x * q.wh2.x), sat(k * q.wh2.y * q.wh2.y));
  q.cd = c1 * c2 + s1 * s2;
  q.sd = s2 * c1 - c2 * s1;
  // cd^2 + sd^2 = 1: the smaller of the two is squared, the other is 1 minus it. For boxes at nearly
  // the same angle (sd near 0) cd^2 is then 1 to the last bit, and KL and ProbIoU of identical boxes
  // are 0 to the last bit instead of float32's noise in c1 c2 + s1 s2 (about 1e-7, as much as the
  // floor of KL's sqrt).
  let sd2 = q.sd * q.sd;
  let cd2 = q.cd * q.cd;
  q.sd2 = select(1.0 - cd2, sd2, sd2 <= 0.5);
  q.cd2 = select(cd2, 1.0 - sd2, sd2 <= 0.5);
  q.E = vec2(sat(q.pq2.x * q.cd2 + q.pq2.y * q.sd2), sat(q.pq2.x * q.sd2 + q.pq2.y * q.cd2));
  q.F = vec2(sat(q.pq1.x * q.cd2 + q.pq1.y * q.sd2), sat(q.pq1.x * q.sd2 + q.pq1.y * q.cd2));
  q.D = sat(sat(q.pq1.x * q.pq1.y) + sat(q.pq2.x * q.pq2.y) + sat(q.pq1.y * q.E.x) + sat(q.pq1.x * q.E.y));
  let m = max(max(max(q.pq1.x, q.pq1.y), max(q.pq2.x, q.pq2.y)), max(max(abs(q.uv1.x), abs(q.uv1.y)), max(abs(q.uv2.x), abs(q.uv2.y))));
  q.big = max(m, max(max(q.E.x, q.E.y), max(max(q.F.x, q.F.y), q.D))) >= F32_MAX_R;
  return q;
}

// a - b, or +-F32_MAX where that passes float32 (centres of opposite signs near its largest value).
fn sat_diff(a: f32, b: f32) -> f32 {
  let d = a - b;
  return select(d, sgn(d) * F32_MAX_R, is_non_finite(d) && !is_nan(d) && !is_non_finite(a) && !is_non_finite(b));
}

// ProbIoU's Bhattacharyya pieces for ultralytics' sizes: (bd0, t12, z, N) with r = |w1 h1| |w2 h2| / 144.
struct Bhatta {
  bd0: f32,
  t12: f32,
  z: f32,
  n: f32,
  r: f32,
}

fn bhatta(q: Pair, eps: f32) -> Bhatta {
  var b: Bhatta;
  let v1 = sat(abs(q.wh1.x * q.wh1.y));
  let v2 = sat(abs(q.wh2.x * q.wh2.y));
  b.r = sat(v1 * (v2 / 144.0));
  let uu1 = vec2(sat(q.uv1.x * q.uv1.x), sat(q.uv1.y * q.uv1.y));
  let uu2 = vec2(sat(q.uv2.x * q.uv2.x), sat(q.uv2.y * q.uv2.y));
  b.n = sat(sat(q.pq1.y * uu1.x) + sat(q.pq1.x * uu1.y) + sat(q.pq2.y * uu2.x) + sat(q.pq2.x * uu2.y));
  let de = sat(q.D) + eps;
  b.t12 = 0.25 * (b.n / de);
  let den = sat(4.0 * b.r + eps);
  b.z = sat(q.D) / den;
  // log(z + eps) as log1p(z - 1 + eps), with D - 4r written without cancellation:
  //   D - 4r = ((|w1 h1| - |w2 h2|)^2 + (|h1 w2| - |w1 h2|)^2) / 144 + sd^2 (P1 - Q1) (P2 - Q2).
  // For nearly identical boxes z is 1 + O(bd): D - 4r from D's rounding erred by 1e-7 of D, 5% of bd
  // for a thin box 1.5e-4 rad off its target, and WGSL's log errs by up to 2^-21 near 1.
  let a1 = v1 - v2;
  let a2 = sat(abs(q.wh1.y * q.wh2.x)) - sat(abs(q.wh1.x * q.wh2.y));
  let excess = sat_signed(sat(a1 * a1 / 144.0 + a2 * a2 / 144.0) + sat_signed(q.sd2 * sat_signed((q.pq1.x - q.pq1.y) * (q.pq2.x - q.pq2.y))));
  // z - 1 + eps >= -1 + eps in exact arithmetic (excess >= 0); saturated terms may not keep that.
  // Where z is far below 1 (boxes so small that 4r << eps: sides ~1e-3 at eps 1e-9), z - 1 rounds
  // to -1 and log1p(-1 + eps) gave -Inf (ProbIoU 1 for boxes far apart): there log(z + eps) itself,
  // z good to a few ulp, has no cancellation.
  let near_one = log1p(max((excess - eps) / den, -1.0) + eps);
  b.bd0 = b.t12 + 0.5 * select(near_one, log(b.z + eps), b.z < 0.5);
  return b;
}

// 1 - ProbIoU = sqrt(1 - exp(-clamp(bd0, eps, 100)) + eps).
fn hd_of(bd0: f32, eps: f32) -> f32 {
  let bd = select(clamp(bd0, eps, 100.0), bd0, is_nan(bd0));
  // 1 - exp(-bd) as -expm1(-bd): bd is near 0 for near-identical boxes.
  return sqrt(-expm1(-bd) + eps);
}
