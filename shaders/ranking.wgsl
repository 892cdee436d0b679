// ranking.wgsl: AP-Loss (OP 0) and Rank & Sort (OP 1), ops.md "Ranking losses"; a program of
// passes (src/runtime/program.ts), not the fused element-wise pass. Positives: target > 0,
// negatives: target == 0, the rest ignored; a target outside the op's set (possible only for
// targets on the GPU, the host refuses them) makes the loss NaN. H is piecewise linear in the score, so a sum of H over
// sorted scores is a count above the ramp plus a linear term over the scores on it, which prefix
// sums give: the negatives are sorted in blocks of SORT_B, the positives as a whole, and each
// positive (or negative) binary-searches them instead of visiting every element. The passes:
//   rank_count     one thread per BLOCK elements: its positives, their lowest score, its flags
//   rank_scan      one thread: block offsets, |P|, min score, flags, the tiling, the indirect grids
//   rank_compact   one thread per BLOCK elements: the positives' index, score and target
//   rank_sort_neg  one lane per workgroup and SORT_B elements: its negatives radix-sorted, prefix
//                  sums
//   rank_sort_pos  one thread: the positives by ascending score, ties by index; prefix sums; which
//                  loss elements non-finite input makes NaN
//   rank_nfp       one thread per (positive, tile of sort blocks): NFP, by binary search
//   rank_pos1      one thread per positive: rank+ and the per-positive errors
//   rank_order     one thread: AP's interpolated precision, a running max in sorted order
//   rank_pos2      one thread per positive: its update, and its weight for the negatives
//   rank_wprefix   one thread: prefix sums of the weights in sorted order
//   rank_loss      one thread: the loss
//   rank_neg       one thread per element: a negative's update, by binary search
// Every sum is compensated and runs in a fixed order; no atomics, no barriers, so the same inputs
// give the same bits. Rank & Sort's sorting error compares every positive with every other
// (O(|P|^2), |P| being small next to n).
//
// Numerics. Scores are used scaled by 2^-40 (`scaled`): then no difference or sum of them
// overflows, any finite delta works (the host refuses delta < 1e-18, where u * delta would leave
// float32's normal range), and +-Inf become +-2^96, further from every finite score than any delta,
// so that H against them is exactly 0 or 1 and they never sit on a finite score's ramp. The ramp's
// bounds are found in difference space (fl(q - s) against +-delta, monotone in q), so a tie is on
// the ramp whatever |s| / delta. The prefix sums over a sorted run are of q - c, c the run's middle
// finite score (the pivot), accumulated outward from it in double-float (hi, lo) with exact
// differences (TwoSum): a ramp's sum (F[hi] - F[lo]) - m (s - c) then cancels terms of the size of
// the scores' distance to the pivot, not of |s|, and the product m (s - c) is exact (12-bit halves,
// whatever FMA contraction a compiler applies). NaN scores never enter a sort or a sum: flags in
// the header make the loss NaN at the end, written by bit pattern (a compiler may assume no NaN
// occurs, so NaN is tested by its bits too), where the float64 reference's would be NaN.

override WG: u32 = 64u;
override OP: u32 = 0u;

const FLAG_GRAD_OUTPUT: u32 = 2u;
const FLAG_GRAD: u32 = 16u;

// The host's sizes (src/ops/ranking.ts) use the same numbers.
const BLOCK: u32 = 256u;
const SORT_B: u32 = 4096u;
const TILE_CAP: u32 = 1048576u;
// 2^-40, the scale of every score in the ramp's arithmetic, and 2^96, an infinite score scaled.
const SCALE: f32 = 9.094947017729282379150390625e-13;
const HUGE: f32 = 79228162514264337593543950336.0;
// A quiet NaN's bits, from a private variable: WGSL refuses a constant expression that is NaN.
var<private> NAN_BITS: u32 = 0x7fc00000u;

// n: elements; threads: the positives' capacity of the scratch; flags as in fused.wgsl.
struct Run {
  n: u32,
  threads: u32,
  flags: u32,
  scale: f32,
}

