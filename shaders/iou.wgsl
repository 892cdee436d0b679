// iou.wgsl: iou_loss (ops.md, "Box losses"), one pred/target pair per output element.
// The gradient is written by hand in reverse order with the conventions of ops.md:
// ties of min/max split 0.5/0.5, abs'(0) = 0, an empty or touching intersection
// contributes none, CIoU's alpha is held constant.

override VARIANT: u32 = 0u; // 0 iou, 1 giou, 2 diou, 3 ciou, 4 eiou, 5 siou
override MODE: u32 = 0u; // variant iou only: 0 linear, 1 square, 2 log

struct Params {
  eps: f32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_pred: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> in_target: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> out_grad_pred: array<vec4<f32>>;

const HALF_SQRT2: f32 = 0.70710678118654752;

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

// p, t: the boxes in xyxy; wh, whg: their sizes; d: twice their centre offset (pred - target).
fn box_loss(p: vec4<f32>, t: vec4<f32>, wh: vec2<f32>, whg: vec2<f32>, d: vec2<f32>, eps: f32) -> LossGrad {
  // Shared terms (ops.md): intersection only where both overlaps are > 0.
  let iwh = min(p.zw, t.zw) - max(p.xy, t.xy);
  let overlap = all(iwh > vec2(0.0));
  let inter = select(0.0, iwh.x * iwh.y, overlap);
  let uni = wh.x * wh.y + whg.x * whg.y - inter;
  let den = uni + eps;
  let iou = safe_div(inter, den);
  let cwh = max(p.zw, t.zw) - min(p.xy, t.xy);

  var loss = 1.0 - iou;
  var g_iou = -1.0;
  var g_union = 0.0;
  var g_wh = vec2(0.0);
  var g_cwh = vec2(0.0);
  var g_d = vec2(0.0);

  if (VARIANT == 0u) {
    if (MODE == 1u) {
      loss = 1.0 - iou * iou;
      g_iou = -2.0 * iou;
    } else if (MODE == 2u) {
      let m = max(iou, eps);
      // An eps below f32's smallest normal reaches the shader as 0: keep log finite.
      loss = -log(max(m, 1.17549435e-38));
      g_iou = -safe_div(max_part(vec2(iou), vec2(eps)).x, m);
    }
  } else if (VARIANT == 1u) {
    // + (C - union) / (C + eps), C = cw*ch; d/dC = (union + eps) / (C + eps)^2
    let c = cwh.x * cwh.y;
    let ce = c + eps;
    loss += safe_div(c - uni, ce);
    g_union -= safe_div(1.0, ce);
    g_cwh += safe_div(safe_div(uni + eps, ce), ce) * cwh.yx;
  } else if (VARIANT <= 4u) {
    // + rho2 / c2
    let c2 = dot(cwh, cwh) + eps;
    let q = safe_div(0.25 * dot(d, d), c2);
    loss += q;
    g_d += safe_div(0.5, c2) * d;
    g_cwh -= safe_div(2.0 * q, c2) * cwh;
    if (VARIANT == 3u) {
      // + alpha * v, v = 4/pi^2 * gap^2, alpha constant; dA/d(w, h) = (h, -w) / (w^2 + h^2).
      let gap = aspect_gap(wh, whg);
      let v = FOUR_OVER_PI2 * gap * gap;
      let alpha = safe_div(v, 1.0 - iou + v + eps);
      loss += alpha * v;
      let g_a = -2.0 * FOUR_OVER_PI2 * alpha * gap;
      g_wh += safe_div(g_a, dot(wh, wh)) * vec2(wh.y, -wh.x);
    } else if (VARIANT == 4u) {
      // + (w - wg)^2 / (cw^2 + eps) + (h - hg)^2 / (ch^2 + eps)
      let ce = cwh * cwh + eps;
      let e = wh - whg;
      let r = safe_div2(e * e, ce);
      loss += r.x + r.y;
      g_wh += safe_div2(2.0 * e, ce);
      g_cwh -= safe_div2(2.0 * r, ce) * cwh;
    }
  } else {
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
    let e = exp(-gamma * pr);
    let dist = 2.0 - e.x - e.y;
    let mwh = max(max(wh, whg), vec2(eps));
    let o = safe_div2(abs(wh - whg), mwh);
    let q = 1.0 - exp(-o);
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
  }

  // iou = inter / (union + eps); union = w*h + wg*hg - inter; inter = iw*ih.
  var g_inter = safe_div(g_iou, den);
  g_union -= safe_div(g_iou * iou, den);
  g_wh += g_union * wh.yx;
  g_inter -= g_union;
  let g_iwh = select(vec2(0.0), g_inter * iwh.yx, overlap);
  // iw = min(x2, x2g) - max(x1, x1g); cw = max(x2, x2g) - min(x1, x1g); w = x2 - x1.
  let lo = -g_iwh * max_part(p.xy, t.xy) - g_cwh * min_part(p.xy, t.xy) - g_wh + g_d;
  let hi = g_iwh * min_part(p.zw, t.zw) + g_cwh * max_part(p.zw, t.zw) + g_wh + g_d;
  return LossGrad(loss, vec4(lo, hi));
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let pb = in_pred[i];
  let tb = in_target[i];
  let xy = pair_to_xyxy(pb, tb);
  let r = box_loss(xy.a, xy.b, box_size(pb), box_size(tb), centre_gap(pb, tb), params.eps);
  if (want_grad) {
    out_grad_pred[i] = g * grad_to_format(r.grad);
  }
  return r.loss;
}
