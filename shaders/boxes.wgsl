// boxes.wgsl: box formats and the geometry shared by iou.wgsl and pairwise.wgsl (ops.md,
// "Conventions": a loss on boxes in another format equals the loss on the boxes converted to
// xyxy, and its gradient is with respect to the input as given).

override FORMAT: u32 = 0u; // 0 xyxy, 1 cxcywh, 2 xywh

const FOUR_OVER_PI2: f32 = 0.40528473456935109; // 4 / pi^2, CIoU's v
const F32_MAX: f32 = 0x1.fffffep+127f; // float32's largest finite value, src/cpu/iou.ts F32_MAX

// Non-finite input (ops.md, Conventions): a NaN makes the element NaN, and an infinite coordinate
// gives the float64 reference's value. Tests by bit pattern, as common.wgsl's is_nan: a compiler may
// assume that NaN and Inf never occur and fold a comparison.
fn box_nan2(v: vec2<f32>) -> vec2<bool> {
  return (bitcast<vec2<u32>>(v) & vec2(0x7fffffffu)) > vec2(0x7f800000u);
}
fn box_any_non_finite(v: vec4<f32>) -> bool {
  return any((bitcast<vec4<u32>>(v) & vec4(0x7f800000u)) == vec4(0x7f800000u));
}
fn box_is_inf(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
}

// CIoU's v = 4/pi^2 (A(wg, hg) - A(w, h))^2, 0 where a size is not finite. There a coordinate is, so
// rho2 / c2 is Inf or NaN and the loss Inf or NaN whatever finite v is (A stays in [-pi/2, pi/2]);
// WGSL leaves atan2 of infinities undefined, and a NaN v would turn an infinite loss into NaN.
fn ciou_v(wh: vec2<f32>, whg: vec2<f32>) -> f32 {
  let gap = aspect_gap(wh, whg);
  return select(FOUR_OVER_PI2 * gap * gap, 0.0, box_any_non_finite(vec4(wh, whg)));
}


// max, min and clamp that keep a NaN, as PyTorch's maximum, minimum and clamp (and the reference's
// Math.max) do; WGSL's may return the other operand. Used where a NaN that a non-finite input makes
// would otherwise not reach the loss.
fn nan_max(a: f32, b: f32) -> f32 {
  return select(max(a, b), nan_f32(), is_nan(a) || is_nan(b));
}
fn nan_max2(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  return select(max(a, b), vec2(nan_f32()), box_nan2(a) | box_nan2(b));
}
fn nan_min2(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  return select(min(a, b), vec2(nan_f32()), box_nan2(a) | box_nan2(b));
}
fn nan_clamp(x: f32, lo: f32, hi: f32) -> f32 {
  return select(clamp(x, lo, hi), x, is_nan(x));
}

// exp and log that keep a NaN (and log an infinity), which WGSL leaves undefined: SwiftShader's
// exp(NaN) is Inf and its log(NaN) 89.1 (it reads the exponent bits). Only a non-finite input makes
// their arguments NaN (Inf / Inf), and the reference's value is then NaN.
fn ieee_exp(x: f32) -> f32 {
  return select(exp(x), x, is_nan(x));
}
fn ieee_exp2v(x: vec2<f32>) -> vec2<f32> {
  return select(exp(x), x, box_nan2(x));
}
fn ieee_log(x: f32) -> f32 {
  return select(select(log(x), x, box_is_inf(x) && x > 0.0), x, is_nan(x));
}

// Both boxes of a pair in xyxy. Every IoU term is a difference of corners, so moving the pair
// changes no value and no gradient, only roundings. Converting cxcywh or xywh to corners rounds
// each corner by about a float32 step of its reference point (at x = 1e5 that is 0.0078, more than
// a box 0.008 wide), and after moving the pair so that the second box's reference point is the
// origin it rounds by a step of the offset between the two instead. So on each axis where the two
// points are closer to each other than either is to 0 (their offset is then exact, and every
// coordinate shrinks), the pair is moved; elsewhere it stays, and xyxy corners never move.
struct BoxPair {
  a: vec4<f32>,
  b: vec4<f32>,
}

fn pair_origin(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  return select(vec2(0.0), b, abs(a - b) < min(abs(a), abs(b)));
}

