// ranking.wgsl: AP-Loss (OP 0) and Rank & Sort (OP 1), ops.md "Ranking losses"; a program of
// passes (src/runtime/program.ts), not the fused element-wise pass. Positives: target > 0,
// negatives: target == 0, the rest ignored. H is piecewise linear in the score, so a sum of H over
// sorted scores is a count above the ramp plus a linear term over the scores on it, which prefix
// sums give: the negatives are sorted in blocks of SORT_B, the positives as a whole, and each
// positive (or negative) binary-searches them instead of visiting every element. The passes:
//   rank_count     one thread per BLOCK elements: its positives and their lowest score
//   rank_scan      one thread: block offsets, |P|, min score, the tiling, the indirect grids
//   rank_compact   one thread per BLOCK elements: the positives' index, score and target
//   rank_sort_neg  one lane per workgroup and SORT_B elements: its negatives sorted, prefix sums
//   rank_sort_pos  one thread: the positives by ascending score, ties by index; prefix sums
//   rank_nfp       one thread per (positive, tile of sort blocks): NFP, by binary search
//   rank_pos1      one thread per positive: rank+ and the per-positive errors
//   rank_order     one thread: AP's interpolated precision, a running max in sorted order
//   rank_pos2      one thread per positive: its update, and its weight for the negatives
//   rank_wprefix   one thread: prefix sums of the weights in sorted order
//   rank_loss      one thread: the loss
//   rank_neg       one thread per element: a negative's update, by binary search
// Every sum is compensated (Kahan) and runs in a fixed order; no atomics, no barriers, so the
// same inputs give the same bits. Rank & Sort's sorting error compares every positive with every
// other (O(|P|^2), |P| being small next to n).

override WG: u32 = 64u;
override OP: u32 = 0u;

const FLAG_GRAD_OUTPUT: u32 = 2u;
const FLAG_GRAD: u32 = 16u;

// The host's sizes (src/ops/ranking.ts) use the same numbers.
const BLOCK: u32 = 256u;
const SORT_B: u32 = 4096u;
const TILE_CAP: u32 = 1048576u;
const BIG: f32 = 3.4028234e38;

// n: elements; threads: the positives' capacity of the scratch; flags as in fused.wgsl.
struct Run {
  n: u32,
  threads: u32,
  flags: u32,
  scale: f32,
}

struct Params {
  n: u32,
  delta: f32,
  inv_two_delta: f32,
}

@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<storage, read> in_weight: array<f32>;
@group(0) @binding(2) var<storage, read> in_grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> out_loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<u32>;
@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_logits: array<f32>;
@group(0) @binding(7) var<storage, read> in_targets: array<f32>;
@group(0) @binding(8) var<storage, read_write> out_grad_logits: array<f32>;

// The scratch (`partials`, u32 words): a header, per-block counts, per-positive arrays, the
// sorted negatives with their prefix sums, and the NFP partials.
const H_COUNT: u32 = 0u;
const H_TILES: u32 = 1u;
const H_PER_TILE: u32 = 2u;
const H_MIN: u32 = 3u;
const H_ARGS_POS: u32 = 4u;
const H_ARGS_NFP: u32 = 7u;
const HEAD: u32 = 16u;

// Per-positive arrays (cap + 1 words each), by slot (index order) unless said:
const P_IDX: u32 = 0u;
const P_S: u32 = 1u;
const P_Y: u32 = 2u;
const P_NFP: u32 = 3u;
// 4, 5, 6: AP rank, p, ph; Rank & Sort lr, ls, D.
const P_A: u32 = 4u;
const P_B: u32 = 5u;
const P_C: u32 = 6u;
const P_W: u32 = 7u;
// In sorted order: the slots, their scores, and prefix sums (hi, compensation) of the score, the
// weight and the weight times the score.
const P_ORDER: u32 = 8u;
const P_SQ: u32 = 9u;
const P_QH: u32 = 10u;
const P_QL: u32 = 11u;
const P_WH: u32 = 12u;
const P_WL: u32 = 13u;
const P_VH: u32 = 14u;
const P_VL: u32 = 15u;
const P_ARRAYS: u32 = 16u;

