// ranking.wgsl: AP-Loss (OP 0) and Rank & Sort (OP 1), ops.md "Ranking losses"; a program of
// passes (src/runtime/program.ts), not the fused element-wise pass. The module is common.wgsl,
// fused-header.wgsl (the bindings every kernel shares), this file (the scratch's layout, the
// classes, the compensated arithmetic), ranking-sort.wgsl (the passes up to the sorted scores) and
// ranking-loss.wgsl (AP's and Rank & Sort's maths, from the sorted scores to the loss and updates). Positives: target > 0,
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

alias LossElement = f32;
// The scratch (`partials`) is read and written as u32 words, floats by their bits (getf, setf).
alias PartialWord = u32;

override OP: u32 = 0u;

// Sizes that src/ops/ranking.ts sizes the scratch and the grids with, set by it when the pipeline
// is made (no defaults: its numbers are the only ones). Elements per thread of rank_count and
// rank_compact; elements per sort block; the most (positive, sort block tile) threads of rank_nfp.
override BLOCK: u32;
override SORT_B: u32;
override TILE_CAP: u32;
// 2^-40, the scale of every score in the ramp's arithmetic (the host scales delta by it too).
override SCALE: f32;
// 2^96, an infinite score scaled.
const HUGE: f32 = 79228162514264337593543950336.0;

// run.n: elements; run.threads: the positives' capacity of the scratch; run.flags: FLAG_* of
// fused-header.wgsl.

// delta and 1 / (2 delta) in the scaled units (delta * 2^-40).
struct Params {
  n: u32,
  scaled_delta: f32,
  inv_two_scaled_delta: f32,
}

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
// The two indirect grids (three words each), where the host dispatches rank_nfp and the passes
// of one thread per positive: set by src/ops/ranking.ts, which passes their byte offsets.
override H_ARGS_POS: u32;
override H_ARGS_NFP: u32;
// The flags of every block (F_*), the loss elements to make NaN (bit 0: loss[0], bit 1: loss[1]),
// the positives' pivot (a sorted index), and the positives whose score is NaN (left out of P).
const H_FLAGS: u32 = 10u;
const H_POISON: u32 = 11u;
const H_PIVOT: u32 = 12u;
const H_NAN_POS: u32 = 13u;
// The header's words (set by src/ops/ranking.ts; more than the H_* above).
override HEAD: u32;

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
// How many per-positive arrays (set by src/ops/ranking.ts; more than the P_* above).
override P_ARRAYS: u32;

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

fn is_inf(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
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