fn pair_to_xyxy(a: vec4<f32>, b: vec4<f32>) -> BoxPair {
  switch FORMAT {
    case 1u: {
      let o = pair_origin(a.xy, b.xy);
      let ca = a.xy - o;
      let cb = b.xy - o;
      let ra = 0.5 * a.zw;
      let rb = 0.5 * b.zw;
      return BoxPair(vec4(ca - ra, ca + ra), vec4(cb - rb, cb + rb));
    }
    case 2u: {
      let o = pair_origin(a.xy, b.xy);
      let pa = a.xy - o;
      let pb = b.xy - o;
      return BoxPair(vec4(pa, pa + a.zw), vec4(pb, pb + b.zw));
    }
    default: {
      return BoxPair(a, b);
    }
  }
}

// Chain rule from xyxy back to the input's format.
fn grad_to_format(g: vec4<f32>) -> vec4<f32> {
  switch FORMAT {
    case 1u: {
      return vec4(g.xy + g.zw, 0.5 * (g.zw - g.xy));
    }
    case 2u: {
      return vec4(g.xy + g.zw, g.zw);
    }
    default: {
      return g;
    }
  }
}

const HALF_PI: f32 = 1.5707963267948966;

// atan2(y, x) that never reads the sign of a zero: WGSL leaves it undefined, and SwiftShader's
// atan2(-0, 1) is pi. 0 where y = 0 (every caller's angle is 0 there), pi/2 * sgn(y) where x = 0.
fn zero_safe_atan2(y: f32, x: f32) -> f32 {
  return select(select(atan2(y, x), HALF_PI * sgn(y), x == 0.0), 0.0, y == 0.0);
}

// ops.md's A(w, h) reads (w, h) with h >= 0: (-w, -h) where h < 0.
fn fold_aspect(wh: vec2<f32>) -> vec2<f32> {
  return select(wh, -wh, wh.y < 0.0);
}

// A of a folded size: 0 where w = 0, whatever h (ops.md's three cases agree there).
fn aspect_angle(f: vec2<f32>) -> f32 {
  return zero_safe_atan2(f.x, f.y);
}

// A(wg, hg) - A(w, h). Where both heights are positive the difference of angles is one
// atan2 of (sin, cos) of that difference, exact for nearly equal aspects (design.md); its
// sine is 0 only for equal aspects, where the cosine is > 0 and the gap is 0.
fn aspect_gap(wh: vec2<f32>, whg: vec2<f32>) -> f32 {
  let a = fold_aspect(wh);
  let b = fold_aspect(whg);
  if (a.y > 0.0 && b.y > 0.0) {
    return zero_safe_atan2(b.x * a.y - a.x * b.y, b.x * a.x + b.y * a.y);
  }
  return aspect_angle(b) - aspect_angle(a);
}

// Width and height, read from the input where it holds them (exact, no f32 round trip).
fn box_size(b: vec4<f32>) -> vec2<f32> {
  return select(b.zw - b.xy, b.zw, FORMAT != 0u);
}

// Twice the centre offset, pred minus target, from the inputs as given, in whichever order rounds
// less: differences of corners first, (x1 - x1g) + (x2 - x2g), or sums first, (x1 + x2) - (x1g +
// x2g). A sum rounds by a step of its size, so the order whose partial results are smaller wins:
// differences for small boxes far from the origin, sums for an inverted box (x2 < x1) around 0,
// whose corners would otherwise swamp a small offset. cxcywh centres need one subtraction.
fn gap_of(a: vec2<f32>, b: vec2<f32>, c: vec2<f32>, d: vec2<f32>) -> vec2<f32> {
  return select(a + b, c - d, abs(c) + abs(d) < abs(a) + abs(b));
}
fn centre_gap(pb: vec4<f32>, tb: vec4<f32>) -> vec2<f32> {
  switch FORMAT {
    case 1u: {
      return 2.0 * (pb.xy - tb.xy);
    }
    case 2u: {
      return gap_of(2.0 * (pb.xy - tb.xy), pb.zw - tb.zw, 2.0 * pb.xy + pb.zw, 2.0 * tb.xy + tb.zw);
    }
    default: {
      return gap_of(pb.xy - tb.xy, pb.zw - tb.zw, pb.xy + pb.zw, tb.xy + tb.zw);
    }
  }
}
