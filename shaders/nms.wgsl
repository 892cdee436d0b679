// nms.wgsl: `nms`, torchvision's greedy NMS (ops.md, "Non-maximum suppression"), as three passes
// (src/ops/nms.ts lists them):
//   nms_rank  thread per box: its place in the candidate order (candidates first, by decreasing
//             score, equal scores lower index first), by counting the boxes before it
//   nms_mask  thread per (place r, word w): bit t of the word set where the candidate at place
//             32 w + t comes after r, is of r's class and overlaps it more than the threshold
//   nms_scan  one workgroup, 32 places at a time: lane 0 settles the block from its own word,
//             then the lanes OR the kept rows into the words after it; the kept indices in order
//             and their count
// Scores are compared by an order-preserving map of their bits, so infinities and -0 order as
// numbers whatever the device does with them, and a NaN score is never a candidate.

override WG: u32 = 64u;

const FLAG_GRAD: u32 = 16u;

struct Run {
  n: u32,
  threads: u32,
  flags: u32,
  scale: f32,
}

struct Params {
  n: u32,
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
}

@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> params: Params;
// The scratch, as u32 words:
//   ORDER   [n]         the box at each place of the candidate order (non-candidates last)
//   REMOVED [words]     the places removed so far (nms_scan)
//   MASK    [n, words]  the decision bits of each place against the places after it
@group(0) @binding(2) var<storage, read_write> partials: array<u32>;
@group(0) @binding(3) var<storage, read> in_boxes: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> in_scores: array<f32>;
@group(0) @binding(5) var<storage, read> in_classes: array<i32>;
@group(0) @binding(6) var<storage, read_write> out_keep: array<i32>;
@group(0) @binding(7) var<storage, read_write> out_count: array<i32>;

// A score's bits mapped so that unsigned order is numeric order (-0 as +0).
fn score_key(bits: u32) -> u32 {
  let b = select(bits, 0u, bits == 0x80000000u);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn is_nan(bits: u32) -> bool {
  return (bits & 0x7fffffffu) > 0x7f800000u;
}

fn score_bits(i: u32) -> u32 {
  return bitcast<u32>(in_scores[i]);
}

fn is_candidate(i: u32) -> bool {
  let bits = score_bits(i);
  if (is_nan(bits) || params.score_mode == 2u) {
    return false;
  }
  if (params.score_mode == 1u) {
    return score_key(bits) > score_key(bitcast<u32>(params.score_threshold));
  }
  return params.score_mode == 0u || bits != 0xff800000u;
}

// Box i's corners (x1, y1, x2, y2), as `format` says, not sorted.
fn corners(i: u32) -> vec4<f32> {
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

fn finite4(v: vec4<f32>) -> bool {
  let e = bitcast<vec4<u32>>(v) & vec4(0x7f800000u);
  return all(e != vec4(0x7f800000u));
}

// ops.md's overlap: IoU (or DIoU), 0 for disjoint or touching boxes, inverted or zero-area ones,
// and any box with a non-finite coordinate. Identical boxes give exactly 1: the intersection's
// sides are computed as the areas' are, so inter equals area bit for bit.
fn overlap(a: vec4<f32>, b: vec4<f32>) -> f32 {
  if (!finite4(a) || !finite4(b)) {
    return 0.0;
  }
  let iw = min(a.z, b.z) - max(a.x, b.x);
  let ih = min(a.w, b.w) - max(a.y, b.y);
  var iou = 0.0;
  if (iw > 0.0 && ih > 0.0) {
    let inter = iw * ih;
    let area_a = (a.z - a.x) * (a.w - a.y);
    let area_b = (b.z - b.x) * (b.w - b.y);
    // Both boxes have positive width and height here, so the union is at least inter > 0.
    iou = inter / (area_a + area_b - inter);
  }
  if (params.diou == 0u) {
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
  let i = thread_index(gid, nwg);
  let n = params.n;
  if (i >= n) {
    return;
  }
  let ci = is_candidate(i);
  let ki = score_key(score_bits(i));
  var place = 0u;
  for (var j = 0u; j < n; j++) {
    if (j == i) {
      continue;
    }
    let cj = is_candidate(j);
    var before = false;
    if (cj != ci) {
      before = cj;
    } else if (ci) {
      let kj = score_key(score_bits(j));
      before = kj > ki || (kj == ki && j < i);
    } else {
      before = j < i;
    }
    place += select(0u, 1u, before);
  }
  partials[params.off_order + place] = i;
}

@compute @workgroup_size(WG)
fn nms_mask(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg);
  let n = params.n;
  let words = params.words;
  if (t >= n * words) {
    return;
  }
  let r = t / words;
  let w = t % words;
  var bits = 0u;
  let i = partials[params.off_order + r];
  // Only the words from r's own on hold places after r; a non-candidate suppresses nothing.
  if (w >= r / 32u && is_candidate(i)) {
    let a = corners(i);
    let ca = select(0, in_classes[i], params.has_classes == 1u);
    for (var b = 0u; b < 32u; b++) {
      let p = w * 32u + b;
      if (p <= r || p >= n) {
        continue;
      }
      let j = partials[params.off_order + p];
      if (!is_candidate(j)) {
        continue;
      }
      if (params.has_classes == 1u && in_classes[j] != ca) {
        continue;
      }
      if (overlap(a, corners(j)) > params.iou_threshold) {
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
fn nms_scan(@builtin(local_invocation_id) lid: vec3<u32>) {
  let lane = lid.x;
  let n = params.n;
  let words = params.words;
  for (var w = lane; w < words; w += WG) {
    partials[params.off_removed + w] = 0u;
  }
  if (lane == 0u) {
    kept_total = 0u;
    done = 0u;
  }
  storageBarrier();
  workgroupBarrier();
  for (var w = 0u; w < words; w++) {
    if (workgroupUniformLoad(&done) == 1u) {
      break;
    }
    if (lane == 0u) {
      var cur = partials[params.off_removed + w];
      var kept = 0u;
      var count = kept_total;
      for (var b = 0u; b < 32u; b++) {
        let p = w * 32u + b;
        if (p >= n) {
          done = 1u;
          break;
        }
        let i = partials[params.off_order + p];
        // Candidates come first: the first non-candidate ends the walk.
        if (!is_candidate(i)) {
          done = 1u;
          break;
        }
        if ((cur & (1u << b)) == 0u) {
          kept |= 1u << b;
          out_keep[count] = i32(i);
          count++;
          cur |= partials[params.off_mask + p * words + w];
        }
      }
      kept_bits = kept;
      kept_total = count;
    }
    storageBarrier();
    let kept = workgroupUniformLoad(&kept_bits);
    for (var v = w + 1u + lane; v < words; v += WG) {
      var acc = partials[params.off_removed + v];
      var k = kept;
      while (k != 0u) {
        let b = firstTrailingBit(k);
        k &= k - 1u;
        acc |= partials[params.off_mask + (w * 32u + b) * words + v];
      }
      partials[params.off_removed + v] = acc;
    }
    storageBarrier();
    workgroupBarrier();
  }
  if (lane == 0u) {
    out_count[0] = i32(kept_total);
  }
}
