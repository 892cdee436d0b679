// tal-rows.wgsl: the passes that read only the scratch (tal.wgsl): the top k per gt row, the
// maxima per gt row, and the YOLO loss's target scores and normaliser.

@group(0) @binding(3) var<storage, read> in_gt_mask: array<i32>;

var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> lane_words: array<u32, WG>;
var<workgroup> lane_pairs: array<vec2<f32>, WG>;
var<workgroup> shared_word: u32;
var<workgroup> shared_pair: vec2<u32>;

// Whether a workgroup's gt row is a real one (mask 1), the same answer for every lane. With
// `clear`, lane 0 writes a padding row's maxima (both 0).
fn real_row(row: u32, lane: u32, clear: bool) -> bool {
  let rows = params.b * params.m;
  if (lane == 0u) {
    shared_word = select(0u, 1u, row < rows && in_gt_mask[min(row, rows - 1u)] == 1);
    if (clear && row < rows && shared_word == 0u) {
      setf(params.off_gmax + 2u * row, 0.0);
      setf(params.off_gmax + 2u * row + 1u, 0.0);
    }
  }
  return workgroupUniformLoad(&shared_word) == 1u;
}

// The top k of a real gt row (ops.md, step 3): the anchors of the k largest metrics, equal
// metrics in index order, marked SEL where the pair is a candidate. A radix select over the
// metrics' bits (non-negative floats order as their bits) finds the k-th largest metric T and
// how many of the metrics equal to T are taken; those are the lowest-indexed ones, which a prefix
// count over contiguous runs of anchors finds. O(a) whatever k is, and no sort.
@compute @workgroup_size(WG)
fn tal_topk(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let row = group_index(wid, nwg);
  // A padding row selects nothing (the whole workgroup leaves together).
  if (!real_row(row, lane, false)) {
    return;
  }
  let na = params.a;
  let met = params.off_met + row * na;
  let k = min(params.topk, na);
  // The positive metrics first (most pairs are not candidates: their metric is 0). When there are
  // at most k, every one is taken and the rest of the places go to metric-0 anchors in index order:
  // no select needed.
  var positive = 0u;
  for (var a = lane; a < na; a += WG) {
    positive += select(0u, 1u, partials[met + a] != 0u);
  }
  lane_words[lane] = positive;
  workgroupBarrier();
  if (lane == 0u) {
    var total = 0u;
    for (var l = 0u; l < WG; l++) {
      total += lane_words[l];
    }
    shared_word = total;
  }
  let count = workgroupUniformLoad(&shared_word);
  var sel = vec2(0u, k - min(count, k));
  if (count > k) {
    sel = radix_select(met, na, k, lane);
  }
  mark_topk(row, met, na, sel.x, sel.y, lane);
}

// The k-th largest positive key of a row, by its bits, and how many keys equal to it are taken:
// four rounds of an 8-bit histogram over the keys that match the
// bits decided so far. Keys of 0 never enter (there are more than k positive ones).
fn radix_select(met: u32, na: u32, k: u32, lane: u32) -> vec2<u32> {
  var prefix = 0u;
  var known = 0u;
  var need = k;
  for (var shift = 24u; ; shift -= 8u) {
    for (var h = lane; h < 256u; h += WG) {
      atomicStore(&hist[h], 0u);
    }
    workgroupBarrier();
    for (var a = lane; a < na; a += WG) {
      let key = partials[met + a];
      if (key != 0u && (key & known) == prefix) {
        atomicAdd(&hist[(key >> shift) & 255u], 1u);
      }
    }
    workgroupBarrier();
    if (lane == 0u) {
      // The digit holding the need-th largest key among those that match the prefix.
      var acc = 0u;
      var digit = 255u;
      loop {
        let h = atomicLoad(&hist[digit]);
        if (acc + h >= need || digit == 0u) {
          break;
        }
        acc += h;
        digit -= 1u;
      }
      shared_pair = vec2(prefix | (digit << shift), need - acc);
    }
    let sel = workgroupUniformLoad(&shared_pair);
    prefix = sel.x;
    need = sel.y;
    known = known | (255u << shift);
    if (shift == 0u) {
      break;
    }
  }
  return vec2(prefix, need);
}

