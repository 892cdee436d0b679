// class-balanced-focal.wgsl: class_balanced_focal (Cui et al. 2019, sigmoid focal form; ops.md),
// one output element per logit: cb[y_i] (1 - p_t)^gamma bce(x_ij, t_ij), t_ij = (j == y_i), a
// row whose label is no class weighted 1.
//
// cb[j] = (1 - beta) / (1 - beta^n_j) scaled to sum to c. The common factor (1 - beta) cancels in
// that scaling, so each class contributes r_j = 1 / -expm1(n_j log beta) (0 where n_j <= 0), and
// cb[j] = c r_j / sum_k r_k. The host passes log(beta) in float32 (beta itself would lose four
// digits in 1 - beta). Every workgroup first sums r over the classes from samplesPerClass as it
// lies on the device (entry main_cb), so the weights follow the input with no pass of their own.

struct Params {
  c: u32,
  gamma: f32,
  log_beta: f32,
  beta_zero: u32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_logits: array<f32>;
@group(0) @binding(7) var<storage, read> in_labels: array<i32>;
@group(0) @binding(8) var<storage, read> in_samples_per_class: array<f32>;
@group(0) @binding(9) var<storage, read_write> out_grad_logits: array<f32>;

var<workgroup> cb_scratch: array<f32, WG>;
// c / sum_k r_k, set by main_cb before any element.
var<private> cb_scale: f32;

// Class j's unnormalised weight r_j (beta = 0: 1 - 0^n = 1 for every n > 0). NaN for a count
// that is negative or not finite: the host refuses one, but cannot read counts on the device, and
// such a count enters every class's weight through their sum (ops.md: never a finite wrong number).
fn cb_raw(j: u32) -> f32 {
  let nj = in_samples_per_class[j];
  let den = select(-expm1(nj * params.log_beta), 1.0, params.beta_zero != 0u);
  let r = select(1.0 / max(den, 1.0e-30), 0.0, nj <= 0.0);
  return select(r, nan_f32(), is_non_finite(nj) || nj < 0.0);
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let c = params.c;
  let row = i / c;
  let j = i - row * c;
  let y = in_labels[row];
  let labelled = y >= 0 && y < i32(c);
  let w = select(1.0, cb_scale * cb_raw(u32(clamp(y, 0, i32(c) - 1))), labelled);
  let pos = i32(j) == y;
  let lg = logistic(in_logits[i]);
  let s = lg.x;
  let sn = lg.y;
  let q = select(s, sn, pos); // 1 - p_t
  let bce = select(lg.z, lg.w, pos);
  let gamma = params.gamma;
  let qg = pow0(q, gamma);
  if (want_grad) {
    // d q^gamma / dx = gamma q^gamma (dq/dx) / q, (dq/dx) / q = -s (label column) or sn
    let dqg = gamma * qg * select(sn, -s, pos);
    out_grad_logits[i] = g * w * (select(s, -sn, pos) * qg + bce * dqg);
  }
  return w * qg * bce;
}

// fused.wgsl's main, after every workgroup has summed the class weights (a tree over WG lanes).
@compute @workgroup_size(WG)
fn main_cb(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  var part = 0.0;
  for (var j = lane; j < params.c; j += WG) {
    part += cb_raw(j);
  }
  cb_scratch[lane] = part;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if (lane < half) {
      cb_scratch[lane] = cb_scratch[lane] + cb_scratch[lane + half];
    }
    workgroupBarrier();
  }
  // A NaN sum (an invalid count) makes every class's weight NaN; safe_div's test of it for 0 would
  // not be reliable.
  let total = cb_scratch[0];
  cb_scale = select(safe_div(f32(params.c), total), nan_f32(), is_nan(total));

  let tid = gid.x + gid.y * nwg.x * WG;
  if (tid >= run.threads) {
    return;
  }
  let store = has_flag(FLAG_STORE_LOSS);
  let want_grad = has_flag(FLAG_GRAD);
  let go = scalar_grad_output();
  var acc = vec2(0.0);
  for (var i = tid; i < run.n; i += run.threads) {
    let f = element_factors(i, go);
    let l = f.x * element_loss(i, f.y, want_grad);
    if (store) {
      out_loss[i] = l;
    } else {
      acc = kahan_add(acc, l * run.scale);
    }
  }
  if (!store) {
    partials[tid] = acc.x;
  }
}
