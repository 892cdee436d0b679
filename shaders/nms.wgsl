// nms.wgsl: hard NMS for `nms` (torchvision), `nms_onnx` (onnxruntime) and the YOLO post-process
// (ops.md, "Non-maximum suppression"), over groups of n boxes that run together: one group for
// `nms` (its classes are compared in the mask), a (batch, class) pair for `nms_onnx`, an image for
// the YOLO post-process. The passes (src/ops/nms.ts):
//   nms_tile    workgroup per (group, tile of TILE boxes): the tile's candidates in candidate order
//               (decreasing score, equal scores lower index first), ranked by counting in
//               workgroup memory, and their number; it also empties the tile's places of ORDER
//   nms_place   thread per (group, box): a candidate's place in its group's order, the sum over
//               the tiles of how many of each tile's sorted candidates come before it (a binary
//               search each); places past kc (the YOLO post-process's max_nms) are dropped
//   nms_size    one workgroup: the most candidates of any group (kmax, at most kc), and nms_mask's
//               grid for that many places, written at the scratch's start (an indirect dispatch)
//   nms_mask    thread per (group, place r < kmax, word w): bit t set where the candidate at place
//               32 w + t comes after r, is of r's class and overlaps it more than the threshold
//   nms_scan    workgroup per group, 32 places at a time: lane 0 settles the block from its own
//               word, then the lanes OR the kept rows into the words after it; at most `limit`
//   nms_gather  thread per (group, slot): the kept boxes of every group, in group order, into
//               the output
// On a software adapter (a CPU emulating a GPU), nms_walk replaces nms_size, nms_mask and
// nms_scan: it computes only the kept places' rows, and skips places already removed.
// The module that includes this file gives what depends on where the boxes come from and where the
// rows go: score_bits(g, i), corners(g, i), class_of(g, i) and write_row(at, g, i)
// (nms-gather.wgsl for `nms`, nms-onnx-gather.wgsl, yolo-nms.wgsl).
// Scores are compared by an order-preserving map of their bits (nms-common.wgsl), and a NaN score
// is never a candidate.

override WG: u32 = 64u;
// Boxes per tile of nms_tile; a multiple of WG's default.
const TILE: u32 = 256u;
// An empty place of ORDER: past the group's candidates.
const NONE: u32 = 0xffffffffu;

struct Params {
  // Boxes per group, and the groups.
  n: u32,
  groups: u32,
  // nms_onnx: classes per batch (a group is batch * c + class); YOLO: classes.
  c: u32,
  // YOLO: anchors per image; 1 for the ops.
  anchors: u32,
  // Places of each group's order: n, or fewer (YOLO's max_nms).
  kc: u32,
  // Kept boxes per group at most, and the slots per group in SEL (min(limit, kc)).
  limit: u32,
  cap: u32,
  // nms_onnx: 1 for [xc, yc, w, h] boxes.
  center: u32,
  // Words per mask row: ceil(kc / 32); tiles per group: ceil(n / TILE).
  words: u32,
  tiles: u32,
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
  // YOLO: 1 for every class above the threshold (a box per (anchor, class)); 1 for class-agnostic.
  multi: u32,
  agnostic: u32,
  // The most workgroups a dimension of a dispatch may have.
  max_groups: u32,
  off_tsort: u32,
  off_tcount: u32,
  off_order: u32,
  off_sbox: u32,
  off_scls: u32,
  off_removed: u32,
  off_mask: u32,
  off_sel: u32,
  off_gcount: u32,
  // YOLO: the decoded corners, scores and best classes.
  off_box: u32,
  off_score: u32,
  off_class: u32,
}

