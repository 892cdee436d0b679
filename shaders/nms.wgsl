// nms.wgsl: hard NMS for `nms` (torchvision) and `nms_onnx` (onnxruntime) (ops.md, "Non-maximum
// suppression"), over groups of n boxes that run together: one group for `nms` (its classes are
// compared in the mask), a (batch, class) pair for `nms_onnx`. The passes (src/ops/nms.ts):
//   nms_rank    thread per (group, box): its place in the group's candidate order (candidates
//               first, by decreasing score, equal scores lower index first), by counting
//   nms_mask    thread per (group, place r, word w): bit t set where the candidate at place
//               32 w + t comes after r, is of r's class and overlaps it more than the threshold
//   nms_scan    workgroup per group, 32 places at a time: lane 0 settles the block from its own
//               word, then the lanes OR the kept rows into the words after it; at most `limit`
//   nms_gather  thread per (group, slot): the kept boxes of every group, in group order, into
//               the output (nms-gather.wgsl: `keep`; nms-onnx-gather.wgsl: `selected` rows)
// Each gather file also gives class_of(i), the class the mask compares: `nms`'s `classes` (0
// without them), and 0 for `nms_onnx`, whose groups are already one class.
// Scores are compared by an order-preserving map of their bits (nms-common.wgsl), and a NaN score
// is never a candidate.

override WG: u32 = 64u;


struct Params {
  n: u32,
  // Groups of n boxes, and for nms_onnx the classes per batch (a group is batch * c + class).
  groups: u32,
  c: u32,
  onnx: u32,
  // Kept boxes per group at most, and the slots per group in SEL (min(limit, n)).
  limit: u32,
  cap: u32,
  // nms_onnx: 1 for [xc, yc, w, h] boxes.
  center: u32,
  // Words per mask row: ceil(n / 32).
  words: u32,
  iou_threshold: f32,
  // 0: xyxy, 1: cxcywh, 2: xywh.
  format: u32,
  // 0: IoU, 1: DIoU.
  diou: u32,
  // 0: no score threshold; 1: score > score_threshold; 2: no score passes (+Infinity);
  // 3: every score but -Infinity passes (-Infinity, which a uniform cannot hold).
  score_mode: u32,
  score_threshold: f32,
  has_classes: u32,
  off_order: u32,
  off_removed: u32,
  off_mask: u32,
  off_sel: u32,
  off_gcount: u32,
}

@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> params: Params;
// The scratch, as u32 words:
//   ORDER   [groups, n]         the box at each place of the candidate order (non-candidates last)
//   REMOVED [groups, words]     the places removed so far (nms_scan)
//   MASK    [groups, n, words]  the decision bits of each place against the places after it
//   SEL     [groups, cap]       the boxes each group kept, in order
//   GCOUNT  [groups]            how many each group kept
@group(0) @binding(2) var<storage, read_write> partials: array<u32>;
@group(0) @binding(3) var<storage, read> in_boxes: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> in_scores: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_count: array<i32>;

// Box i of group g's score.
fn score_bits(g: u32, i: u32) -> u32 {
  return bitcast<u32>(in_scores[g * params.n + i]);
}

fn is_candidate(g: u32, i: u32) -> bool {
  let bits = score_bits(g, i);
  if (is_nan(bits) || params.score_mode == 2u) {
    return false;
  }
  if (params.score_mode == 1u) {
    return score_key(bits) > score_key(bitcast<u32>(params.score_threshold));
  }
  return params.score_mode == 0u || bits != 0xff800000u;
}

// Box i of group g's corners, as `format` (nms) or `center` (nms_onnx) says: torchvision's and
// ONNX's centre boxes are not sorted, ONNX's corner boxes are.
fn corners(g: u32, i: u32) -> vec4<f32> {
  if (params.onnx == 1u) {
    let b = in_boxes[(g / params.c) * params.n + i];
    if (params.center == 1u) {
      let h = b.zw * 0.5;
      return vec4(b.xy - h, b.xy + h);
    }
    return vec4(min(b.xy, b.zw), max(b.xy, b.zw));
  }
  let b = in_boxes[i];
  if (params.format == 1u) {
    let h = b.zw * 0.5;
    return vec4(b.xy - h, b.xy + h);
  }
  if (params.format == 2u) {
    return vec4(b.xy, b.xy + b.zw);
  }
  return b;
}

// ops.md's overlap: IoU, or DIoU (IoU - rho2 / c2), 0 where either box has a non-finite coordinate.
fn overlap(a: vec4<f32>, b: vec4<f32>) -> f32 {
  let iou = box_iou(a, b);
  if (params.diou == 0u || !finite4(a) || !finite4(b)) {
    return iou;
  }
  let dx = a.x + a.z - b.x - b.z;
  let dy = a.y + a.w - b.y - b.w;
  let rho2 = (dx * dx + dy * dy) * 0.25;
  let cw = max(max(a.z, b.z) - min(a.x, b.x), 0.0);
  let ch = max(max(a.w, b.w) - min(a.y, b.y), 0.0);
  return iou - rho2 / (cw * cw + ch * ch + 1e-7);
}

