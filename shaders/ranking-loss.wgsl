// ranking-loss.wgsl: AP-Loss's and Rank & Sort's maths over the sorted scores (after ranking.wgsl
// and ranking-sort.wgsl): NFP and rank+ by binary search, the per-positive errors, the updates, the
// loss, and the negatives' updates.

// H(x) = clamp(x / (2 delta) + 0.5, 0, 1) for a scaled difference x; x is first held to
// [-2 delta, 2 delta], where the product cannot overflow and H is still exactly 0 or 1 beyond.
fn smooth_step(x: f32) -> f32 {
  let d2 = 2.0 * params.scaled_delta;
  return clamp(clamp(x, -d2, d2) * params.inv_two_scaled_delta + 0.5, 0.0, 1.0);
}

// The first k in [start, count) with fl(sorted[base + k] - s) >= edge (count when none): q - s is
// monotone in q, so the bounds of the ramp are found in difference space.
fn first_diff_at_least(base: u32, start: u32, count: u32, s: f32, edge: f32) -> u32 {
  var lo = start;
  var hi = count;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (getf(base + mid) - s < edge) {
      lo = mid + 1u;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// The first k in [start, count) with fl(s - sorted[base + k]) < edge (count when none).
fn first_diff_below(base: u32, start: u32, count: u32, s: f32, edge: f32) -> u32 {
  var lo = start;
  var hi = count;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (s - getf(base + mid) >= edge) {
      lo = mid + 1u;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// Sum of H(q - s) over sorted scaled scores q at `sorted` (prefix sums F at h, l relative to the
// pivot at sorted index `pivot`): 1 for fl(q - s) >= delta, and over the ramp
// [-delta, delta) m / 2 + sum(q - s) / (2 delta), with sum(q - s) = (F[hi] - F[lo]) - m (s - c).
fn ramp_sum(sorted: u32, h: u32, l: u32, count: u32, pivot: u32, s: f32) -> f32 {
  let d = params.scaled_delta;
  let lo = first_diff_at_least(sorted, 0u, count, s, -d);
  let hi = first_diff_at_least(sorted, lo, count, s, d);
  let m = hi - lo;
  var ramp = 0.0;
  if (m > 0u) {
    let half = 0.5 * f32(m);
    if (getf(sorted + lo) == s && getf(sorted + hi - 1u) == s) {
      // Only ties: each is exactly 1/2.
      ramp = half;
    } else {
      let e = two_sum(s, -getf(sorted + pivot));
      let f_hi = get2(h, l, hi);
      let f_lo = get2(h, l, lo);
      var r = two_sum(f_hi.x, -f_lo.x);
      r.y += (f_hi.y - f_lo.y) - f32(m) * e.y;
      r = acc_mul_count(r, m, -e.x);
      ramp = clamp(half + (r.x + r.y) * params.inv_two_scaled_delta, 0.0, f32(m));
    }
  }
  return f32(count - hi) + ramp;
}

fn grad_output() -> f32 {
  if ((run.flags & FLAG_GRAD_OUTPUT) != 0u) {
    return in_grad_output[0];
  }
  return 1.0;
}

@compute @workgroup_size(WG)
fn rank_nfp(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = thread_id(wid, lid, nwg);
  let np = partials[H_COUNT];
  let tiles = partials[H_TILES];
  if (g >= np * tiles) {
    return;
  }
  let i = g % np;
  let tile = g / np;
  let si = getf(at_pos(P_S) + i);
  let per = partials[H_PER_TILE];
  let first = tile * per;
  let last = min(first + per, sort_blocks());
  var k = vec2(0.0, 0.0);
  for (var b = first; b < last; b++) {
    let c = partials[at_neg_meta() + 2u * b];
    let pivot = partials[at_neg_meta() + 2u * b + 1u];
    let off = b * (SORT_B + 1u);
    k = kahan(k, ramp_sum(at_neg() + b * SORT_B, at_pref_h() + off, at_pref_l() + off, c, pivot, si));
  }
  setf(at_parts() + g, k.x);
}

@compute @workgroup_size(WG)
fn rank_pos1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = thread_id(wid, lid, nwg);
  let np = partials[H_COUNT];
  if (i >= np) {
    return;
  }
  let tiles = partials[H_TILES];
  var nfp = vec2(0.0, 0.0);
  let parts = at_parts();
  for (var t = 0u; t < tiles; t++) {
    nfp = kahan(nfp, getf(parts + t * np + i));
  }
  setf(at_pos(P_NFP) + i, nfp.x);
  let s_at = at_pos(P_S);
  let y_at = at_pos(P_Y);
  let si = getf(s_at + i);
  if (OP == 0u) {
    // rank+(i) = 1 + the sum over the other positives; i's own term is H(0) = 1/2.
    let rp = 0.5 + ramp_sum(at_pos(P_SQ), at_pos(P_QH), at_pos(P_QL), np, partials[H_PIVOT], si);
    let rank = rp + nfp.x;
    setf(at_pos(P_A) + i, rank);
    setf(at_pos(P_B) + i, rp / rank);
  } else {
    // Targets are positive floats here: their bits compare as the values, subnormals included.
    let yi = partials[y_at + i];
    var rp = vec2(0.0, 0.0);
    var all = vec2(0.0, 0.0);
    var top = vec2(0.0, 0.0);
    var top_h = vec2(0.0, 0.0);
    var below = vec2(0.0, 0.0);
    for (var k = 0u; k < np; k++) {
      let h = smooth_step(getf(s_at + k) - si);
      let yk = partials[y_at + k];
      let gap = 1.0 - bitcast<f32>(yk);
      rp = kahan(rp, h);
      all = kahan(all, h * gap);
      if (yk >= yi) {
        top = kahan(top, h * gap);
        top_h = kahan(top_h, h);
      } else {
        below = kahan(below, h);
      }
    }
    // rp and top_h hold H(0) = 1/2 of i itself: both are at least 1/2.
    setf(at_pos(P_A) + i, nfp.x / (rp.x + nfp.x));
    setf(at_pos(P_B) + i, all.x / rp.x - top.x / top_h.x);
    setf(at_pos(P_C) + i, below.x);
  }
}

// AP's interpolated precision: the running max of p over the positives in sorted order.
@compute @workgroup_size(WG)
fn rank_order(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (thread_id(wid, lid, nwg) != 0u || OP != 0u) {
    return;
  }
  let np = partials[H_COUNT];
  var m = 0.0;
  for (var k = 0u; k < np; k++) {
    let slot = partials[at_pos(P_ORDER) + k];
    m = max(m, getf(at_pos(P_B) + slot));
    setf(at_pos(P_C) + slot, m);
  }
}

@compute @workgroup_size(WG)
fn rank_pos2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = thread_id(wid, lid, nwg);
  let np = partials[H_COUNT];
  if (i >= np) {
    return;
  }
  let inv_np = 1.0 / f32(np);
  let nfp = getf(at_pos(P_NFP) + i);
  var update = 0.0;
  if (OP == 0u) {
    let p = getf(at_pos(P_B) + i);
    let ph = getf(at_pos(P_C) + i);
    // ph > p makes 1 - p > 1 - ph >= 0.
    let above = ph > p;
    let f = select(1.0, (1.0 - ph) / select(1.0, 1.0 - p, above), above);
    setf(at_pos(P_W) + i, f / getf(at_pos(P_A) + i) * inv_np);
    update = -(1.0 - ph) * inv_np;
  } else {
    let y_at = at_pos(P_Y);
    let yi = partials[y_at + i];
    let lr = getf(at_pos(P_A) + i);
    let ls = getf(at_pos(P_B) + i);
    let below = getf(at_pos(P_C) + i);
    var u = vec2(-select(0.0, lr, nfp > 1e-10) - select(0.0, ls, below > 1e-10), 0.0);
    let d_at = at_pos(P_C);
    let ls_at = at_pos(P_B);
    let s_at = at_pos(P_S);
    let si = getf(s_at + i);
    for (var m = 0u; m < np; m++) {
      let dm = getf(d_at + m);
      if (dm > 1e-10 && yi < partials[y_at + m]) {
        u = kahan(u, getf(ls_at + m) * smooth_step(si - getf(s_at + m)) / dm);
      }
    }
    let safe = select(1.0, nfp, nfp > 1e-10);
    setf(at_pos(P_W) + i, select(0.0, lr / safe * inv_np, nfp > 1e-10));
    update = u.x * inv_np;
  }
  if ((run.flags & FLAG_GRAD) != 0u) {
    out_grad_logits[partials[at_pos(P_IDX) + i]] = update * grad_output();
  }
}

// The negatives' pass's sums over the positives in sorted order: W, the weights' prefix sums, and
// V, those of w (q - c) relative to the positives' pivot c, outward from it (as pivot_prefix).
@compute @workgroup_size(WG)
fn rank_wprefix(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (thread_id(wid, lid, nwg) != 0u) {
    return;
  }
  let np = partials[H_COUNT];
  let order = at_pos(P_ORDER);
  let sq = at_pos(P_SQ);
  let wh = at_pos(P_WH);
  let wl = at_pos(P_WL);
  let vh = at_pos(P_VH);
  let vl = at_pos(P_VL);
  var w = vec2(0.0, 0.0);
  set2(wh, wl, 0u, w);
  for (var k = 0u; k < np; k++) {
    w = df_add1(w, getf(at_pos(P_W) + partials[order + k]));
    set2(wh, wl, k + 1u, w);
  }
  let pivot = partials[H_PIVOT];
  set2(vh, vl, pivot, vec2(0.0, 0.0));
  if (np == 0u) {
    return;
  }
  let c = getf(sq + pivot);
  var v = vec2(0.0, 0.0);
  for (var k = pivot; k < np; k++) {
    let wk = getf(at_pos(P_W) + partials[order + k]);
    let d = two_sum(getf(sq + k), -c);
    v = add_same_sign(v, acc_mul(vec2(0.0, wk * d.y), wk, d.x));
    set2(vh, vl, k + 1u, v);
  }
  v = vec2(0.0, 0.0);
  for (var k = pivot; k > 0u; k--) {
    let wk = getf(at_pos(P_W) + partials[order + k - 1u]);
    let d = two_sum(c, -getf(sq + k - 1u));
    v = add_same_sign(v, acc_mul(vec2(0.0, wk * d.y), wk, d.x));
    set2(vh, vl, k - 1u, v);
  }
}

@compute @workgroup_size(WG)
fn rank_loss(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (thread_id(wid, lid, nwg) != 0u) {
    return;
  }
  let np = partials[H_COUNT];
  var a = vec2(0.0, 0.0);
  var b = vec2(0.0, 0.0);
  let a_at = at_pos(select(P_A, P_C, OP == 0u));
  let b_at = at_pos(P_B);
  for (var i = 0u; i < np; i++) {
    a = kahan(a, getf(a_at + i));
    if (OP != 0u) {
      b = kahan(b, getf(b_at + i));
    }
  }
  let inv_np = select(0.0, 1.0 / f32(max(np, 1u)), np > 0u);
  let poison = partials[H_POISON];
  var first = a.x * inv_np;
  if (OP == 0u) {
    first = select(0.0, 1.0 - first, np > 0u);
  }
  out_loss[0] = select(first, nan_f32(), (poison & 1u) != 0u);
  if (OP != 0u) {
    out_loss[1] = select(b.x * inv_np, nan_f32(), (poison & 2u) != 0u);
  }
}

@compute @workgroup_size(WG)
fn rank_neg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = thread_id(wid, lid, nwg);
  if (j >= run.n) {
    return;
  }
  let x = in_logits[j];
  let cls = class_of(in_targets[j], x);
  if (cls == C_POS) {
    return;
  }
  if (cls != C_NEG) {
    // Ignored: 0. A NaN score or an invalid target: NaN, as the loss.
    out_grad_logits[j] = select(nan_f32(), 0.0, cls == C_IGNORED);
    return;
  }
  let np = partials[H_COUNT];
  let sj = scaled(x);
  let d = params.scaled_delta;
  var u = 0.0;
  // A negative at or below every positive's score minus delta has H = 0 against all of them.
  if (np > 0u && sj - getf(H_MIN) > -d) {
    // H(s_j - q) over the sorted positive scores q: 1 for fl(s_j - q) >= delta (the first lo),
    // then the ramp down to -delta: W[lo] + sum_ramp w (1/2 + (s_j - q) / (2 delta)), where
    // sum_ramp w (s_j - q) = (s_j - c) (W[hi] - W[lo]) - (V[hi] - V[lo]).
    let sq = at_pos(P_SQ);
    let lo = first_diff_below(sq, 0u, np, sj, d);
    let hi = first_diff_below(sq, lo, np, sj, -d);
    let wh = at_pos(P_WH);
    let wl = at_pos(P_WL);
    let full = get2(wh, wl, lo);
    u = full.x + full.y;
    if (hi > lo) {
      let w_hi = get2(wh, wl, hi);
      let tw = two_sum(w_hi.x, -full.x);
      let w2 = tw.y + (w_hi.y - full.y);
      let w_ramp = tw.x + w2;
      var ramp = 0.5 * w_ramp;
      if (getf(sq + lo) != sj || getf(sq + hi - 1u) != sj) {
        // (s_j - c) (W[hi] - W[lo]) - (V[hi] - V[lo]), its large terms exact.
        let e = two_sum(sj, -getf(sq + partials[H_PIVOT]));
        let v_hi = get2(at_pos(P_VH), at_pos(P_VL), hi);
        let v_lo = get2(at_pos(P_VH), at_pos(P_VL), lo);
        var r = two_sum(v_lo.x, -v_hi.x);
        r.y += (v_lo.y - v_hi.y) + (e.x * w2 + e.y * tw.x);
        r = acc_mul(r, e.x, tw.x);
        ramp = clamp(ramp + (r.x + r.y) * params.inv_two_scaled_delta, 0.0, w_ramp);
      }
      u += ramp;
    }
  }
  out_grad_logits[j] = u * grad_output();
}
