// iou.wgsl: iou_loss (ops.md, "Box losses"), one pred/target pair per output element.
// The gradient is written by hand in reverse order with the conventions of ops.md:
// ties of min/max split 0.5/0.5, abs'(0) = 0, an empty or touching intersection
// contributes none, CIoU's alpha is held constant.

override VARIANT: u32 = 0u; // 0 iou, 1 giou, 2 diou, 3 ciou, 4 eiou, 5 siou, 6 mpdiou, 7 shape, 8 wiou
override MODE: u32 = 0u; // variant iou only: 0 linear, 1 square, 2 log
override CIOU_MMDET: u32 = 0u; // ciouAlpha 'mmdet'
override POWER: u32 = 0u; // Alpha-IoU, power != 1
override INNER: u32 = 0u; // Inner-IoU, innerRatio != 1
override WIOU_VERSION: u32 = 3u;

struct Params {
  eps: f32,
  power: f32,
  inner_ratio: f32,
  focaler_lo: f32,
  focaler_hi: f32,
  mpd_norm: f32, // 1 / (W^2 + H^2)
  scale: f32,
  iou_mean: f32,
  wiou_log2_alpha: f32, // log2(wiouAlpha) in float64: alpha rounded to float32 first erred by 0.2% at alpha 1.0001, delta 1e5
  wiou_delta: f32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_pred: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> in_target: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> out_grad_pred: array<vec4<f32>>;

const HALF_SQRT2: f32 = 0.70710678118654752;
const LN2: f32 = 0.69314718055994531;
const WIOU_EXP_MAX: f32 = 2.0; // src/cpu/iou.ts WIOU_EXP_MAX

struct LossGrad {
  loss: f32,
  grad: vec4<f32>, // d loss / d (x1, y1, x2, y2) of pred
}

fn safe_div2(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  return select(a / b, vec2(0.0), b == vec2(0.0));
}

// d max(a, b) / d a and d min(a, b) / d a, a tie giving 0.5 (PyTorch's maximum/minimum).
fn max_part(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  return select(select(vec2(0.0), vec2(0.5), a == b), vec2(1.0), a > b);
}
fn min_part(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  return select(select(vec2(0.0), vec2(0.5), a == b), vec2(1.0), a < b);
}

// x^a and d/dx x^a for x >= 0 (Alpha-IoU, POWER set; a > 1): 0 and 0 at x = 0. Each base is
// raised as given (ops.md, `power`): an inverted box's penalty can pass 1 (up to about 1/eps) and
// keeps its gradient, so training pushes the box back. Where x^a would pass float32's largest finite
// value the term is that value, with no gradient; a NaN base stays NaN. As src/cpu/iou.ts powGrad.
// The accepted powers (<= 20, src/ops/iou.ts) keep a x^(a-1) finite wherever x^a is.
fn pow_grad(x: f32, a: f32) -> vec2<f32> {
  if (is_nan(x)) {
    return vec2(x);
  }
  if (x <= 0.0) {
    return vec2(0.0);
  }
  let l = a * log2(x);
  // The usual powers by products, exact to a rounding or two (exp2 and log2 may err by several ulp).
  var xa = exp2(l);
  if (a == 2.0) {
    xa = x * x;
  } else if (a == 3.0) {
    xa = x * x * x;
  }
  if (is_non_finite(x) || l >= 128.0 || is_non_finite(xa)) {
    return vec2(F32_MAX, 0.0);
  }
  return vec2(xa, a * safe_div(xa, x));
}

// d/d(x1, y1, x2, y2) of pred (xyxy p against t), from the adjoints of the intersection's sides
// (iwh), the enclosing box's (cwh), pred's size (wh) and twice the centre offset (d): iw = min(x2,
// x2g) - max(x1, x1g), cw = max(x2, x2g) - min(x1, x1g), w = x2 - x1, d = x1 + x2 - x1g - x2g.
fn corners_grad(p: vec4<f32>, t: vec4<f32>, g_iwh: vec2<f32>, g_cwh: vec2<f32>, g_wh: vec2<f32>, g_d: vec2<f32>) -> vec4<f32> {
  let lo = -g_iwh * max_part(p.xy, t.xy) - g_cwh * min_part(p.xy, t.xy) - g_wh + g_d;
  let hi = g_iwh * min_part(p.zw, t.zw) + g_cwh * max_part(p.zw, t.zw) + g_wh + g_d;
  return vec4(lo, hi);
}

// An Alpha-IoU penalty's gradient: a p^(a-1) (pow_grad's, finite) times j, the base's own gradient
// with respect to pred's corners. None where it passes float32's range, as where p^a does (ops.md,
// `power`): an inverted box whose enclosing box is nearly empty has a GIoU penalty near 1/eps, and
// at power 5 its gradient is about 1e46. As src/cpu/iou.ts alphaGrad.
fn alpha_grad(g_pow: f32, j: vec4<f32>) -> vec4<f32> {
  let g = g_pow * j;
  return select(g, vec4(0.0), box_any_non_finite(g));
}

// Shape-IoU's weights (ww, hh) = 2 (wg^s, hg^s) / (wg^s + hg^s), as 2 sigmoid(-+ s ln(hg / wg)):
// the sides' powers overflow float32 together (605^14 does) and gave Inf / Inf, where the weights are
// 0 and 2. A target side <= 0 weighs 0 (both 1 when both are, and at s = 0 whatever the sides); a
// NaN side makes both NaN. As src/cpu/iou.ts shapeWeights.
fn shape_weights(whg: vec2<f32>, s: f32) -> vec2<f32> {
  // log2 of the ratio rounds less than a difference of logs; the difference where the ratio leaves
  // float32's normal range. s is capped at 1e30: a log ratio is 0 or above 1e-7 in magnitude, so
  // the weights are 0 and 2 long before the cap, and the product stays finite.
  let ratio = whg.y / whg.x;
  let lr = select(log2(ratio), log2(whg.y) - log2(whg.x), is_non_finite(ratio) || ratio < 1.17549435e-38);
  let t = min(s, 1e30) * lr * LN2;
  var k = 2.0 * vec2(sigmoid(-t), sigmoid(t));
  // An infinite side: the ratio is 0 or Inf (weights 2 and 0), or Inf / Inf (NaN), as in float64.
  let inf = vec2(box_is_inf(whg.x), box_is_inf(whg.y));
  k = select(k, select(vec2(0.0, 2.0), vec2(2.0, 0.0), inf.x), any(inf));
  k = select(k, vec2(nan_f32()), all(inf));
  // A side <= 0 weighs 0 (both 1 when both are).
  k = select(select(select(vec2(1.0), vec2(0.0, 2.0), whg.y > 0.0), vec2(2.0, 0.0), whg.x > 0.0), k, all(whg > vec2(0.0)));
  k = select(k, vec2(nan_f32()), any(box_nan2(whg)));
  return select(k, vec2(1.0), s == 0.0);
}

// The IoU term (ops.md, "Where the IoU term is replaced"): the IoU, or that of the inner boxes
// (INNER), through Focaler's interval. Every variant's 1 - iou reads it; penalties and CIoU's
// alpha read the plain IoU. It is formed here and its adjoint taken back in term_grad, once for
// every variant.
struct Term {
  t: f32,    // the IoU term
  d_t0: f32, // d t / d t0 (Focaler's interval: 1 / (u - d) inside it, bounds included, else 0)
  t0: f32,   // the IoU, or the inner boxes' IoU
  unit: f32, // the inner boxes' length unit: 1, or the ratio where it is above 1 (INNER)
  iwh: vec2<f32>, // the inner boxes' overlap (INNER)
  iu: f32,        // their union, eps included (INNER)
  lo: vec2<f32>,  // the target's inner corners, relative to its centre (INNER)
  hi: vec2<f32>,
  plo: vec2<f32>, // the pred's inner corners, in the same frame (INNER)
  phi: vec2<f32>,
}

// The inner boxes are placed relative to the target's centre (d: twice the centre offset, from
// centre_gap): their corners are then of the size of the boxes, not of the coordinates, and a thin
// inner box far from the origin keeps its width (at x = 1e4 absolute corners round by 1e-3).
// For a ratio k > 1 lengths are measured in units of k (t0 is a ratio of areas, the same in any
// unit): k^2 (w h + wg hg) overflowed float32 at k = 1e19 and made the gradient NaN.
fn iou_term(iou: f32, d: vec2<f32>, wh: vec2<f32>, whg: vec2<f32>, eps: f32) -> Term {
  var r = Term(0.0, 0.0, iou, 1.0, vec2(0.0), 0.0, vec2(0.0), vec2(0.0), vec2(0.0), vec2(0.0));
  if (INNER != 0u) {
    let big = params.inner_ratio > 1.0;
    let k = select(params.inner_ratio, 1.0, big);
    r.unit = select(1.0, params.inner_ratio, big);
    let c = select(0.5 * d, 0.5 * d / r.unit, big);
    let half = 0.5 * k * wh;
    let halfg = 0.5 * k * whg;
    r.plo = c - half;
    r.phi = c + half;
    r.lo = -halfg;
    r.hi = halfg;
    r.iwh = nan_min2(r.phi, r.hi) - nan_max2(r.plo, r.lo);
    let ii = select(0.0, r.iwh.x * r.iwh.y, all(r.iwh > vec2(0.0)));
    r.iu = k * k * (wh.x * wh.y + whg.x * whg.y) - ii + select(eps, eps / r.unit / r.unit, big);
    r.t0 = safe_div(ii, r.iu);
  }
  let span = params.focaler_hi - params.focaler_lo;
  let tf = safe_div(r.t0 - params.focaler_lo, span);
  r.t = nan_clamp(tf, 0.0, 1.0);
  r.d_t0 = select(0.0, safe_div(1.0, span), tf >= 0.0 && tf <= 1.0);
  return r;
}

// Adjoints that the IoU term's adjoint g_t0 (times d_t0 already) sends back.
struct TermGrad {
  g_iou: f32,       // to the plain IoU
  g_wh: vec2<f32>,  // to the pred's size (INNER)
  g_d: vec2<f32>,   // to twice the centre offset, i.e. to both corners alike (INNER)
}

fn term_grad(r: Term, g_t0: f32, wh: vec2<f32>) -> TermGrad {
  if (INNER == 0u) {
    return TermGrad(g_t0, vec2(0.0), vec2(0.0));
  }
  // Lengths in units of r.unit (iou_term): k is the ratio, or 1 where the ratio is above 1.
  let big = params.inner_ratio > 1.0;
  let k = select(params.inner_ratio, 1.0, big);
  // t0 = ii / iu, iu = k^2 (w h + wg hg) - ii + eps.
  let g_iu = -safe_div(g_t0 * r.t0, r.iu);
  let g_ii = safe_div(g_t0, r.iu) - g_iu;
  let g_iwh = select(vec2(0.0), g_ii * r.iwh.yx, all(r.iwh > vec2(0.0)));
  // Inner corners c -+ k wh / 2: a centre's adjoint reaches both corners by halves.
  let g_lo = -g_iwh * max_part(r.plo, r.lo);
  let g_hi = g_iwh * min_part(r.phi, r.hi);
  let g_c = 0.5 * (g_lo + g_hi);
  return TermGrad(0.0, g_iu * k * k * wh.yx + 0.5 * k * (g_hi - g_lo), select(g_c, g_c / r.unit, big));
}

// The intersection's sides, the union plus eps, and the IoU (ops.md's shared terms): an
// intersection only where both overlaps are > 0.
struct Overlap {
  iwh: vec2<f32>,
  overlap: bool,
  uni: f32,
  den: f32,
  iou: f32,
}

fn overlap_of(p: vec4<f32>, t: vec4<f32>, wh: vec2<f32>, whg: vec2<f32>, eps: f32) -> Overlap {
  let iwh = min(p.zw, t.zw) - max(p.xy, t.xy);
  let overlap = all(iwh > vec2(0.0));
  let inter = select(0.0, iwh.x * iwh.y, overlap);
  let uni = wh.x * wh.y + whg.x * whg.y - inter;
  let den = uni + eps;
  return Overlap(iwh, overlap, uni, den, safe_div(inter, den));
}

// p, t: the boxes in xyxy; wh, whg: their sizes; d: twice their centre offset (pred - target).
fn box_loss(p: vec4<f32>, t: vec4<f32>, wh: vec2<f32>, whg: vec2<f32>, d: vec2<f32>, eps: f32) -> LossGrad {
  let o = overlap_of(p, t, wh, whg, eps);
  let iwh = o.iwh;
  let overlap = o.overlap;
  let uni = o.uni;
  let den = o.den;
  let iou = o.iou;
  let cwh = max(p.zw, t.zw) - min(p.xy, t.xy);
  let term = iou_term(iou, d, wh, whg, eps);
  let ti = term.t;
  let a = params.power;

  var loss = 1.0 - ti;
  var g_t = -1.0;
  var g_union = 0.0;
  var g_wh = vec2(0.0);
  var g_cwh = vec2(0.0);
  var g_d = vec2(0.0);
  var g_corner = vec4(0.0);
  var g_alpha = vec4(0.0); // Alpha-IoU's penalties, each already with respect to pred's corners
  if (POWER != 0u) {
    let pa = pow_grad(ti, a);
    loss = 1.0 - pa.x;
    g_t = -pa.y;
  }

  if (VARIANT == 0u) {
    if (MODE == 1u) {
      loss = 1.0 - ti * ti;
      g_t = -2.0 * ti;
    } else if (MODE == 2u) {
      let m = nan_max(ti, eps);
      // An eps below f32's smallest normal reaches the shader as 0: keep log finite.
      loss = -ieee_log(nan_max(m, 1.17549435e-38));
      g_t = -safe_div(max_part(vec2(ti), vec2(eps)).x, m);
    }
  } else if (VARIANT == 1u) {
    // + (C - union) / (C + eps), C = cw*ch; d/dC = (union + eps) / (C + eps)^2
    let c = cwh.x * cwh.y;
    let ce = c + eps;
    let pen = safe_div(c - uni, ce);
    let j_union = -safe_div(1.0, ce);
    let j_cwh = safe_div(safe_div(uni + eps, ce), ce) * cwh.yx;
    if (POWER != 0u) {
      let pa = pow_grad(nan_max(pen, 0.0), a);
      loss += pa.x;
      // union = w h + wg hg - inter, inter = iw ih where both overlap.
      let j_iwh = select(vec2(0.0), -j_union * iwh.yx, overlap);
      g_alpha += alpha_grad(pa.y, corners_grad(p, t, j_iwh, j_cwh, j_union * wh.yx, vec2(0.0)));
    } else {
      loss += pen;
      g_union += j_union;
      g_cwh += j_cwh;
    }
  } else if (VARIANT <= 4u) {
    // + rho2 / c2
    let c2 = dot(cwh, cwh) + eps;
    let q = safe_div(0.25 * dot(d, d), c2);
    var g_q = 1.0;
    var qa = q;
    if (POWER != 0u) {
      let pa = pow_grad(q, a);
      qa = pa.x;
      g_q = 0.0;
      let j = corners_grad(p, t, vec2(0.0), -safe_div(2.0 * q, c2) * cwh, vec2(0.0), safe_div(0.5, c2) * d);
      g_alpha += alpha_grad(pa.y, j);
    }
    if (VARIANT == 3u) {
      // + alpha * v, v = 4/pi^2 * gap^2, alpha constant; dA/d(w, h) = (h, -w) / (w^2 + h^2).
      let gap = aspect_gap(wh, whg);
      // 0 where a size is not finite, as ciou_v (boxes.wgsl) explains.
      let v = select(FOUR_OVER_PI2 * gap * gap, 0.0, box_any_non_finite(vec4(wh, whg)));
      var g_v = 0.0;
      if (CIOU_MMDET != 0u) {
        // mmdetection: 1 - clamp(t - q - alpha v, -1, 1), alpha = iou > 0.5 ? v / (1 - iou + v) : 0.
        let alpha = select(0.0, safe_div(v, 1.0 - iou + v), iou > 0.5);
        let x = ti - q - alpha * v;
        loss = 1.0 - nan_clamp(x, -1.0, 1.0);
        let g_x = select(0.0, -1.0, x >= -1.0 && x <= 1.0);
        g_t = g_x;
        g_q = -g_x;
        g_v = -g_x * alpha;
      } else {
        let alpha = safe_div(v, 1.0 - iou + v + eps);
        loss += qa;
        if (POWER != 0u) {
          let pa = pow_grad(alpha * v, a);
          loss += pa.x;
          let j_wh = safe_div(-2.0 * FOUR_OVER_PI2 * alpha * gap, dot(wh, wh)) * vec2(wh.y, -wh.x);
          g_alpha += alpha_grad(pa.y, corners_grad(p, t, vec2(0.0), vec2(0.0), j_wh, vec2(0.0)));
        } else {
          loss += alpha * v;
          g_v = alpha;
        }
      }
      let g_a = -2.0 * FOUR_OVER_PI2 * g_v * gap;
      g_wh += safe_div(g_a, dot(wh, wh)) * vec2(wh.y, -wh.x);
    } else {
      loss += qa;
      if (VARIANT == 4u) {
        // + (w - wg)^2 / (cw^2 + eps) + (h - hg)^2 / (ch^2 + eps)
        let ce = cwh * cwh + eps;
        let e = wh - whg;
        let r = safe_div2(e * e, ce);
        loss += r.x + r.y;
        g_wh += safe_div2(2.0 * e, ce);
        g_cwh -= safe_div2(2.0 * r, ce) * cwh;
      }
    }
    g_d += safe_div(0.5 * g_q, c2) * d;
    g_cwh -= safe_div(2.0 * g_q * q, c2) * cwh;
  } else if (VARIANT == 5u) {
    // SIoU (ops.md), offsets target minus pred.
    let s_off = -0.5 * d;
    let sigma = sqrt(dot(s_off, s_off) + eps);
    let sin_ab = safe_div2(abs(s_off.yx), vec2(sigma)); // (sin_alpha, sin_beta)
    let use_alpha = sin_ab.x <= HALF_SQRT2;
    let s = select(sin_ab.y, sin_ab.x, use_alpha);
    // cos(2 asin(s) - pi/2) = sin(2 asin(s)) = 2 s sqrt(1 - s^2) (design.md)
    let root = sqrt(max(1.0 - s * s, 0.0));
    let gamma = 2.0 - 2.0 * s * root;
    let ce = cwh + eps;
    let r = safe_div2(s_off, ce);
    let pr = r * r;
    let e = ieee_exp2v(-gamma * pr);
    let dist = 2.0 - e.x - e.y;
    let mwh = max(max(wh, whg), vec2(eps));
    let o = safe_div2(abs(wh - whg), mwh);
    let q = 1.0 - ieee_exp2v(-o);
    let q2 = q * q;
    loss += 0.5 * (dist + dot(q2, q2));

    let g_gamma = 0.5 * dot(e, pr);
    let g_pr = 0.5 * gamma * e;
    var g_s = safe_div2(2.0 * g_pr * r, ce);
    g_cwh -= safe_div2(2.0 * g_pr * pr, ce);
    // d angle / ds = 2 (1 - 2 s^2) / sqrt(1 - s^2); s = |u| / sigma, u = sy (alpha) or sx (beta).
    let g_sin = -g_gamma * safe_div(2.0 * (1.0 - 2.0 * s * s), root);
    let u = select(s_off.x, s_off.y, use_alpha);
    let g_u = safe_div(g_sin * sgn(u), sigma);
    let g_sigma = -safe_div(safe_div(g_sin * abs(u), sigma), sigma);
    g_s += select(vec2(g_u, 0.0), vec2(0.0, g_u), use_alpha);
    g_s += safe_div(g_sigma, sigma) * s_off;
    g_d -= 0.5 * g_s;
    // 0.5 * d/do (1 - e^-o)^4 = 2 q^3 (1 - q); max(w, wg, eps) splits its ties.
    let g_o = 2.0 * q2 * q * (1.0 - q);
    let m_part = max_part(wh, whg) * max_part(max(wh, whg), vec2(eps));
    let ew = wh - whg;
    g_wh += safe_div2(g_o * vec2(sgn(ew.x), sgn(ew.y)), mwh) - safe_div2(g_o * o, mwh) * m_part;
  } else if (VARIANT == 6u) {
    // MPDIoU: + (d1 + d2) / (W^2 + H^2), the squared distances of the two corner pairs.
    let e = p - t;
    loss += dot(e, e) * params.mpd_norm;
    g_corner = 2.0 * params.mpd_norm * e;
  } else if (VARIANT == 7u) {
    // Shape-IoU: weights (ww, hh) from the target's size, a weighted distance and shape cost.
    let k = shape_weights(whg, params.scale); // (ww, hh)
    let c2 = dot(cwh, cwh) + eps;
    let dist = safe_div(0.25 * dot(k.yx, d * d), c2);
    let mwh = max(max(wh, whg), vec2(eps));
    let o = k.yx * safe_div2(abs(wh - whg), mwh);
    let q = 1.0 - ieee_exp2v(-o);
    let q2 = q * q;
    loss += dist + 0.5 * dot(q2, q2);
    g_d += safe_div2(0.5 * k.yx * d, vec2(c2));
    g_cwh -= safe_div(2.0 * dist, c2) * cwh;
    let g_o = 2.0 * q2 * q * (1.0 - q);
    let m_part = max_part(wh, whg) * max_part(max(wh, whg), vec2(eps));
    let ew = wh - whg;
    g_wh += k.yx * safe_div2(g_o * vec2(sgn(ew.x), sgn(ew.y)), mwh) - safe_div2(g_o * o, mwh) * m_part;
  } else {
    // Wise-IoU: R (1 - t) times a focusing factor; R = exp(rho2 / c2), c2 and the factor detached.
    let c2 = dot(cwh, cwh) + eps;
    // rho2 / c2 <= 1 for boxes of non-negative sizes; an inverted box can leave c2 = eps with the
    // centres apart, so the exponent is capped at WIOU_EXP_MAX, with no gradient past it.
    let ex = safe_div(0.25 * dot(d, d), c2);
    let capped = ex > WIOU_EXP_MAX;
    let big_r = ieee_exp(select(ex, WIOU_EXP_MAX, capped));
    let beta = safe_div(1.0 - iou, params.iou_mean);
    var f = 1.0;
    if (WIOU_VERSION == 2u) {
      f = sqrt(beta);
    } else if (WIOU_VERSION == 3u) {
      // beta / (delta alpha^(beta - delta)) with a power that never overflows: alpha^(delta - beta) is
      // at most alpha^delta < 2^100 (src/ops/iou.ts), and 0 where the other form divided by Inf.
      f = select(beta * exp2((params.wiou_delta - beta) * params.wiou_log2_alpha) / params.wiou_delta, beta, is_nan(beta));
    }
    let base = 1.0 - ti;
    loss = big_r * base * f;
    g_t = -big_r * f;
    g_d += select(safe_div(0.5 * base * f * big_r, c2) * d, vec2(0.0), capped);
  }

  // The IoU term's adjoint back to the plain IoU, or to the inner boxes.
  let tg = term_grad(term, g_t * term.d_t0, wh);
  let g_iou = tg.g_iou;
  g_wh += tg.g_wh;
  g_d += tg.g_d;

  // iou = inter / (union + eps); union = w*h + wg*hg - inter; inter = iw*ih.
  var g_inter = safe_div(g_iou, den);
  g_union -= safe_div(g_iou * iou, den);
  g_wh += g_union * wh.yx;
  g_inter -= g_union;
  let g_iwh = select(vec2(0.0), g_inter * iwh.yx, overlap);
  return LossGrad(loss, corners_grad(p, t, g_iwh, g_cwh, g_wh, g_d) + g_corner + g_alpha);
}

// A pair with a NaN or infinite coordinate (ops.md, Conventions: non-finite input is never hidden)
// takes the same path, its sizes and centre offset from the xyxy corners, as the float64 reference
// forms them (a cxcywh box with an infinite centre has both x corners infinite, so its width is NaN
// whatever width the input gave): an infinite coordinate gives the reference's value, and a NaN one
// reaches the union, the IoU and the IoU term (which keeps it) of every variant. The gradient row is
// NaN there (as src/cpu/iou.ts: unspecified for NaN, and for an infinity the formulas give 0 * Inf,
// which a compiler may fold to 0). Selects, not a branch: a second, branched call of box_loss ran at
// a third of the speed on SwiftShader, finite input included.
fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let pb = in_pred[i];
  let tb = in_target[i];
  let xy = pair_to_xyxy(pb, tb);
  let non_finite = box_any_non_finite(pb) || box_any_non_finite(tb);
  let corners = non_finite && FORMAT != 0u; // xyxy's own sizes and offset are the corners'
  let wh = select(box_size(pb), xy.a.zw - xy.a.xy, corners);
  let whg = select(box_size(tb), xy.b.zw - xy.b.xy, corners);
  let d = select(centre_gap(pb, tb), (xy.a.xy + xy.a.zw) - (xy.b.xy + xy.b.zw), corners);
  let r = box_loss(xy.a, xy.b, wh, whg, d, params.eps);
  if (want_grad) {
    out_grad_pred[i] = select(g * grad_to_format(r.grad), vec4(nan_f32()), non_finite);
  }
  return r.loss;
}

// Wise-IoU's batch mean of 1 - iou (GpuKernel.aux): each thread's compensated sum of 1 - iou over
// its elements, unweighted, into partials; the runtime's tree adds them and divides by n.
@compute @workgroup_size(WG)
fn main_aux(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let tid = gid.x + gid.y * nwg.x * WG;
  if (tid >= run.threads) {
    return;
  }
  var acc = vec2(0.0);
  for (var i = tid; i < run.n; i += run.threads) {
    let pb = in_pred[i];
    let tb = in_target[i];
    let xy = pair_to_xyxy(pb, tb);
    // Sizes from the corners where a coordinate is NaN or infinite (as element_loss): a NaN corner
    // makes the union and the IoU NaN, and with them the mean.
    let corners = FORMAT != 0u && (box_any_non_finite(pb) || box_any_non_finite(tb));
    let wh = select(box_size(pb), xy.a.zw - xy.a.xy, corners);
    let whg = select(box_size(tb), xy.b.zw - xy.b.xy, corners);
    acc = kahan_add(acc, 1.0 - overlap_of(xy.a, xy.b, wh, whg, params.eps).iou);
  }
  partials[tid] = acc.x;
}