@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> params: Params;
// The scratch, as u32 words:
//   ARGS    [4]                 nms_mask's workgroups (x, y, z), then kmax
//   TSORT   [groups, n]         each tile's candidates in candidate order, from the tile's start
//   TCOUNT  [groups, tiles]     each tile's candidates
//   ORDER   [groups, kc]        the box at each place of the candidate order (NONE past the last)
//   SBOX    [groups, kc, 4]     the corners of the box at each place, for nms_mask to read in order
//   SCLS    [groups, kc]        the class nms_mask compares, of the box at each place
//   REMOVED [groups, words]     the places removed so far (nms_scan)
//   MASK    [groups, kc, words] the decision bits of each place against the places after it
//   SEL     [groups, cap]       the boxes each group kept, in order
//   GCOUNT  [groups]            how many each group kept
//   and what the including module keeps at off_box, off_score, off_class
@group(0) @binding(2) var<storage, read_write> partials: array<u32>;
@group(0) @binding(7) var<storage, read_write> out_count: array<i32>;

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

var<workgroup> tile_key: array<u32, TILE>;
var<workgroup> tile_ok: array<u32, TILE>;
var<workgroup> tile_count: atomic<u32>;

@compute @workgroup_size(WG)
fn nms_tile(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let unit = wid.x + wid.y * nwg.x;
  if (unit >= params.groups * params.tiles) {
    return;
  }
  let g = unit / params.tiles;
  let t = unit % params.tiles;
  let n = params.n;
  let base = t * TILE;
  if (lid.x == 0u) {
    atomicStore(&tile_count, 0u);
  }
  for (var s = lid.x; s < TILE; s += WG) {
    let i = base + s;
    var ok = 0u;
    var key = 0u;
    if (i < n && is_candidate(g, i)) {
      ok = 1u;
      key = score_key(score_bits(g, i));
    }
    tile_ok[s] = ok;
    tile_key[s] = key;
    // The places in this tile's range start empty; nms_place fills the candidates'.
    if (i < params.kc) {
      partials[params.off_order + g * params.kc + i] = NONE;
    }
  }
  workgroupBarrier();
  for (var s = lid.x; s < TILE; s += WG) {
    if (tile_ok[s] == 0u) {
      continue;
    }
    let key = tile_key[s];
    var r = 0u;
    for (var u = 0u; u < TILE; u++) {
      let ku = tile_key[u];
      r += select(0u, 1u, tile_ok[u] == 1u && (ku > key || (ku == key && u < s)));
    }
    partials[params.off_tsort + g * n + base + r] = base + s;
    atomicAdd(&tile_count, 1u);
  }
  workgroupBarrier();
  if (lid.x == 0u) {
    partials[params.off_tcount + g * params.tiles + t] = atomicLoad(&tile_count);
  }
}

@compute @workgroup_size(WG)
fn nms_place(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg);
  let n = params.n;
  if (t >= params.groups * n) {
    return;
  }
  let g = t / n;
  let i = t % n;
  if (!is_candidate(g, i)) {
    return;
  }
  let key = score_key(score_bits(g, i));
  var place = 0u;
  for (var u = 0u; u < params.tiles; u++) {
    let start = params.off_tsort + g * n + u * TILE;
    // How many of tile u's sorted candidates come before i: the first that does not.
    var lo = 0u;
    var hi = partials[params.off_tcount + g * params.tiles + u];
    while (lo < hi) {
      let mid = (lo + hi) / 2u;
      let j = partials[start + mid];
      let kj = score_key(score_bits(g, j));
      if (kj > key || (kj == key && j < i)) {
        lo = mid + 1u;
      } else {
        hi = mid;
      }
    }
    place += lo;
  }
  if (place < params.kc) {
    let at = g * params.kc + place;
    partials[params.off_order + at] = i;
    let b = bitcast<vec4<u32>>(corners(g, i));
    partials[params.off_sbox + 4u * at] = b.x;
    partials[params.off_sbox + 4u * at + 1u] = b.y;
    partials[params.off_sbox + 4u * at + 2u] = b.z;
    partials[params.off_sbox + 4u * at + 3u] = b.w;
    partials[params.off_scls + at] = bitcast<u32>(class_of(g, i));
  }
}

// The corners of the box at place `at` (group-major) of the candidate order.
fn sorted_box(at: u32) -> vec4<f32> {
  let o = params.off_sbox + 4u * at;
  return bitcast<vec4<f32>>(vec4(partials[o], partials[o + 1u], partials[o + 2u], partials[o + 3u]));
}

