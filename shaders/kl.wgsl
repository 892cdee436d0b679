// kl.wgsl: kl_div, distillation from teacher logits (ops.md): T^2 sum_j p_j (log p_j - log q_j),
// p = softmax(teacher/T), q = softmax(student/T), divided by c for classReduction 'mean'.
// Gradient for the student only: T (q_j - p_j) (/ c).
//
// For near-identical rows log p_j - log q_j is far smaller than either log, and the sum of
// p_j (log p_j - log q_j) far smaller than its terms. So, with delta_j = (t_j - s_j)/T (one exact
// subtraction of close logits) and D = lse_t - lse_s = log1p(sum_j q_j expm1(delta_j)):
//   l_j = log p_j - log q_j = delta_j - D
//   kl  = sum_j q_j psi(l_j), psi(l) = (l - 1) e^l + 1 >= 0   (sum_j p_j l_j plus sum_j (q_j - p_j) = 0)
//   T (q_j - p_j) = -T q_j expm1(l_j)
// No step subtracts nearly equal numbers. Far-apart rows take D = lse_t - lse_s directly.
//
// A teacher logit of -Inf (p_j = 0) against a finite student logit keeps this form: its term of y
// is -q_j, its share of the loss q_j psi(-Inf) = q_j, and of the gradient T q_j (kl_teacher_zero).
// A row with any other value that is not finite takes PyTorch's F.kl_div term by term instead,
// xlogy(p_j, p_j) - p_j log q_j (kl_direct): +Inf where q_j = 0 < p_j (a student logit of -Inf),
// NaN where both are 0 or a softmax is undefined (a NaN or +Inf logit, a row of -Inf). Such a row
// is marked by a NaN in its sum y (kl_y_term), which every lane sees. (Term by term, a row of
// nearly equal logits would lose the loss in the cancellation of p log p and p log q.)

