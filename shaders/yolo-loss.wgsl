// yolo-loss.wgsl: the YOLO loss's terms and gradients per (image, anchor) (tal.wgsl, ops.md
// steps 4 and 5). BCE over the anchor's classes; at a foreground anchor with a target score w > 0,
// the CIoU of its decoded box with its gt's in grid units and the DFL of its distances to that gt.
// The terms go to PART unnormalised (yolo_sum adds them in a fixed order); the gradients of
// gradOutput * loss = gradOutput * b * (box + cls + dfl), every term over the normaliser tss,
// are written here. The assignment, w, the targets, tss and CIoU's k are constants.

@group(0) @binding(3) var<storage, read> in_pred_dist: array<f32>;
@group(0) @binding(4) var<storage, read> in_pred_scores: array<f32>;
@group(0) @binding(5) var<storage, read> in_grad_output: array<f32>;
@group(0) @binding(6) var<storage, read_write> out_grad_pred_dist: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_grad_pred_scores: array<f32>;

// The DFL term of one side and the gradient of (its weight) * that term and of the distance's
// upstream gradient `dd` into its r logits: sum_i z_i's share of wl * CE(z, lo) + wr * CE(z, lo + 1)
// (scaled by `gdfl`) and of d = sum_i i q_i (dd * q_i (i - d)).
fn dfl_side_grad(base: u32, r: u32, dist: f32, gdfl: f32, dd: f32, want_grad: bool) -> f32 {
  let soft = dfl_softmax(base, r);
  let m = soft.x;
  let s = soft.y;
  let d = soft.z / s;
  let lse = m + log(s);
  let t = clamp(dist, 0.0, f32(r) - 1.01);
  let lo = u32(floor(t));
  let wl = f32(lo) + 1.0 - t;
  let wr = 1.0 - wl;
  let term = wl * (lse - in_pred_dist[base + lo]) + wr * (lse - in_pred_dist[base + lo + 1u]);
  if (want_grad) {
    for (var k = 0u; k < r; k++) {
      let q = exp(in_pred_dist[base + k] - m) / s;
      let hot = select(0.0, wl, k == lo) + select(0.0, wr, k == lo + 1u);
      out_grad_pred_dist[base + k] = gdfl * (q - hot) + dd * q * (f32(k) - d);
    }
  }
  return term;
}

@compute @workgroup_size(WG)
fn yolo_loss(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = thread_index(gid, nwg);
  if (i >= params.b * params.a) {
    return;
  }
  let want_grad = has_flag(FLAG_GRAD);
  let go = select(1.0, in_grad_output[0], has_flag(FLAG_GRAD_OUTPUT));
  // d(gradOutput * loss) / d(term), for a term summed into box, cls or dfl before the gains.
  let unit = go * f32(params.b) / getf(params.off_tot);
  let g = bitcast<i32>(partials[params.off_anc + i]);
  let w = getf(params.off_ts + i);
  let cls_of = select(params.c, partials[params.off_alab + i], g >= 0);
  // BCE over the classes: softplus(x) - x t, gradient sigmoid(x) - t.
  let nc = params.c;
  var cls = 0.0;
  for (var c = 0u; c < nc; c++) {
    let x = in_pred_scores[i * nc + c];
    let t = select(0.0, w, c == cls_of);
    let l = logistic(x);
    cls += l.z - x * t;
    if (want_grad) {
      out_grad_pred_scores[i * nc + c] = (l.x - t) * unit * params.cls_gain;
    }
  }
  let r = params.d / 4u;
  let base = i * params.d;
  var box = 0.0;
  var dfl = 0.0;
  if (g >= 0 && w > 0.0) {
    let a = i % params.a;
    let at = params.off_anch + 3u * a;
    let anchor = vec2(getf(at), getf(at + 1u));
    let stride = getf(at + 2u);
    let gb = params.off_abox + 4u * i;
    let tbox = vec4(getf(gb), getf(gb + 1u), getf(gb + 2u), getf(gb + 3u)) / stride;
    let d = dfl_distances(i);
    let pred = vec4(anchor - d.xy, anchor + d.zw);
    let ci = ciou_u(pred, tbox, want_grad);
    box = w * (1.0 - ci.value);
    // d/d(distance): left and top move the box's first corner back, right and bottom its second.
    let gp = ci.grad * (w * unit * params.box_gain);
    let dd = vec4(-gp.x, -gp.y, gp.z, gp.w);
    let dist = vec4(anchor - tbox.xy, tbox.zw - anchor);
    let gdfl = 0.25 * w * unit * params.dfl_gain;
    let terms = dfl_side_grad(base, r, dist.x, gdfl, dd.x, want_grad) + dfl_side_grad(base + r, r, dist.y, gdfl, dd.y, want_grad) +
      dfl_side_grad(base + 2u * r, r, dist.z, gdfl, dd.z, want_grad) + dfl_side_grad(base + 3u * r, r, dist.w, gdfl, dd.w, want_grad);
    dfl = w * 0.25 * terms;
  } else if (want_grad) {
    for (var k = 0u; k < params.d; k++) {
      out_grad_pred_dist[base + k] = 0.0;
    }
  }
  let at = params.off_part + 3u * i;
  setf(at, box);
  setf(at + 1u, cls);
  setf(at + 2u, dfl);
}
