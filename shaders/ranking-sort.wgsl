// ranking-sort.wgsl: the ranking programs' passes up to the sorted scores (after ranking.wgsl):
// rank_count, rank_scan and rank_compact gather the positives, rank_sort_neg sorts the negatives
// of each SORT_B block, rank_sort_pos the positives, each with the prefix sums the loss passes
// (ranking-loss.wgsl) binary-search.

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