// Marks the row's top k: every key larger than `prefix` (T), and the first `need` keys equal to T
// in index order, found by a prefix count over contiguous runs of anchors; a pair is marked only
// where it is a candidate.
fn mark_topk(row: u32, met: u32, na: u32, prefix: u32, need: u32, lane: u32) {
  let run = (na + WG - 1u) / WG;
  let lo = min(lane * run, na);
  let hi = min(lo + run, na);
  var equal = 0u;
  for (var a = lo; a < hi; a++) {
    equal += select(0u, 1u, partials[met + a] == prefix);
  }
  lane_words[lane] = equal;
  workgroupBarrier();
  if (lane == 0u) {
    var acc = 0u;
    for (var l = 0u; l < WG; l++) {
      let e = lane_words[l];
      lane_words[l] = acc;
      acc += e;
    }
  }
  workgroupBarrier();
  var before = lane_words[lane];
  let ov = params.off_ov + row * na;
  for (var a = lo; a < hi; a++) {
    let key = partials[met + a];
    var take = key > prefix;
    if (key == prefix) {
      take = before < need;
      before++;
    }
    if (take && getf(ov + a) >= 0.0) {
      partials[met + a] = key | SEL;
    }
  }
}

// The largest metric and overlap over the anchors that step 4 gave to a gt row (0 for none);
// every row, padding ones included (row 0 may win an anchor whose overlaps are all 0).
@compute @workgroup_size(WG)
fn tal_gtmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let row = group_index(wid, nwg);
  // A padding row's maxima are 0 (its metrics are, wherever it wins an anchor).
  if (!real_row(row, lane, true)) {
    return;
  }
  let na = params.a;
  let b = row / params.m;
  let j = i32(row % params.m);
  var best = vec2(0.0);
  for (var a = lane; a < na; a += WG) {
    if (bitcast<i32>(partials[params.off_anc + b * na + a]) == j) {
      let p = row * na + a;
      best = max(best, vec2(bitcast<f32>(partials[params.off_met + p] & 0x7fffffffu), max(getf(params.off_ov + p), 0.0)));
    }
  }
  lane_pairs[lane] = best;
  workgroupBarrier();
  if (lane == 0u) {
    for (var l = 1u; l < WG; l++) {
      best = max(best, lane_pairs[l]);
    }
    setf(params.off_gmax + 2u * row, best.x);
    setf(params.off_gmax + 2u * row + 1u, best.y);
  }
}

// The YOLO loss's target score per anchor (tal_scores' value, in its gt's class).
@compute @workgroup_size(WG)
fn yolo_ts(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = thread_index(gid, nwg);
  if (i >= params.b * params.a) {
    return;
  }
  let g = bitcast<i32>(partials[params.off_anc + i]);
  setf(params.off_ts + i, select(0.0, target_score(i / params.a, i % params.a, u32(max(g, 0))), g >= 0));
}

// Sums `count` values of the scratch at `at` (stride `stride`) in one workgroup, in a fixed order:
// lane l adds elements l, l + WG, ... with compensation, then lane 0 adds the lanes in order.
fn workgroup_sum(at: u32, count: u32, stride: u32, lane: u32) -> f32 {
  var s = 0.0;
  var comp = 0.0;
  for (var i = lane; i < count; i += WG) {
    let y = getf(at + i * stride) - comp;
    let t = s + y;
    comp = (t - s) - y;
    s = t;
  }
  lane_pairs[lane] = vec2(s, -comp);
  workgroupBarrier();
  var total = 0.0;
  if (lane == 0u) {
    var c = 0.0;
    for (var l = 0u; l < WG; l++) {
      let y = (lane_pairs[l].x + lane_pairs[l].y) - c;
      let t = total + y;
      c = (t - total) - y;
      total = t;
    }
  }
  workgroupBarrier();
  return total;
}

// The normaliser: max(sum of the target scores, 1), one number for the batch (ops.md, step 3).
@compute @workgroup_size(WG)
fn yolo_tss(@builtin(local_invocation_index) lane: u32) {
  let s = workgroup_sum(params.off_ts, params.b * params.a, 1u, lane);
  if (lane == 0u) {
    setf(params.off_tot, max(s, 1.0));
  }
}