// delta and 1 / (2 delta) in the scaled units (delta * 2^-40).
struct Params {
  n: u32,
  scaled_delta: f32,
  inv_two_scaled_delta: f32,
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
// The flags of every block (F_*), the loss elements to make NaN (bit 0: loss[0], bit 1: loss[1]),
// the positives' pivot (a sorted index), and the positives whose score is NaN (left out of P).
const H_FLAGS: u32 = 10u;
const H_POISON: u32 = 11u;
const H_PIVOT: u32 = 12u;
const H_NAN_POS: u32 = 13u;
const HEAD: u32 = 16u;

// An element's class, from its target's bits (and its score's, for a NaN).
const C_IGNORED: u32 = 0u;
const C_NEG: u32 = 1u;
const C_POS: u32 = 2u;
const C_NAN_NEG: u32 = 3u;
const C_NAN_POS: u32 = 4u;
const C_BAD: u32 = 5u;
// Flags a block records: a NaN score among the negatives, a target outside the op's set (only
// targets on the GPU get here: the host refuses them), an infinite negative, any negative.
const F_NAN_NEG: u32 = 1u;
const F_BAD: u32 = 2u;
const F_PINF_NEG: u32 = 4u;
const F_MINF_NEG: u32 = 8u;
const F_NEG: u32 = 16u;

// Per-positive arrays (cap + 1 words each), by slot (index order) unless said:
const P_IDX: u32 = 0u;
// The score (as given until rank_sort_pos has ordered the positives by its bits, then scaled),
// and the target.
const P_S: u32 = 1u;
const P_Y: u32 = 2u;
const P_NFP: u32 = 3u;
// 4, 5, 6: AP rank, p, ph; Rank & Sort lr, ls, D.
const P_A: u32 = 4u;
const P_B: u32 = 5u;
const P_C: u32 = 6u;
const P_W: u32 = 7u;
// In sorted order: the slots, their scaled scores, the double-float prefix sums relative to the
// pivot of the score (F), the plain prefix sums of the weight (W), and those relative to the
// pivot of the weight times the score (V).
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
// Two words per sort block: its negatives' count and their pivot (a sorted index).
fn at_neg_meta() -> u32 {
  return at_pos(P_ARRAYS);
}
fn at_neg() -> u32 {
  return at_neg_meta() + 2u * sort_blocks();
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
fn get2(h: u32, l: u32, k: u32) -> vec2<f32> {
  return vec2(getf(h + k), getf(l + k));
}
fn set2(h: u32, l: u32, k: u32, v: vec2<f32>) {
  setf(h + k, v.x);
  setf(l + k, v.y);
}

fn thread_id(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}
fn is_inf(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
}
fn nan_f32() -> f32 {
  return bitcast<f32>(NAN_BITS);
}

// The class of a target, by its bits: ap_loss 1 / 0 / -1, rank_sort (0, 1] / 0 / below 0; a NaN
// or any other value is C_BAD.
fn target_class(t: f32) -> u32 {
  let b = bitcast<u32>(t);
  let mag = b & 0x7fffffffu;
  if (mag > 0x7f800000u) {
    return C_BAD;
  }
  if (mag == 0u) {
    return C_NEG;
  }
  if (OP == 0u) {
    if (b == 0x3f800000u) {
      return C_POS;
    }
    return select(C_BAD, C_IGNORED, b == 0xbf800000u);
  }
  if ((b >> 31u) != 0u) {
    return C_IGNORED;
  }
  return select(C_BAD, C_POS, b <= 0x3f800000u);
}

// The class of an element with target t and score x.
fn class_of(t: f32, x: f32) -> u32 {
  let c = target_class(t);
  if (c == C_POS && is_nan(x)) {
    return C_NAN_POS;
  }
  if (c == C_NEG && is_nan(x)) {
    return C_NAN_NEG;
  }
  return c;
}

// A score in the ramp's units: times 2^-40, +-Inf as +-2^96, a result below float32's normal range
// as 0 (so that comparisons and arithmetic agree wherever subnormals are flushed).
fn scaled(x: f32) -> f32 {
  let b = bitcast<u32>(x);
  if (is_inf(x)) {
    return select(HUGE, -HUGE, (b >> 31u) != 0u);
  }
  let v = x * SCALE;
  if ((bitcast<u32>(v) & 0x7f800000u) == 0u) {
    return 0.0;
  }
  return v;
}

// The positives' order: a key whose integer order is the scores' order (-0 as +0), exact where a
// float comparison might flush subnormals.
fn order_key(x: f32) -> u32 {
  var b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) == 0u) {
    b = 0u;
  }
  return select(b | 0x80000000u, ~b, (b >> 31u) != 0u);
}