// Whether a kept box (corners a, class ca) removes the box at place `at` (group-major): same class
// and overlap above the threshold. Boxes that do not intersect have overlap <= 0 in every variant,
// so that test comes first (a filter only: overlap decides).
fn suppresses(a: vec4<f32>, ca: u32, at: u32) -> bool {
  let c = sorted_box(at);
  let iw = min(a.z, c.z) - max(a.x, c.x);
  let ih = min(a.w, c.w) - max(a.y, c.y);
  if (!(iw > 0.0 && ih > 0.0) || partials[params.off_scls + at] != ca) {
    return false;
  }
  return overlap(a, c) > params.iou_threshold;
}

var<workgroup> most: atomic<u32>;

@compute @workgroup_size(WG)
fn nms_size(@builtin(local_invocation_id) lid: vec3<u32>) {
  if (lid.x == 0u) {
    atomicStore(&most, 0u);
  }
  workgroupBarrier();
  for (var g = lid.x; g < params.groups; g += WG) {
    var k = 0u;
    for (var u = 0u; u < params.tiles; u++) {
      k += partials[params.off_tcount + g * params.tiles + u];
    }
    atomicMax(&most, min(k, params.kc));
  }
  workgroupBarrier();
  if (lid.x == 0u) {
    let kmax = atomicLoad(&most);
    let wk = (kmax + 31u) / 32u;
    let groups = (params.groups * kmax * wk + WG - 1u) / WG;
    let x = min(groups, params.max_groups);
    partials[0] = x;
    partials[1] = select(0u, (groups + x - 1u) / max(x, 1u), x > 0u);
    partials[2] = 1u;
    partials[3] = kmax;
  }
}

@compute @workgroup_size(WG)
fn nms_mask(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg);
  let kc = params.kc;
  let words = params.words;
  // Threads over (group, place, word) of the kmax places, rows stored kc places apart.
  let kmax = partials[3];
  let wk = (kmax + 31u) / 32u;
  if (t >= params.groups * kmax * wk) {
    return;
  }
  let g = t / (kmax * wk);
  let r = (t / wk) % kmax;
  let w = t % wk;
  let order = params.off_order + g * kc;
  let i = partials[order + r];
  // nms_scan reads a row only at a candidate's place, and only its words from the place's own on.
  if (i == NONE || w < r / 32u) {
    return;
  }
  let a = sorted_box(g * kc + r);
  let ca = partials[params.off_scls + g * kc + r];
  var bits = 0u;
  // The places after r only.
  let first = select(0u, r + 1u - w * 32u, r + 1u > w * 32u);
  for (var b = first; b < 32u; b++) {
    let p = w * 32u + b;
    if (p >= kc || partials[order + p] == NONE) {
      break;
    }
    if (suppresses(a, ca, g * kc + p)) {
      bits |= 1u << b;
    }
  }
  partials[params.off_mask + (g * kc + r) * words + w] = bits;
}

var<workgroup> kept_bits: u32;
var<workgroup> kept_total: u32;
var<workgroup> done: u32;
var<workgroup> walk_count: atomic<u32>;
var<workgroup> walk_k: u32;
var<workgroup> block_bits: array<u32, 32>;

// The start of a walk over group g (nms_scan, nms_walk; every lane): the places the candidates fill
// (k, at most kc), the group's REMOVED words up to k's cleared, nothing kept yet.
fn walk_start(lane: u32, g: u32) -> u32 {
  if (lane == 0u) {
    atomicStore(&walk_count, 0u);
    kept_total = 0u;
    done = select(0u, 1u, params.limit == 0u);
  }
  workgroupBarrier();
  for (var u = lane; u < params.tiles; u += WG) {
    atomicAdd(&walk_count, partials[params.off_tcount + g * params.tiles + u]);
  }
  workgroupBarrier();
  if (lane == 0u) {
    walk_k = min(atomicLoad(&walk_count), params.kc);
  }
  let k = workgroupUniformLoad(&walk_k);
  let removed = params.off_removed + g * params.words;
  for (var w = lane; w < (k + 31u) / 32u; w += WG) {
    partials[removed + w] = 0u;
  }
  storageBarrier();
  workgroupBarrier();
  return k;
}