struct Params {
  c: u32,
  temperature: f32,
  class_div: f32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_student: array<f32>;
@group(0) @binding(7) var<storage, read> in_teacher: array<f32>;
@group(0) @binding(8) var<storage, read_write> out_grad_student: array<f32>;

// One term of y = sum_j q_j expm1(delta_j) = e^(lse_t - lse_s) - 1. The exponent is capped at 80:
// a capped term puts y far outside kl_shift's window.
fn kl_y_term(t: f32, s: f32, inv_t: f32, lses: f32) -> f32 {
  let lq = s * inv_t - lses;
  let delta = (t - s) * inv_t;
  let q = exp(lq);
  let term = select(exp(min(lq + delta, 80.0)) - q, q * expm1(clamp(delta, -1.0, 1.0)), abs(delta) < 1.0);
  let zero_p = kl_teacher_zero(t, s);
  return select(select(term, nan_f32(), is_non_finite(t) || is_non_finite(s)), -exp(select(lq, 0.0, !zero_p)), zero_p);
}

// Whether a teacher logit of -Inf (p = 0) meets a finite student logit: the term's limit is finite.
fn kl_teacher_zero(t: f32, s: f32) -> bool {
  return t < 0.0 && is_non_finite(t) && !is_non_finite(s);
}

// xlogy(p, p) - p log q for one class of a row with a value that is not finite (see above).
fn kl_direct(t: f32, s: f32, inv_t: f32, lset: f32, lses: f32) -> f32 {
  let lp = t * inv_t - lset;
  let lq = s * inv_t - lses;
  let p = select(exp(lp), 0.0, t < 0.0 && is_non_finite(t));
  let term = select(p * lp, 0.0, p == 0.0) - p * lq;
  let undefined = is_nan(t) || is_nan(s) || (t > 0.0 && is_non_finite(t)) || (s > 0.0 && is_non_finite(s));
  return select(term, nan_f32(), undefined || is_non_finite(lset) || is_non_finite(lses));
}

// m + log(s), the log-sum-exp of a row from its maximum m and sum s of exp(x - m); NaN where the
// softmax is undefined: s is 0 (a row of -Inf, whose maximum a workgroup starts below) or not
// finite. Tested by bits and comparisons, not through log: some implementations' log(0) is finite.
fn kl_lse(m: f32, s: f32) -> f32 {
  return select(m + log(s), nan_f32(), is_non_finite(s) || s <= 0.0);
}

// D = lse_t - lse_s: from y where log1p is well conditioned, else directly.
fn kl_shift(y: f32, lset: f32, lses: f32) -> f32 {
  return select(lset - lses, log1p(clamp(y, -0.5, 1.0)), y > -0.5 && y < 1.0);
}

// psi(l) = (l - 1) e^l + 1 = sum_{k>=2} (k-1) l^k / k!, for |l| < 0.5.
fn kl_psi_series(l: f32) -> f32 {
  let p = 1.0 / 5760.0 + l * (1.0 / 45360.0 + l * (1.0 / 403200.0 + l / 3991680.0));
  return l * l * (0.5 + l * (1.0 / 3.0 + l * (0.125 + l * (1.0 / 30.0 + l * (1.0 / 144.0 + l * (1.0 / 840.0 + l * p))))));
}

// (q psi(l), T (q - p)) for one class, unscaled by T^2 / class_div.
fn kl_entry(t: f32, s: f32, inv_t: f32, lset: f32, lses: f32, d: f32) -> vec2<f32> {
  let q = exp(s * inv_t - lses);
  if (kl_teacher_zero(t, s)) {
    // p = 0: q psi(-Inf) = q, and T (q - p) = T q; NaN where a row's softmax is undefined (a
    // teacher row of -Inf: lset is NaN).
    return select(vec2(q, params.temperature * q), vec2(nan_f32()), is_non_finite(lset) || is_non_finite(lses));
  }
  let p = exp(t * inv_t - lset);
  let l = (t - s) * inv_t - d;
  let el = exp(min(l, 80.0));
  // From l = 1 on (p > e q), p (l - 1) + q with p taken directly: nothing cancels, and a q below
  // float32's normal range (flushed to 0) no longer takes p's share with it, nor overflows q e^l.
  let direct = select(q * ((l - 1.0) * el + 1.0), p * (l - 1.0) + q, l >= 1.0);
  let term = select(direct, q * kl_psi_series(l), abs(l) < 0.5);
  // q - p cancels only where p and q are close (|l| < 1); there -q expm1(l), else q - p as it is.
  let dq = select(q - p, -q * expm1(l), abs(l) < 1.0);
  return vec2(term, params.temperature * dq);
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  let base = i * c;
  let inv_t = 1.0 / params.temperature;
  var mt = in_teacher[base] * inv_t;
  var ms = in_student[base] * inv_t;
  for (var j = 1u; j < c; j++) {
    mt = max(mt, in_teacher[base + j] * inv_t);
    ms = max(ms, in_student[base + j] * inv_t);
  }
  var st = 0.0;
  var ss = 0.0;
  for (var j = 0u; j < c; j++) {
    st += exp(in_teacher[base + j] * inv_t - mt);
    ss += exp(in_student[base + j] * inv_t - ms);
  }
  let lset = kl_lse(mt, st);
  let lses = kl_lse(ms, ss);
  var y = 0.0;
  for (var j = 0u; j < c; j++) {
    y += kl_y_term(in_teacher[base + j], in_student[base + j], inv_t, lses);
  }
  let d = kl_shift(y, lset, lses);
  let direct = is_nan(y);
  var kl = 0.0;
  for (var j = 0u; j < c; j++) {
    let t = in_teacher[base + j];
    let sj = in_student[base + j];
    let r = kl_entry(t, sj, inv_t, lset, lses, d);
    kl += select(r.x, kl_direct(t, sj, inv_t, lset, lses), direct);
    if (want_grad) {
      out_grad_student[base + j] = g * r.y / params.class_div;
    }
  }
  return params.temperature * params.temperature * kl / params.class_div;
}

fn row_loss_wg(row: u32, lane: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  let base = row * c;
  let inv_t = 1.0 / params.temperature;
  var mt = -3.0e38;
  var ms = -3.0e38;
  for (var j = lane; j < c; j += row_lanes()) {
    mt = max(mt, in_teacher[base + j] * inv_t);
    ms = max(ms, in_student[base + j] * inv_t);
  }
  mt = row_max(mt, lane);
  ms = row_max(ms, lane);
  var st = 0.0;
  var ss = 0.0;
  for (var j = lane; j < c; j += row_lanes()) {
    st += exp(in_teacher[base + j] * inv_t - mt);
    ss += exp(in_student[base + j] * inv_t - ms);
  }
  let lset = kl_lse(mt, row_sum(st, lane));
  let lses = kl_lse(ms, row_sum(ss, lane));
  var y = 0.0;
  for (var j = lane; j < c; j += row_lanes()) {
    y += kl_y_term(in_teacher[base + j], in_student[base + j], inv_t, lses);
  }
  let y_row = row_sum(y, lane);
  let d = kl_shift(y_row, lset, lses);
  let direct = is_nan(y_row);
  var kl = 0.0;
  for (var j = lane; j < c; j += row_lanes()) {
    let t = in_teacher[base + j];
    let sj = in_student[base + j];
    let r = kl_entry(t, sj, inv_t, lset, lses, d);
    kl += select(r.x, kl_direct(t, sj, inv_t, lset, lses), direct);
    if (want_grad) {
      out_grad_student[base + j] = g * r.y / params.class_div;
    }
  }
  return params.temperature * params.temperature * row_sum(kl, lane) / params.class_div;
}
