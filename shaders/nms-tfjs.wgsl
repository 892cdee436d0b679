// nms-tfjs.wgsl: `nms_tfjs`, tfjs-core's nonMaxSuppressionImpl_ with Soft-NMS (ops.md), in one
// workgroup (src/ops/nms.ts). TF.js decays a candidate lazily, when it is popped, by the boxes
// selected since it was last looked at; this pass decays every live candidate as soon as a box is
// selected, and selects by the key TF.js's pops come to (rank_key): a candidate's current score
// where its input score is >= 0, since decay only lowers such a score and a popped candidate whose
// score changed goes back with it; its input score where that is negative, since decay raises such
// a score, so TF.js pops it at its stale input score and, risen, selects it at once. Equal keys:
// lower index first in both. The score reported is the current one.
// Each step: the largest key by a tree over the lanes, then every lane's candidates against the box
// just selected: dropped at IoU >= iouThreshold, else decayed, and dropped once their score is
// <= scoreThreshold.

override WG: u32 = 64u;


struct Params {
  n: u32,
  // min(max(maxOutputSize, 0), n).
  limit: u32,
  iou_threshold: f32,
  // -0.5 / softNmsSigma, or 0 for hard NMS.
  decay: f32,
  // 1: score > score_threshold; 2: the threshold -Infinity (drops only -Infinity). A +Infinity
  // threshold comes as limit 0.
  score_mode: u32,
  score_threshold: f32,
  off_cur: u32,
}

@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> params: Params;
// The scratch: CUR [n], the bits of each box's current score, DEAD (a NaN) once it is no longer a
// candidate. Kept as bits: a NaN is never made by a constant expression, which WGSL forbids.
@group(0) @binding(2) var<storage, read_write> partials: array<u32>;
@group(0) @binding(3) var<storage, read> in_boxes: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> in_scores: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_selected_indices: array<i32>;
@group(0) @binding(6) var<storage, read_write> out_selected_scores: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_count: array<i32>;

const DEAD: u32 = 0x7fc00000u;

fn bits(x: f32) -> u32 {
  return bitcast<u32>(x);
}
fn is_pos_inf(b: u32) -> bool {
  return b == 0x7f800000u;
}

// score > scoreThreshold, on the bits (a NaN score never passes).
fn passes(b: u32) -> bool {
  if (is_nan(b)) {
    return false;
  }
  if (params.score_mode == 2u) {
    return b != 0xff800000u;
  }
  if (params.score_mode == 1u) {
    return score_key(b) > score_key(bits(params.score_threshold));
  }
  return true;
}

fn corners(i: u32) -> vec4<f32> {
  let b = in_boxes[i];
  return vec4(min(b.xy, b.zw), max(b.xy, b.zw));
}

var<workgroup> best_key: array<u32, WG>;
var<workgroup> best_index: array<u32, WG>;
var<workgroup> chosen: u32;

const NONE: u32 = 0xffffffffu;

// The key box i is selected by (see the top of this file): its current score `cur` (bits), or its
// input score where that is negative (not -0).
fn rank_key(i: u32, cur: u32) -> u32 {
  let s = bits(in_scores[i]);
  return select(cur, s, (s & 0x80000000u) != 0u && (s & 0x7fffffffu) != 0u);
}

// a before b (keys as bits): the larger key, then the lower index; NONE last.
fn better(sa: u32, ia: u32, sb: u32, ib: u32) -> bool {
  if (ib == NONE) {
    return ia != NONE;
  }
  if (ia == NONE) {
    return false;
  }
  let ka = score_key(sa);
  let kb = score_key(sb);
  return ka > kb || (ka == kb && ia < ib);
}

@compute @workgroup_size(WG)
fn nms_soft(@builtin(local_invocation_id) lid: vec3<u32>) {
  let lane = lid.x;
  let n = params.n;
  for (var i = lane; i < n; i += WG) {
    let s = in_scores[i];
    partials[params.off_cur + i] = select(DEAD, bits(s), passes(bits(s)));
  }
  storageBarrier();
  workgroupBarrier();
  var count = 0u;
  loop {
    if (count >= params.limit) {
      break;
    }
    // The lane's best live candidate, then the tree over the lanes.
    var bs = 0u;
    var bi = NONE;
    for (var i = lane; i < n; i += WG) {
      let s = partials[params.off_cur + i];
      if (is_nan(s)) {
        continue;
      }
      let k = rank_key(i, s);
      if (better(k, i, bs, bi)) {
        bs = k;
        bi = i;
      }
    }
    best_key[lane] = bs;
    best_index[lane] = bi;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half = half / 2u) {
      if (lane < half && better(best_key[lane + half], best_index[lane + half], best_key[lane], best_index[lane])) {
        best_key[lane] = best_key[lane + half];
        best_index[lane] = best_index[lane + half];
      }
      workgroupBarrier();
    }
    if (lane == 0u) {
      chosen = best_index[0];
      if (chosen != NONE) {
        out_selected_indices[count] = i32(chosen);
        out_selected_scores[count] = bitcast<f32>(partials[params.off_cur + chosen]);
        partials[params.off_cur + chosen] = DEAD;
      }
    }
    let c = workgroupUniformLoad(&chosen);
    if (c == NONE) {
      break;
    }
    count++;
    storageBarrier();
    let box = corners(c);
    for (var i = lane; i < n; i += WG) {
      var s = partials[params.off_cur + i];
      if (is_nan(s)) {
        continue;
      }
      let v = box_iou(box, corners(i));
      if (v >= params.iou_threshold) {
        s = DEAD;
      } else if (v != 0.0 && params.decay != 0.0 && !is_pos_inf(s)) {
        s = bits(bitcast<f32>(s) * exp(params.decay * v * v));
        if (!passes(s)) {
          s = DEAD;
        }
      }
      partials[params.off_cur + i] = s;
    }
    storageBarrier();
    workgroupBarrier();
  }
  if (lane == 0u) {
    out_count[0] = i32(count);
  }
}