fn blocks() -> u32 {
  return (run.n + BLOCK - 1u) / BLOCK;
}
fn sort_blocks() -> u32 {
  return (run.n + SORT_B - 1u) / SORT_B;
}
fn at_counts() -> u32 {
  return HEAD;
}
fn at_block_min() -> u32 {
  return HEAD + blocks();
}
fn at_pos(k: u32) -> u32 {
  return HEAD + 2u * blocks() + k * (run.threads + 1u);
}
fn at_neg_count() -> u32 {
  return at_pos(P_ARRAYS);
}
fn at_neg() -> u32 {
  return at_neg_count() + sort_blocks();
}
fn at_pref_h() -> u32 {
  return at_neg() + run.n;
}
fn at_pref_l() -> u32 {
  return at_pref_h() + sort_blocks() * (SORT_B + 1u);
}
fn at_parts() -> u32 {
  return at_pref_l() + sort_blocks() * (SORT_B + 1u);
}

fn getf(i: u32) -> f32 {
  return bitcast<f32>(partials[i]);
}
fn setf(i: u32, v: f32) {
  partials[i] = bitcast<u32>(v);
}

fn thread_id(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// H(x) = clamp(x / (2 delta) + 0.5, 0, 1); x is first held to [-2 delta, 2 delta], where the
// product cannot overflow and H is still exactly 0 or 1 beyond.
fn smooth_step(x: f32) -> f32 {
  let d2 = 2.0 * params.delta;
  return clamp(clamp(x, -d2, d2) * params.inv_two_delta + 0.5, 0.0, 1.0);
}

// Kahan summation: .x the sum, .y the compensation (the sum is x - y).
fn kahan(k: vec2<f32>, v: f32) -> vec2<f32> {
  let y = v - k.y;
  let t = k.x + y;
  return vec2(t, (t - k.x) - y);
}

// The difference of two compensated prefix sums at a < b.
fn prefix_diff(h: u32, l: u32, a: u32, b: u32) -> f32 {
  return (getf(h + b) - getf(h + a)) - (getf(l + b) - getf(l + a));
}

// The first k in [0, count) with sorted[base + k] >= v (count when none).
fn lower_bound(base: u32, count: u32, v: f32) -> u32 {
  var lo = 0u;
  var hi = count;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (getf(base + mid) < v) {
      lo = mid + 1u;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// Sum of H(q - s) over sorted scores q (with compensated prefix sums at h, l): 1 for q >= s + delta,
// (q - s + delta) / (2 delta) on the ramp s - delta <= q < s + delta.
fn ramp_sum(sorted: u32, h: u32, l: u32, count: u32, s: f32) -> f32 {
  let start = s - params.delta;
  let lo = lower_bound(sorted, count, start);
  let hi = lower_bound(sorted, count, s + params.delta);
  let ramp = prefix_diff(h, l, lo, hi) - f32(hi - lo) * start;
  return f32(count - hi) + max(ramp, 0.0) * params.inv_two_delta;
}

fn grad_output() -> f32 {
  if ((run.flags & FLAG_GRAD_OUTPUT) != 0u) {
    return in_grad_output[0];
  }
  return 1.0;
}

// Workgroups for `threads` threads, split over x and y within the 65535 limit.
fn grid(threads: u32) -> vec2<u32> {
  let g = (threads + WG - 1u) / WG;
  return vec2(min(g, 65535u), (g + 65534u) / 65535u);
}

@compute @workgroup_size(WG)
fn rank_count(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = thread_id(wid, lid, nwg);
  if (b >= blocks()) {
    return;
  }
  let lo = b * BLOCK;
  let hi = min(lo + BLOCK, run.n);
  var c = 0u;
  var m = BIG;
  for (var j = lo; j < hi; j++) {
    if (in_targets[j] > 0.0) {
      c++;
      m = min(m, in_logits[j]);
    }
  }
  partials[at_counts() + b] = c;
  setf(at_block_min() + b, m);
}

@compute @workgroup_size(WG)
fn rank_scan(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (thread_id(wid, lid, nwg) != 0u) {
    return;
  }
  var off = 0u;
  var m = BIG;
  for (var b = 0u; b < blocks(); b++) {
    let c = partials[at_counts() + b];
    partials[at_counts() + b] = off;
    off += c;
    m = min(m, getf(at_block_min() + b));
  }
  let nsb = sort_blocks();
  var tiles = 1u;
  if (off > 0u) {
    tiles = max(1u, min(nsb, TILE_CAP / off));
  }
  partials[H_COUNT] = off;
  partials[H_TILES] = tiles;
  partials[H_PER_TILE] = (nsb + tiles - 1u) / tiles;
  setf(H_MIN, m);
  let gp = grid(off);
  partials[H_ARGS_POS] = gp.x;
  partials[H_ARGS_POS + 1u] = gp.y;
  partials[H_ARGS_POS + 2u] = 1u;
  let gn = grid(off * tiles);
  partials[H_ARGS_NFP] = gn.x;
  partials[H_ARGS_NFP + 1u] = gn.y;
  partials[H_ARGS_NFP + 2u] = 1u;
}

@compute @workgroup_size(WG)
fn rank_compact(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = thread_id(wid, lid, nwg);
  if (b >= blocks()) {
    return;
  }
  var k = partials[at_counts() + b];
  let lo = b * BLOCK;
  let hi = min(lo + BLOCK, run.n);
  for (var j = lo; j < hi; j++) {
    let t = in_targets[j];
    if (t > 0.0) {
      partials[at_pos(P_IDX) + k] = j;
      setf(at_pos(P_S) + k, in_logits[j]);
      setf(at_pos(P_Y) + k, t);
      k++;
    }
  }
}

// One lane per workgroup sorts one block of SORT_B elements: a workgroup is the unit a core takes.
@compute @workgroup_size(WG)
fn rank_sort_neg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = wid.y * nwg.x + wid.x;
  if (lid.x != 0u || b >= sort_blocks()) {
    return;
  }
  let base = at_neg() + b * SORT_B;
  let lo = b * SORT_B;
  let hi = min(lo + SORT_B, run.n);
  var c = 0u;
  for (var j = lo; j < hi; j++) {
    if (in_targets[j] == 0.0) {
      setf(base + c, in_logits[j]);
      c++;
    }
  }
  partials[at_neg_count() + b] = c;
  var start = c / 2u;
  while (start > 0u) {
    start--;
    sift_down(base, start, c, false);
  }
  var end = c;
  while (end > 1u) {
    end--;
    let t = partials[base];
    partials[base] = partials[base + end];
    partials[base + end] = t;
    sift_down(base, 0u, end, false);
  }
  let h = at_pref_h() + b * (SORT_B + 1u);
  let l = at_pref_l() + b * (SORT_B + 1u);
  var k = vec2(0.0, 0.0);
  setf(h, 0.0);
  setf(l, 0.0);
  for (var m = 0u; m < c; m++) {
    k = kahan(k, getf(base + m));
    setf(h + m + 1u, k.x);
    setf(l + m + 1u, k.y);
  }
}

// Positive slot a before slot b: lower score, or the same score and a lower index (slots are in
// index order).
fn before(a: u32, b: u32) -> bool {
  let sa = getf(at_pos(P_S) + a);
  let sb = getf(at_pos(P_S) + b);
  return sa < sb || (sa == sb && a < b);
}

// The heaps' order: f32 values themselves (the negatives' scores), or, with `slots`, the
// positives that u32 slot numbers name (`before`).
fn heap_less(x: u32, y: u32, slots: bool) -> bool {
  if (slots) {
    return before(partials[x], partials[y]);
  }
  return getf(x) < getf(y);
}

// The sift-down of a max-heap at base (heapsort, ascending in heap_less's order).
fn sift_down(base: u32, start: u32, end: u32, slots: bool) {
  var root = start;
  loop {
    let child = 2u * root + 1u;
    if (child >= end) {
      break;
    }
    var top = root;
    if (heap_less(base + top, base + child, slots)) {
      top = child;
    }
    if (child + 1u < end && heap_less(base + top, base + child + 1u, slots)) {
      top = child + 1u;
    }
    if (top == root) {
      break;
    }
    let t = partials[base + root];
    partials[base + root] = partials[base + top];
    partials[base + top] = t;
    root = top;
  }
}


@compute @workgroup_size(WG)
fn rank_sort_pos(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (thread_id(wid, lid, nwg) != 0u) {
    return;
  }
  let np = partials[H_COUNT];
  let base = at_pos(P_ORDER);
  for (var k = 0u; k < np; k++) {
    partials[base + k] = k;
  }
  var start = np / 2u;
  while (start > 0u) {
    start--;
    sift_down(base, start, np, true);
  }
  var end = np;
  while (end > 1u) {
    end--;
    let t = partials[base];
    partials[base] = partials[base + end];
    partials[base + end] = t;
    sift_down(base, 0u, end, true);
  }
  var q = vec2(0.0, 0.0);
  setf(at_pos(P_QH), 0.0);
  setf(at_pos(P_QL), 0.0);
  for (var k = 0u; k < np; k++) {
    let s = getf(at_pos(P_S) + partials[base + k]);
    setf(at_pos(P_SQ) + k, s);
    q = kahan(q, s);
    setf(at_pos(P_QH) + k + 1u, q.x);
    setf(at_pos(P_QL) + k + 1u, q.y);
  }
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
    let c = partials[at_neg_count() + b];
    let off = b * (SORT_B + 1u);
    k = kahan(k, ramp_sum(at_neg() + b * SORT_B, at_pref_h() + off, at_pref_l() + off, c, si));
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
    let rp = 0.5 + ramp_sum(at_pos(P_SQ), at_pos(P_QH), at_pos(P_QL), np, si);
    let rank = rp + nfp.x;
    setf(at_pos(P_A) + i, rank);
    setf(at_pos(P_B) + i, rp / rank);
  } else {
    let yi = getf(y_at + i);
    var rp = vec2(0.0, 0.0);
    var all = vec2(0.0, 0.0);
    var top = vec2(0.0, 0.0);
    var top_h = vec2(0.0, 0.0);
    var below = vec2(0.0, 0.0);
    for (var k = 0u; k < np; k++) {
      let h = smooth_step(getf(s_at + k) - si);
      let yk = getf(y_at + k);
      rp = kahan(rp, h);
      all = kahan(all, h * (1.0 - yk));
      if (yk >= yi) {
        top = kahan(top, h * (1.0 - yk));
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
  let si = getf(at_pos(P_S) + i);
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
    let yi = getf(at_pos(P_Y) + i);
    let lr = getf(at_pos(P_A) + i);
    let ls = getf(at_pos(P_B) + i);
    let below = getf(at_pos(P_C) + i);
    var u = vec2(-select(0.0, lr, nfp > 1e-10) - select(0.0, ls, below > 1e-10), 0.0);
    let d_at = at_pos(P_C);
    let y_at = at_pos(P_Y);
    let ls_at = at_pos(P_B);
    let s_at = at_pos(P_S);
    for (var m = 0u; m < np; m++) {
      let dm = getf(d_at + m);
      if (dm > 1e-10 && yi < getf(y_at + m)) {
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

// Prefix sums of the weights w and of w * score, in sorted order, for the negatives' pass.
@compute @workgroup_size(WG)
fn rank_wprefix(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (thread_id(wid, lid, nwg) != 0u) {
    return;
  }
  let np = partials[H_COUNT];
  var w = vec2(0.0, 0.0);
  var v = vec2(0.0, 0.0);
  setf(at_pos(P_WH), 0.0);
  setf(at_pos(P_WL), 0.0);
  setf(at_pos(P_VH), 0.0);
  setf(at_pos(P_VL), 0.0);
  for (var k = 0u; k < np; k++) {
    let wk = getf(at_pos(P_W) + partials[at_pos(P_ORDER) + k]);
    w = kahan(w, wk);
    v = kahan(v, wk * getf(at_pos(P_SQ) + k));
    setf(at_pos(P_WH) + k + 1u, w.x);
    setf(at_pos(P_WL) + k + 1u, w.y);
    setf(at_pos(P_VH) + k + 1u, v.x);
    setf(at_pos(P_VL) + k + 1u, v.y);
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
  if (OP == 0u) {
    out_loss[0] = select(0.0, 1.0 - a.x * inv_np, np > 0u);
  } else {
    out_loss[0] = a.x * inv_np;
    out_loss[1] = b.x * inv_np;
  }
}

@compute @workgroup_size(WG)
fn rank_neg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = thread_id(wid, lid, nwg);
  if (j >= run.n) {
    return;
  }
  let t = in_targets[j];
  if (t > 0.0) {
    return;
  }
  let np = partials[H_COUNT];
  let sj = in_logits[j];
  var u = 0.0;
  // A negative below every positive's score minus delta has H = 0 against all of them.
  if (t == 0.0 && np > 0u && smooth_step(sj - getf(H_MIN)) > 0.0) {
    // H(s_j - q) over the sorted positive scores q: 1 for q <= s_j - delta, then the ramp
    // (s_j + delta - q) / (2 delta) up to s_j + delta.
    let sq = at_pos(P_SQ);
    let lo = lower_bound(sq, np, sj - params.delta);
    let hi = lower_bound(sq, np, sj + params.delta);
    let full = getf(at_pos(P_WH) + lo) - getf(at_pos(P_WL) + lo);
    let ramp = (sj + params.delta) * prefix_diff(at_pos(P_WH), at_pos(P_WL), lo, hi) - prefix_diff(at_pos(P_VH), at_pos(P_VL), lo, hi);
    u = full + max(ramp, 0.0) * params.inv_two_delta;
  }
  out_grad_logits[j] = u * grad_output();
}