fn thread_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn nms_rank(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg);
  let n = params.n;
  if (t >= params.groups * n) {
    return;
  }
  let g = t / n;
  let i = t % n;
  let ci = is_candidate(g, i);
  let ki = score_key(score_bits(g, i));
  var place = 0u;
  for (var j = 0u; j < n; j++) {
    if (j == i) {
      continue;
    }
    let cj = is_candidate(g, j);
    var before = false;
    if (cj != ci) {
      before = cj;
    } else if (ci) {
      let kj = score_key(score_bits(g, j));
      before = kj > ki || (kj == ki && j < i);
    } else {
      before = j < i;
    }
    place += select(0u, 1u, before);
  }
  partials[params.off_order + g * n + place] = i;
}

@compute @workgroup_size(WG)
fn nms_mask(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg);
  let n = params.n;
  let words = params.words;
  if (t >= params.groups * n * words) {
    return;
  }
  let g = t / (n * words);
  let r = (t / words) % n;
  let w = t % words;
  var bits = 0u;
  let order = params.off_order + g * n;
  let i = partials[order + r];
  // Only the words from r's own on hold places after r; a non-candidate suppresses nothing.
  if (w >= r / 32u && is_candidate(g, i)) {
    let a = corners(g, i);
    let ca = class_of(i);
    for (var b = 0u; b < 32u; b++) {
      let p = w * 32u + b;
      if (p <= r || p >= n) {
        continue;
      }
      let j = partials[order + p];
      if (!is_candidate(g, j)) {
        continue;
      }
      if (class_of(j) != ca) {
        continue;
      }
      if (overlap(a, corners(g, j)) > params.iou_threshold) {
        bits |= 1u << b;
      }
    }
  }
  partials[params.off_mask + t] = bits;
}

var<workgroup> kept_bits: u32;
var<workgroup> kept_total: u32;
var<workgroup> done: u32;

@compute @workgroup_size(WG)
fn nms_scan(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let lane = lid.x;
  let g = wid.x + wid.y * nwg.x;
  if (g >= params.groups) {
    return;
  }
  let n = params.n;
  let words = params.words;
  let order = params.off_order + g * n;
  let removed = params.off_removed + g * words;
  let mask = params.off_mask + g * n * words;
  for (var w = lane; w < words; w += WG) {
    partials[removed + w] = 0u;
  }
  if (lane == 0u) {
    kept_total = 0u;
    done = select(0u, 1u, params.limit == 0u);
  }
  storageBarrier();
  workgroupBarrier();
  for (var w = 0u; w < words; w++) {
    if (workgroupUniformLoad(&done) == 1u) {
      break;
    }
    if (lane == 0u) {
      var cur = partials[removed + w];
      var kept = 0u;
      var count = kept_total;
      for (var b = 0u; b < 32u; b++) {
        let p = w * 32u + b;
        if (p >= n) {
          done = 1u;
          break;
        }
        let i = partials[order + p];
        // Candidates come first: the first non-candidate ends the walk.
        if (!is_candidate(g, i)) {
          done = 1u;
          break;
        }
        if ((cur & (1u << b)) == 0u) {
          kept |= 1u << b;
          partials[params.off_sel + g * params.cap + count] = i;
          count++;
          cur |= partials[mask + p * words + w];
          if (count >= params.limit) {
            done = 1u;
            break;
          }
        }
      }
      kept_bits = kept;
      kept_total = count;
    }
    storageBarrier();
    let kept = workgroupUniformLoad(&kept_bits);
    for (var v = w + 1u + lane; v < words; v += WG) {
      var acc = partials[removed + v];
      var k = kept;
      while (k != 0u) {
        let b = firstTrailingBit(k);
        k &= k - 1u;
        acc |= partials[mask + (w * 32u + b) * words + v];
      }
      partials[removed + v] = acc;
    }
    storageBarrier();
    workgroupBarrier();
  }
  if (lane == 0u) {
    partials[params.off_gcount + g] = kept_total;
  }
}

// Thread t's slot of a group's kept boxes, into the output at the group's start (the kept boxes of
// the groups before it); thread 0 also writes the total into out_count. The gather file's
// write_row writes one.
@compute @workgroup_size(WG)
fn nms_gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg);
  if (t >= max(params.groups * params.cap, 1u)) {
    return;
  }
  let cap = max(params.cap, 1u);
  let g = t / cap;
  var before = 0u;
  for (var h = 0u; h < g; h++) {
    before += partials[params.off_gcount + h];
  }
  if (t == 0u) {
    var total = 0u;
    for (var h = 0u; h < params.groups; h++) {
      total += partials[params.off_gcount + h];
    }
    out_count[0] = i32(total);
  }
  let k = t % cap;
  if (g < params.groups && k < partials[params.off_gcount + g]) {
    write_row(before + k, g, partials[params.off_sel + t]);
  }
}
