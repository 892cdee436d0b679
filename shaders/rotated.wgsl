// rotated.wgsl: rotated_iou_loss (ops.md, "Rotated boxes"), one pred/target pair per output
// element, with the gradient to all five components of pred written by hand in reverse, as
// src/cpu/rotated.ts: the adjoints of a few shared quantities (Adj) are accumulated, then turned
// into d/d(cx, cy, w, h, theta) by finish(). clamp and max pass the gradient at their bound, abs has
// gradient 0 at 0, ties of max and min split it evenly.

override VARIANT: u32 = 0u; // 0 probiou, 1 gwd, 2 kld, 3 jd, 4 kld_symmax, 5 kld_symmin, 6 kfiou
override FUN: u32 = 0u; // 0 log1p, 1 sqrt, 2 none, 3 ln, 4 exp
override CIOU: u32 = 0u; // probiou's CIoU aspect term
override NORMALIZE: u32 = 1u; // gwd
override SQRT: u32 = 1u; // the KL variants' sqrt
override TAU: u32 = 0u; // tau >= 1: 1 - 1 / (tau + x)

struct Params {
  eps: f32,
  tau: f32,
  alpha2: f32,
  beta: f32,
  has_pred_delta: u32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_pred: array<f32>;
@group(0) @binding(7) var<storage, read> in_target: array<f32>;
@group(0) @binding(10) var<storage, read_write> out_grad_pred: array<f32>;
// KFIoU's deltas come through load_deltas and store_grad_delta: rotated-deltas.wgsl binds them,
// rotated-no-deltas.wgsl (the narrow module, GpuKernel.narrow) does not, so that a call without
// them binds 7 storage buffers, within the 8 of a device with the default limits.

const FOUR_OVER_PI2: f32 = 0.405284734569351086;

// Adjoints of the shared quantities: d loss / d (each).
struct Adj {
  d: vec2<f32>,
  uv1: vec2<f32>,
  uv2: vec2<f32>,
  // d loss / d sd^2, with cd^2 = 1 - sd^2: one number, not a difference of two large ones (the
  // angle's gradient of nearly identical boxes lost its digits to that cancellation).
  s2: f32,
  pq1: vec2<f32>,
  wh1: vec2<f32>, // pred's sides as read (after mmrotate's clamp)
}

// Adds the adjoints of Euu = P2 cd^2 + Q2 sd^2 and Evv = P2 sd^2 + Q2 cd^2.
fn back_e(q: Pair, g: vec2<f32>, a: ptr<function, Adj>) {
  (*a).s2 += (g.x - g.y) * (q.pq2.y - q.pq2.x);
}

// Adds the adjoints of Fuu = P1 cd^2 + Q1 sd^2 and Fvv = P1 sd^2 + Q1 cd^2.
fn back_f(q: Pair, g: vec2<f32>, a: ptr<function, Adj>) {
  (*a).pq1 += vec2(g.x * q.cd2 + g.y * q.sd2, g.x * q.sd2 + g.y * q.cd2);
  (*a).s2 += (g.x - g.y) * (q.pq1.y - q.pq1.x);
}

// Adds g * d D / d(pred's terms), D = P1 Q1 + P2 Q2 + Q1 Euu + P1 Evv.
fn back_d(q: Pair, g: f32, a: ptr<function, Adj>) {
  (*a).pq1 += g * vec2(q.pq1.y + q.E.y, q.pq1.x + q.E.x);
  back_e(q, g * vec2(q.pq1.y, q.pq1.x), a);
}

// d loss / d (cx, cy, w, h, theta) of pred from the adjoints.
fn finish(q: Pair, a: Adj, mm: bool) -> array<f32, 5> {
  let c1 = q.cs1.x;
  let s1 = q.cs1.y;
  let c2 = q.cs2.x;
  let s2 = q.cs2.y;
  var o: array<f32, 5>;
  o[0] = a.d.x + a.uv1.x * c1 - a.uv1.y * s1 + a.uv2.x * c2 - a.uv2.y * s2;
  o[1] = a.d.y + a.uv1.x * s1 + a.uv1.y * c1 + a.uv2.x * s2 + a.uv2.y * c2;
  // P = k w^2: dP/dw = 2k w (k = 1/4 for mmrotate, 1/12 for ultralytics).
  let k2 = select(1.0 / 6.0, 0.5, mm);
  // A clamped side passes nothing (a select: its adjoint may be huge where the clamp binds).
  let gwh = select(a.wh1 + a.pq1 * k2 * q.wh1, vec2(0.0), q.dwh1 == vec2(0.0));
  o[2] = gwh.x;
  o[3] = gwh.y;
  // d du1/d theta1 = dv1, d dv1/d theta1 = -du1, d sd^2/d theta1 = -2 cd sd.
  o[4] = a.uv1.x * q.uv1.y - a.uv1.y * q.uv1.x - a.s2 * 2.0 * q.cd * q.sd;
  // A gradient past float32 (a centre 1e6 from a box 1e-7 wide) is its largest value.
  return array<f32, 5>(sat_signed(o[0]), sat_signed(o[1]), sat_signed(o[2]), sat_signed(o[3]), sat_signed(o[4]));
}

// post(x) of the Gaussian losses and its derivative.
fn post(x: f32) -> vec2<f32> {
  var y = x;
  var dy = 1.0;
  if (FUN == 0u) {
    y = log1p(x);
    dy = 1.0 / (1.0 + x);
  } else if (FUN == 1u) {
    y = sqrt(max(x, FLOOR));
    dy = select(0.0, 0.5 / y, x >= FLOOR);
  }
  if (TAU == 1u) {
    let den = params.tau + y;
    return vec2(1.0 - 1.0 / den, dy / (den * den));
  }
  return vec2(y, dy);
}

// sqrt(max(x, 1e-7)) with SQRT, else x; and its derivative.
fn root(x: f32) -> vec2<f32> {
  if (SQRT == 0u) {
    return vec2(x, 1.0);
  }
  let y = sqrt(max(x, FLOOR));
  return vec2(y, select(0.0, 0.5 / y, x >= FLOOR));
}

// ProbIoU's hd, adding g * d hd to the adjoints where the clamp of bd0 passes it.
fn probiou_hd(q: Pair, eps: f32, g: f32, want: bool, a: ptr<function, Adj>) -> f32 {
  let b = bhatta(q, eps);
  let hd = hd_of(b.bd0, eps);
  if (!want || !(b.bd0 >= eps && b.bd0 <= 100.0) || q.big || b.n >= F32_MAX_R || b.r >= F32_MAX_R || b.z >= F32_MAX_R) {
    return hd;
  }
  let e = exp(-b.bd0);
  let de = q.D + eps;
  let den = 4.0 * b.r + eps;
  let gbd = g * e / (2.0 * hd);
  let gn = gbd * 0.25 / de;
  let gz = gbd * 0.5 / (b.z + eps);
  let gd = -gbd * (b.t12 / de) + gz / den;
  let gr = -gz * b.z * 4.0 / den;
  (*a).uv1 += gn * 2.0 * vec2(q.pq1.y, q.pq1.x) * q.uv1;
  (*a).uv2 += gn * 2.0 * vec2(q.pq2.y, q.pq2.x) * q.uv2;
  (*a).pq1 += gn * vec2(q.uv1.y * q.uv1.y, q.uv1.x * q.uv1.x);
  back_d(q, gd, a);
  // abs' is 0 at 0: a zero side passes nothing through r.
  let ra = abs(q.wh2.x * q.wh2.y) / 144.0;
  (*a).wh1 += gr * ra * vec2(sgn(q.wh1.x) * abs(q.wh1.y), sgn(q.wh1.y) * abs(q.wh1.x));
  return hd;
}

// KL(target || pred) (swap false: mmrotate's kld_loss(pred, target)) or KL(pred || target). An
// unbounded KL (a centre term past float32) is float32's largest value, with no gradient.
fn kl(q: Pair, swap: bool) -> f32 {
  let a2 = params.alpha2;
  let lv = log(q.wh1.x * q.wh1.y) - log(q.wh2.x * q.wh2.y);
  if (!swap) {
    let c = sat((0.5 * (q.uv1.x * q.uv1.x / q.pq1.x + q.uv1.y * q.uv1.y / q.pq1.y)) / a2);
    return sat(c + 0.5 * (q.E.x / q.pq1.x + q.E.y / q.pq1.y) + lv - 1.0);
  }
  let c = sat((0.5 * (q.uv2.x * q.uv2.x / q.pq2.x + q.uv2.y * q.uv2.y / q.pq2.y)) / a2);
  return sat(c + 0.5 * (q.F.x / q.pq2.x + q.F.y / q.pq2.y) - lv - 1.0);
}

// Adds g * d KL / d(pred's terms) to the adjoints, for the KL kl() gave as v.
fn kl_back(q: Pair, swap: bool, v: f32, g: f32, a: ptr<function, Adj>) {
  if (g == 0.0 || v >= F32_MAX_R) {
    return;
  }
  let a2 = params.alpha2;
  if (!swap) {
    (*a).uv1 += g * q.uv1 / (q.pq1 * a2);
    // d/dP1 of 0.5 (du1^2 / a2 + Euu) / P1 times dP1/dw1' = 2 P1 / w1', in an order that stays in
    // float32 (1 / P1^2 alone passes it for a side near mmrotate's 1e-7).
    (*a).wh1 -= g * ((q.uv1 * q.uv1 / a2 + q.E) / q.pq1) / q.wh1;
    back_e(q, g * 0.5 / q.pq1, a);
    (*a).wh1 += g / q.wh1;
    return;
  }
  (*a).uv2 += g * q.uv2 / (q.pq2 * a2);
  back_f(q, g * 0.5 / q.pq2, a);
  (*a).wh1 -= g / q.wh1;
}

struct Row {
  loss: f32,
  grad: array<f32, 5>,
  grad_delta: vec2<f32>,
}

fn rotated_row(p: array<f32, 5>, t: array<f32, 5>, pd: vec2<f32>, td: vec2<f32>, want: bool) -> Row {
  let mm = VARIANT != 0u;
  let q = pair_of(p, t, mm);
  var a: Adj;
  var out: Row;
  let eps = params.eps;
  if (VARIANT == 0u) {
    let hd = probiou_hd(q, eps, 1.0, want, &a);
    out.loss = hd;
    if (CIOU == 1u) {
      let da = aspect_angle_r(q.wh2) - aspect_angle_r(q.wh1);
      let v = FOUR_OVER_PI2 * da * da;
      let k = v / (v + hd + eps);
      out.loss += k * v;
      // d A(w, h) = (h dw - w dh) / (w^2 + h^2), 0 at w = h = 0; k is held constant.
      // The sides divided by the larger first: w^2 + h^2 passes float32 for sides past 1.8e19.
      let m = max(abs(q.wh1.x), abs(q.wh1.y));
      if (want && m > 0.0) {
        let ga = -k * FOUR_OVER_PI2 * 2.0 * da;
        let wn = q.wh1 / m;
        a.wh1 += ga * vec2(wn.y, -wn.x) / (dot(wn, wn) * m);
      }
    }
  } else if (VARIANT == 1u) {
    let v1 = q.wh1.x * q.wh1.y;
    let v2 = q.wh2.x * q.wh2.y;
    let g0raw = v1 * v2 / 16.0;
    let g0 = max(g0raw, SQRT_FLOOR);
    let x0 = q.pq1.x * q.E.x + q.pq1.y * q.E.y + 2.0 * g0;
    let s = sqrt(max(x0, FLOOR));
    let w = (q.pq1.x + q.pq1.y + q.pq2.x + q.pq2.y) - 2.0 * s;
    let yy = sat(dot(q.d, q.d) + params.alpha2 * w);
    let gg = sqrt(max(yy, FLOOR));
    var scale = 1.0;
    if (NORMALIZE == 1u) {
      scale = 2.0 * sqrt(sqrt(g0));
    }
    let x = gg / scale;
    let py = post(x);
    out.loss = py.x;
    if (want) {
      var gg0 = 0.0;
      // x = gg / (2 g0^(1/4)): d x / d g0 = -x / (4 g0).
      if (NORMALIZE == 1u) {
        gg0 -= py.y * x / (4.0 * g0);
      }
      if (yy >= FLOOR && yy < F32_MAX_R) {
        let gy = (py.y / scale) * (0.5 / gg);
        a.d += gy * 2.0 * q.d;
        let gw = gy * params.alpha2;
        a.pq1 += vec2(gw);
        if (x0 >= FLOOR) {
          let gx = -gw / s;
          a.pq1 += gx * q.E;
          back_e(q, gx * q.pq1, &a);
          gg0 += 2.0 * gx;
        }
      }
      if (g0raw >= SQRT_FLOOR) {
        a.wh1 += gg0 * v2 / 16.0 * vec2(q.wh1.y, q.wh1.x);
      }
    }
  } else if (VARIANT <= 5u) {
    let k12 = kl(q, false);
    var k21 = 0.0;
    if (VARIANT != 2u) {
      k21 = kl(q, true);
    }
    var x = 0.0;
    var g12 = 0.0;
    var g21 = 0.0;
    if (VARIANT == 2u) {
      let r = root(k12);
      x = r.x;
      g12 = r.y;
    } else if (VARIANT == 3u) {
      let r = root(sat(0.5 * k12 + 0.5 * k21));
      x = r.x;
      g12 = 0.5 * r.y;
      g21 = 0.5 * r.y;
    } else {
      let r12 = root(k12);
      let r21 = root(k21);
      let first = select((r12.x < r21.x), (r12.x > r21.x), VARIANT == 4u);
      let part = select(select(0.0, 1.0, first), 0.5, r12.x == r21.x);
      x = select(min(r12.x, r21.x), max(r12.x, r21.x), VARIANT == 4u);
      g12 = part * r12.y;
      g21 = (1.0 - part) * r21.y;
    }
    let py = post(x);
    out.loss = py.x;
    if (want) {
      kl_back(q, false, k12, py.y * g12, &a);
      if (VARIANT != 2u) {
        kl_back(q, true, k21, py.y * g21, &a);
      }
    }
  } else {
    let v1 = q.wh1.x * q.wh1.y;
    let v2 = q.wh2.x * q.wh2.y;
    let sd = sqrt(q.D);
    let vb = v1 * v2 / (4.0 * sd);
    let den = v1 + v2 - vb + eps;
    let kf = vb / den;
    var kl_loss = 1.0 - kf;
    var gkf = -1.0;
    if (FUN == 3u) {
      kl_loss = -log(kf + eps);
      gkf = -1.0 / (kf + eps);
    } else if (FUN == 4u) {
      let ex = exp(1.0 - kf);
      kl_loss = ex - 1.0;
      gkf = -ex;
    }
    var e = q.d;
    if (params.has_pred_delta != 0u) {
      e = vec2(sat_diff(pd.x, td.x), sat_diff(pd.y, td.y));
    }
    let ae = abs(e);
    let small = ae < vec2(params.beta);
    let xy = select(ae - 0.5 * params.beta, 0.5 * e * e / params.beta, small);
    let ge = select(vec2(sgn(e.x), sgn(e.y)), e / params.beta, small);
    out.loss = sat(sat(xy.x + xy.y) + kl_loss);
    if (want) {
      if (params.has_pred_delta != 0u) {
        out.grad_delta = ge;
      } else {
        a.d += ge;
      }
      let gvb = gkf * (den + vb) / (den * den);
      let gv1 = -gkf * vb / (den * den) + gvb * v2 / (4.0 * sd);
      a.wh1 += gv1 * vec2(q.wh1.y, q.wh1.x);
      back_d(q, -gvb * vb / (2.0 * q.D), &a);
    }
  }
  if (want) {
    out.grad = finish(q, a, mm);
  }
  return out;
}

// CIoU's aspect angle of ops.md (src/cpu/iou.ts aspectAngle): atan(w / h), pi/2 sign(w) at h = 0, 0
// at w = 0; only the sign of h is read, so a zero's sign never reaches atan2.
fn aspect_angle_r(wh: vec2<f32>) -> f32 {
  if (wh.x == 0.0) {
    return 0.0;
  }
  if (wh.y == 0.0) {
    return select(-1.5707963267948966, 1.5707963267948966, wh.x > 0.0);
  }
  return select(atan2(wh.x, wh.y), atan2(-wh.x, -wh.y), wh.y < 0.0);
}

// A NaN or an infinity in a row makes it NaN, loss and gradient (as src/cpu/rotated.ts rowFinite).
fn row_bad(v: array<f32, 5>) -> bool {
  return is_non_finite(v[0]) || is_non_finite(v[1]) || is_non_finite(v[2]) || is_non_finite(v[3]) || is_non_finite(v[4]);
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let b = 5u * i;
  let p = array<f32, 5>(in_pred[b], in_pred[b + 1u], in_pred[b + 2u], in_pred[b + 3u], in_pred[b + 4u]);
  let t = array<f32, 5>(in_target[b], in_target[b + 1u], in_target[b + 2u], in_target[b + 3u], in_target[b + 4u]);
  var pd = vec2(0.0);
  var td = vec2(0.0);
  if (params.has_pred_delta != 0u) {
    let d = load_deltas(i);
    pd = d.xy;
    td = d.zw;
  }
  let r = rotated_row(p, t, pd, td, want_grad);
  // A NaN or infinite input makes the row NaN (ops.md, Conventions; no term has a value there),
  // whatever a clamp made of it.
  let bad = row_bad(p) || row_bad(t) || is_non_finite(pd.x) || is_non_finite(pd.y) || is_non_finite(td.x) || is_non_finite(td.y);
  if (want_grad) {
    // Unrolled: a loop would index the private array by a variable.
    out_grad_pred[b] = select(g * r.grad[0], nan_f32(), bad);
    out_grad_pred[b + 1u] = select(g * r.grad[1], nan_f32(), bad);
    out_grad_pred[b + 2u] = select(g * r.grad[2], nan_f32(), bad);
    out_grad_pred[b + 3u] = select(g * r.grad[3], nan_f32(), bad);
    out_grad_pred[b + 4u] = select(g * r.grad[4], nan_f32(), bad);
    if (params.has_pred_delta != 0u) {
      store_grad_delta(i, select(g * r.grad_delta, vec2(nan_f32()), bad));
    }
  }
  return select(r.loss, nan_f32(), bad);
}