// Sorts the `count` floats (never NaN) at `base` ascending: a least-significant-digit radix sort
// on their order keys, a byte at a time, through `tmp` (count words) with 256 counters at `hist`.
// One lane does it, so it beats a heapsort's log2(count) dependent comparisons per element.
fn radix_sort(base: u32, tmp: u32, hist: u32, count: u32) {
  if (count < 2u) {
    return;
  }
  var src = base;
  var dst = tmp;
  for (var shift = 0u; shift < 32u; shift += 8u) {
    for (var d = 0u; d < 256u; d++) {
      partials[hist + d] = 0u;
    }
    for (var k = 0u; k < count; k++) {
      let digit = (order_key(getf(src + k)) >> shift) & 0xffu;
      partials[hist + digit] += 1u;
    }
    // A byte every key shares moves nothing.
    if (partials[hist + ((order_key(getf(src)) >> shift) & 0xffu)] == count) {
      continue;
    }
    var off = 0u;
    for (var d = 0u; d < 256u; d++) {
      let c = partials[hist + d];
      partials[hist + d] = off;
      off += c;
    }
    for (var k = 0u; k < count; k++) {
      let v = partials[src + k];
      let digit = (order_key(bitcast<f32>(v)) >> shift) & 0xffu;
      let at = partials[hist + digit];
      partials[dst + at] = v;
      partials[hist + digit] = at + 1u;
    }
    let t = src;
    src = dst;
    dst = t;
  }
  if (src != base) {
    for (var k = 0u; k < count; k++) {
      partials[base + k] = partials[src + k];
    }
  }
}

// H(x) = clamp(x / (2 delta) + 0.5, 0, 1) for a scaled difference x; x is first held to
// [-2 delta, 2 delta], where the product cannot overflow and H is still exactly 0 or 1 beyond.
fn smooth_step(x: f32) -> f32 {
  let d2 = 2.0 * params.scaled_delta;
  return clamp(clamp(x, -d2, d2) * params.inv_two_scaled_delta + 0.5, 0.0, 1.0);
}

// Kahan summation: .x the sum, .y the compensation (the sum is x - y).
fn kahan(k: vec2<f32>, v: f32) -> vec2<f32> {
  let y = v - k.y;
  let t = k.x + y;
  return vec2(t, (t - k.x) - y);
}