// Lane 0 settles word w of group g's k places: each place not removed is kept (into SEL, at most
// `limit`) and removes the places after it in the word that its row's bits name (the decision bits,
// or nms_walk's block_bits). Sets kept_bits, kept_total, and done at the last place or the limit.
fn settle_block(g: u32, w: u32, k: u32, from_mask: bool) {
  let removed = params.off_removed + g * params.words;
  let mask = params.off_mask + g * params.kc * params.words;
  var cur = partials[removed + w];
  var kept = 0u;
  var count = kept_total;
  for (var b = 0u; b < 32u; b++) {
    let p = w * 32u + b;
    if (p >= k) {
      done = 1u;
      break;
    }
    if ((cur & (1u << b)) == 0u) {
      kept |= 1u << b;
      partials[params.off_sel + g * params.cap + count] = partials[params.off_order + g * params.kc + p];
      count++;
      if (from_mask) {
        cur |= partials[mask + p * params.words + w];
      } else {
        cur |= block_bits[b];
      }
      if (count >= params.limit) {
        done = 1u;
        break;
      }
    }
  }
  kept_bits = kept;
  kept_total = count;
}

// The walk over each group's places, 32 at a time, a workgroup per group; lane 0 settles a block
// (settle_block), then the lanes take the later words and remove what the block's kept places
// overlap. nms_scan (`from_mask`) reads the block's bits and the kept rows from the decision bits.
// nms_walk (software adapters, in place of nms_size, nms_mask and nms_scan) computes them: the
// block's own bits first (each row against the later places of the block), then only the kept
// rows, against the later places not yet removed: the greedy's own work, not every pair's.
fn walk_groups(lane: u32, g: u32, from_mask: bool) {
  let kc = params.kc;
  let words = params.words;
  let removed = params.off_removed + g * words;
  let mask = params.off_mask + g * kc * words;
  let k = walk_start(lane, g);
  let wk = (k + 31u) / 32u;
  for (var w = 0u; w < wk; w++) {
    if (workgroupUniformLoad(&done) == 1u) {
      break;
    }
    if (!from_mask) {
      if (lane < 32u) {
        let r = w * 32u + lane;
        var bits = 0u;
        if (r < k) {
          let a = sorted_box(g * kc + r);
          let ca = partials[params.off_scls + g * kc + r];
          for (var b = lane + 1u; b < 32u && w * 32u + b < k; b++) {
            if (suppresses(a, ca, g * kc + w * 32u + b)) {
              bits |= 1u << b;
            }
          }
        }
        block_bits[lane] = bits;
      }
      workgroupBarrier();
    }
    if (lane == 0u) {
      settle_block(g, w, k, from_mask);
    }
    storageBarrier();
    let kept = workgroupUniformLoad(&kept_bits);
    for (var v = w + 1u + lane; v < wk; v += WG) {
      var acc = partials[removed + v];
      var rest = kept;
      while (rest != 0u) {
        let b = firstTrailingBit(rest);
        rest &= rest - 1u;
        let r = w * 32u + b;
        if (from_mask) {
          acc |= partials[mask + r * words + v];
          continue;
        }
        let a = sorted_box(g * kc + r);
        let ca = partials[params.off_scls + g * kc + r];
        for (var t = 0u; t < 32u && v * 32u + t < k; t++) {
          if ((acc & (1u << t)) == 0u && suppresses(a, ca, g * kc + v * 32u + t)) {
            acc |= 1u << t;
          }
        }
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

@compute @workgroup_size(WG)
fn nms_scan(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = wid.x + wid.y * nwg.x;
  if (g < params.groups) {
    walk_groups(lid.x, g, true);
  }
}

@compute @workgroup_size(WG)
fn nms_walk(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = wid.x + wid.y * nwg.x;
  if (g < params.groups) {
    walk_groups(lid.x, g, false);
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
