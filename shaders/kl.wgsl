// kl.wgsl: kl_div, distillation from teacher logits (ops.md): T^2 sum_j p_j (log p_j - log q_j),
// p = softmax(teacher/T), q = softmax(student/T), divided by c for classReduction 'mean'.
// Gradient for the student only: T (q_j - p_j) (/ c).

struct Params {
  c: u32,
  temperature: f32,
  class_div: f32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_student: array<f32>;
@group(0) @binding(7) var<storage, read> in_teacher: array<f32>;
@group(0) @binding(8) var<storage, read_write> out_grad_student: array<f32>;

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
  let lset = mt + log(st);
  let lses = ms + log(ss);
  var kl = 0.0;
  for (var j = 0u; j < c; j++) {
    let lp = in_teacher[base + j] * inv_t - lset;
    let lq = in_student[base + j] * inv_t - lses;
    let p = exp(lp);
    kl += p * (lp - lq);
    if (want_grad) {
      out_grad_student[base + j] = g * params.temperature * (exp(lq) - p) / params.class_div;
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
  for (var j = lane; j < c; j += WG) {
    mt = max(mt, in_teacher[base + j] * inv_t);
    ms = max(ms, in_student[base + j] * inv_t);
  }
  mt = wg_max(mt, lane);
  ms = wg_max(ms, lane);
  var st = 0.0;
  var ss = 0.0;
  for (var j = lane; j < c; j += WG) {
    st += exp(in_teacher[base + j] * inv_t - mt);
    ss += exp(in_student[base + j] * inv_t - ms);
  }
  let lset = mt + log(wg_sum(st, lane));
  let lses = ms + log(wg_sum(ss, lane));
  var kl = 0.0;
  for (var j = lane; j < c; j += WG) {
    let lp = in_teacher[base + j] * inv_t - lset;
    let lq = in_student[base + j] * inv_t - lses;
    let p = exp(lp);
    kl += p * (lp - lq);
    if (want_grad) {
      out_grad_student[base + j] = g * params.temperature * (exp(lq) - p) / params.class_div;
    }
  }
  return params.temperature * params.temperature * wg_sum(kl, lane) / params.class_div;
}