// Double-float arithmetic: a value is hi + lo, |lo| <= ulp(hi) / 2. No multiplication rounds in
// TwoSum, so contraction cannot change it.
fn two_sum(a: f32, b: f32) -> vec2<f32> {
  let s = a + b;
  let bb = s - a;
  return vec2(s, (a - (s - bb)) + (b - bb));
}
fn fast_two_sum(a: f32, b: f32) -> vec2<f32> {
  let s = a + b;
  return vec2(s, b - (s - a));
}
// a + b, both double-float of one sign (no cancellation: one TwoSum suffices).
fn add_same_sign(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let t = two_sum(a.x, b.x);
  return fast_two_sum(t.x, t.y + (a.y + b.y));
}
// a + b, b one float.
fn df_add1(a: vec2<f32>, b: f32) -> vec2<f32> {
  let s = two_sum(a.x, b);
  return fast_two_sum(s.x, s.y + a.y);
}
// The top 12 significant bits of x (the rest, x - hi12(x), is exact and has at most 12).
fn hi12(x: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(x) & 0xfffff000u);
}
// A sum of floats as (s, err): each large term enters through TwoSum, so that s + err is the
// exact sum but for the rounding of err, whose terms are of size u of the large ones. Where large
// terms cancel (a ramp's sum against the scores' distance to the pivot), this keeps u^2 of them.
fn acc(a: vec2<f32>, x: f32) -> vec2<f32> {
  let t = two_sum(a.x, x);
  return vec2(t.x, a.y + t.y);
}
// a + x * y: the products of 12-bit halves are exact in float32, whatever FMA contraction a
// compiler applies; the last is below u of x * y.
fn acc_mul(a: vec2<f32>, x: f32, y: f32) -> vec2<f32> {
  let x1 = hi12(x);
  let x2 = x - x1;
  let y1 = hi12(y);
  let y2 = y - y1;
  var r = acc(acc(acc(a, x1 * y1), x1 * y2), x2 * y1);
  r.y += x2 * y2;
  return r;
}
// a + m * x for a count m, exactly: m in pieces of at most 12 significant bits, each an exact
// float, times the halves of x.
fn acc_mul_count(a: vec2<f32>, m: u32, x: f32) -> vec2<f32> {
  let x1 = hi12(x);
  let x2 = x - x1;
  if (m <= 4096u) {
    return acc(acc(a, f32(m) * x1), f32(m) * x2);
  }
  var r = a;
  for (var shift = 0u; shift < 32u; shift += 12u) {
    let piece = f32(m & (0xfffu << shift));
    r = acc(acc(r, piece * x1), piece * x2);
  }
  return r;
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

// The prefix sums F of sorted scaled scores relative to the score at `pivot`, outward from it:
// F[pivot] = 0, F[k] = sum over [pivot, k) of (q - c) above it and over [k, pivot) of (c - q)
// below, so F[b] - F[a] = sum over [a, b) of (q - c) for any a <= b. Each term is exact (TwoSum)
// and the terms on either side have one sign, so F holds each sum to ~count u^2 of itself.
fn pivot_prefix(sorted: u32, h: u32, l: u32, count: u32, pivot: u32) {
  set2(h, l, pivot, vec2(0.0, 0.0));
  if (count == 0u) {
    return;
  }
  let c = getf(sorted + pivot);
  var acc = vec2(0.0, 0.0);
  for (var k = pivot; k < count; k++) {
    acc = add_same_sign(acc, two_sum(getf(sorted + k), -c));
    set2(h, l, k + 1u, acc);
  }
  acc = vec2(0.0, 0.0);
  for (var k = pivot; k > 0u; k--) {
    acc = add_same_sign(acc, two_sum(c, -getf(sorted + k - 1u)));
    set2(h, l, k - 1u, acc);
  }
}

// The middle of the finite scores in sorted[0, count) (infinite ones sit at either end as +-HUGE),
// an index below count whenever count > 0.
fn finite_middle(sorted: u32, count: u32) -> u32 {
  var a = 0u;
  while (a < count && getf(sorted + a) == -HUGE) {
    a++;
  }
  var z = count;
  while (z > a && getf(sorted + z - 1u) == HUGE) {
    z--;
  }
  return min((a + z) / 2u, max(count, 1u) - 1u);
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
  var nan_pos = 0u;
  var m = 2.0 * HUGE;
  var flags = 0u;
  for (var j = lo; j < hi; j++) {
    let x = in_logits[j];
    let k = class_of(in_targets[j], x);
    if (k == C_POS) {
      c++;
      m = min(m, scaled(x));
    } else if (k == C_NEG) {
      flags |= F_NEG;
      if (is_inf(x)) {
        flags |= select(F_PINF_NEG, F_MINF_NEG, (bitcast<u32>(x) >> 31u) != 0u);
      }
    } else if (k == C_NAN_NEG) {
      flags |= F_NAN_NEG | F_NEG;
    } else if (k == C_NAN_POS) {
      nan_pos++;
    } else if (k == C_BAD) {
      flags |= F_BAD;
    }
  }
  // At most BLOCK (256) of each count: 9 bits each, the flags above them.
  partials[at_counts() + b] = c | (nan_pos << 9u) | (flags << 18u);
  setf(at_block_min() + b, m);
}

@compute @workgroup_size(WG)
fn rank_scan(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (thread_id(wid, lid, nwg) != 0u) {
    return;
  }
  var off = 0u;
  var nan_pos = 0u;
  var m = 2.0 * HUGE;
  var flags = 0u;
  for (var b = 0u; b < blocks(); b++) {
    let w = partials[at_counts() + b];
    partials[at_counts() + b] = off;
    off += w & 0x1ffu;
    nan_pos += (w >> 9u) & 0x1ffu;
    flags |= w >> 18u;
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
  partials[H_FLAGS] = flags;
  partials[H_NAN_POS] = nan_pos;
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
    let x = in_logits[j];
    if (class_of(t, x) == C_POS) {
      partials[at_pos(P_IDX) + k] = j;
      setf(at_pos(P_S) + k, x);
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
    let x = in_logits[j];
    if (class_of(in_targets[j], x) == C_NEG) {
      setf(base + c, scaled(x));
      c++;
    }
  }
  // The block's prefix-sum arrays are free until pivot_prefix: the sort's buffer and counters.
  let off = b * (SORT_B + 1u);
  radix_sort(base, at_pref_h() + off, at_pref_l() + off, c);
  let pivot = finite_middle(base, c);
  partials[at_neg_meta() + 2u * b] = c;
  partials[at_neg_meta() + 2u * b + 1u] = pivot;
  pivot_prefix(base, at_pref_h() + off, at_pref_l() + off, c, pivot);
}

// Positive slot a before slot b: lower score, or the same score and a lower index (slots are in
// index order).
fn before(a: u32, b: u32) -> bool {
  let ka = order_key(getf(at_pos(P_S) + a));
  let kb = order_key(getf(at_pos(P_S) + b));
  return ka < kb || (ka == kb && a < b);
}

// The sift-down of a max-heap of slot numbers at base (heapsort, ascending in `before`'s order).
fn sift_down(base: u32, start: u32, end: u32) {
  var root = start;
  loop {
    let child = 2u * root + 1u;
    if (child >= end) {
      break;
    }
    var top = root;
    if (before(partials[base + top], partials[base + child])) {
      top = child;
    }
    if (child + 1u < end && before(partials[base + top], partials[base + child + 1u])) {
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
    sift_down(base, start, np);
  }
  var end = np;
  while (end > 1u) {
    end--;
    let t = partials[base];
    partials[base] = partials[base + end];
    partials[base + end] = t;
    sift_down(base, 0u, end);
  }
  // From here on P_S holds the scaled scores (the exact order needed the scores as given).
  let sq = at_pos(P_SQ);
  for (var k = 0u; k < np; k++) {
    setf(at_pos(P_S) + k, scaled(getf(at_pos(P_S) + k)));
  }
  var minus_inf = 0u;
  var plus_inf = 0u;
  for (var k = 0u; k < np; k++) {
    let s = getf(at_pos(P_S) + partials[base + k]);
    setf(sq + k, s);
    minus_inf += select(0u, 1u, s == -HUGE);
    plus_inf += select(0u, 1u, s == HUGE);
  }
  let pivot = finite_middle(sq, np);
  partials[H_PIVOT] = pivot;
  pivot_prefix(sq, at_pos(P_QH), at_pos(P_QL), np, pivot);

  // Which loss elements the float64 reference makes NaN, where H meets a NaN or H(inf - inf):
  // an invalid target, every one. A NaN negative, the ranking part (NFP) when there is a
  // positive. A NaN positive: in Rank & Sort every one (its own H(0) is in its rank+); in AP, where
  // it meets another positive or a negative (a lone one has precision 1 whatever its score).
  // AP meets H(inf - inf) where an infinite positive meets a negative or another positive of the
  // same infinity; Rank & Sort at every infinite positive (its own H(0) again).
  let f = partials[H_FLAGS];
  let nan_pos = partials[H_NAN_POS];
  var all = (f & F_BAD) != 0u;
  var ranking = all || ((f & F_NAN_NEG) != 0u && np + nan_pos > 0u);
  if (OP == 0u) {
    ranking = ranking || (nan_pos > 0u && (np + nan_pos > 1u || (f & F_NEG) != 0u));
    ranking = ranking || plus_inf > 1u || minus_inf > 1u;
    ranking = ranking || (plus_inf > 0u && (f & F_PINF_NEG) != 0u) || (minus_inf > 0u && (f & F_MINF_NEG) != 0u);
  } else {
    all = all || nan_pos > 0u || plus_inf + minus_inf > 0u;
    ranking = ranking || all;
  }
  partials[H_POISON] = select(0u, 1u, ranking) | select(0u, 2u, all);
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
