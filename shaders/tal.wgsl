// tal.wgsl: what every pass of the task-aligned assigner and the YOLOv8 loss shares (ops.md,
// "Task-aligned assignment and the YOLOv8 loss"). The passes live in modules of their own
// (tal-*.wgsl, yolo-*.wgsl), each made of common.wgsl, boxes.wgsl, this file and the pass's file,
// and each declaring only the buffers it binds: together the two ops bind more buffers than the 8
// storage buffers per stage of a device with the default limits. src/ops/tal.ts lists the passes:
//   yolo_decode   thread per (image, anchor): the DFL distances, the predicted box in pixels
//   tal_pairs     thread per (image, anchor), over its real gt rows: candidate, overlap, metric
//                 (CIoU, or with ROTATED the rotated in-box test and ProbIoU)     (yolo_pairs)
//   tal_topk      workgroup per gt row: the topk anchors by (metric desc, index asc), marked
//   tal_anchor    thread per (image, anchor): its gt (one selector, else the argmax of the
//                 overlaps over every row), the assigner's integer outputs           (yolo_anchor)
//   tal_gtmax     workgroup per gt row: the largest metric and overlap over the anchors it got
//   tal_scores    thread per (image, anchor): targetScores                          (yolo_ts)
//   yolo_tss      one workgroup: the normaliser, a fixed-order sum
//   yolo_loss     thread per (image, anchor): BCE over its classes, CIoU and DFL at a foreground
//                 anchor, and both gradients
//   yolo_sum      one workgroup: the three sums in a fixed order, the loss and components
// No atomics on floats and fixed orders everywhere: the same inputs give the same bits.

override WG: u32 = 64u;
// 0: tal_assign, 1: yolo_detection_loss.
override OP: u32 = 0u;
// The rotated assigner (rotated_tal_assign, a helper program): boxes of five columns
// (cx, cy, w, h, theta), the rotated in-box test and ProbIoU in tal-pairs.wgsl, five columns
// copied in tal-anchor.wgsl. Only tal_assign's modules read it (OP 0).
override ROTATED: bool = false;

// The flags this header's passes read, and the Run uniform every kernel shares with the runtime:
// fused-header.wgsl's, which these modules cannot take whole (its four storage bindings would
// leave too few of a default device's 8); test/runtime/compile/contracts.test.ts holds the flags to
// the runtime's bits, and the contract check the Run layout.
const FLAG_GRAD_OUTPUT: u32 = 2u;
const FLAG_GRAD: u32 = 16u;

struct Run {
  n: u32,
  threads: u32,
  flags: u32,
  scale: f32,
}

// Sizes, params, and the scratch's layout (word offsets, set by src/ops/tal.ts).
struct Params {
  b: u32,
  a: u32,
  c: u32,
  m: u32,
  d: u32,
  topk: u32,
  alpha: f32,
  beta: f32,
  eps: f32,
  box_gain: f32,
  cls_gain: f32,
  dfl_gain: f32,
  off_dec: u32,
  off_anch: u32,
  off_ov: u32,
  off_met: u32,
  off_gmax: u32,
  off_anc: u32,
  off_alab: u32,
  off_abox: u32,
  off_ts: u32,
  off_part: u32,
  off_tot: u32,
}

@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> params: Params;
// The scratch, as u32 words (floats by their bits):
//   DEC  [b, a, 4]  yolo: the predicted box in pixels
//   ANCH [a, 3]     yolo: the anchor in grid units, and its stride
//   OV   [b, m, a]  the overlap of a candidate pair, -1 for every other pair
//   MET  [b, m, a]  the metric's bits; SEL set where the gt row selected the anchor
//   GMAX [b, m, 2]  the largest metric and overlap over the anchors a gt row got
//   ANC  [b, a]     the anchor's gt row, -1 for a background anchor
//   ALAB [b, a]     yolo: the class of the anchor's gt
//   ABOX [b, a, 4]  yolo: the box of the anchor's gt, in pixels
//   TS   [b, a]     yolo: the anchor's target score
//   PART [b, a, 3]  yolo: the anchor's box, cls and dfl terms
//   TOT  [4]        yolo: the normaliser
@group(0) @binding(2) var<storage, read_write> partials: array<u32>;

const SEL: u32 = 0x80000000u;
// ultralytics' eps of the CIoU, in the boxes' units (ops.md: "e = 1e-7").
const CIOU_E: f32 = 1e-7;
// The in-gt test's fixed margin (not eps).
const IN_GT: f32 = 1e-9;

fn getf(i: u32) -> f32 {
  return bitcast<f32>(partials[i]);
}
fn setf(i: u32, v: f32) {
  partials[i] = bitcast<u32>(v);
}

fn has_flag(f: u32) -> bool {
  return (run.flags & f) != 0u;
}

// The flat index of a thread, over a grid that may have been folded into two dimensions.
fn thread_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// x^y for x >= 0, as pow gives it: 0^0 = 1, 0^y = 0. Exact forms for the exponents ultralytics
// uses (alpha 0.5 and 1, beta 6): WGSL's pow may be thousands of ULP off.
fn pow_u(x: f32, y: f32) -> f32 {
  if (y == 0.0) {
    return 1.0;
  }
  if (!(x > 0.0)) {
    return select(x, 0.0, x <= 0.0);
  }
  if (y == 0.5) {
    return sqrt(x);
  }
  if (y == floor(y) && y <= 64.0) {
    var e = u32(y);
    var base = x;
    var r = 1.0;
    loop {
      if ((e & 1u) != 0u) {
        r = r * base;
      }
      e = e >> 1u;
      if (e == 0u) {
        break;
      }
      base = base * base;
    }
    return r;
  }
  return exp2(y * log2(x));
}

// The class of a gt row, kept inside [0, c) so that a bad label read from a GPU tensor (the
// runtime's value check refuses the call) never indexes out of range.
fn class_of(label: i32) -> u32 {
  return u32(clamp(label, 0, i32(params.c) - 1));
}

// Whether an anchor centre lies inside a gt box, with the fixed margin (ops.md, step 1).
fn in_gt(anchor: vec2<f32>, g: vec4<f32>) -> bool {
  let d = min(anchor - g.xy, g.zw - anchor);
  return min(d.x, d.y) > IN_GT;
}

// ultralytics' CIoU of two xyxy boxes (ops.md, "ciou_u"): the eps on the heights, the union and
// the squared diagonal; k = v / (v - iou + 1 + e) a constant of the gradient.
struct CiouU {
  value: f32,
  // d(1 - ciou) / d(first box), with k constant.
  grad: vec4<f32>,
}

fn ciou_u(p: vec4<f32>, g: vec4<f32>, want_grad: bool) -> CiouU {
  let wh1 = vec2(p.z - p.x, p.w - p.y + CIOU_E);
  let wh2 = vec2(g.z - g.x, g.w - g.y + CIOU_E);
  let iw = min(p.z, g.z) - max(p.x, g.x);
  let ih = min(p.w, g.w) - max(p.y, g.y);
  let inter = max(iw, 0.0) * max(ih, 0.0);
  let area1 = wh1.x * wh1.y;
  let uni = area1 + wh2.x * wh2.y - inter + CIOU_E;
  let iou = safe_div(inter, uni);
  let cw = max(p.z, g.z) - min(p.x, g.x);
  let ch = max(p.w, g.w) - min(p.y, g.y);
  let c2 = cw * cw + ch * ch + CIOU_E;
  let dx = (g.x + g.z) - (p.x + p.z);
  let dy = (g.y + g.w) - (p.y + p.w);
  let rho2 = (dx * dx + dy * dy) * 0.25;
  // A(w2, h2) - A(w1, h1), as iou_loss's CIoU (boxes.wgsl).
  let gap = aspect_gap(wh1, wh2);
  let v = FOUR_OVER_PI2 * gap * gap;
  let k = safe_div(v, v - iou + (1.0 + CIOU_E));
  var out: CiouU;
  out.value = iou - (safe_div(rho2, c2) + k * v);
  out.grad = vec4(0.0);
  if (!want_grad) {
    return out;
  }
  // The intersection: only where both sides are > 0; a min or max tie splits the gradient.
  var dinter = vec4(0.0);
  if (iw > 0.0 && ih > 0.0) {
    let s1 = select(select(vec2(0.0), vec2(0.5), p.xy == g.xy), vec2(1.0), p.xy > g.xy);
    let s2 = select(select(vec2(0.0), vec2(0.5), p.zw == g.zw), vec2(1.0), p.zw < g.zw);
    dinter = vec4(-s1.x * ih, -s1.y * iw, s2.x * ih, s2.y * iw);
  }
  let darea = vec4(-wh1.y, -wh1.x, wh1.y, wh1.x);
  let diou = (dinter * (uni + inter) - inter * darea) * safe_div(1.0, uni * uni);
  // The enclosing box's diagonal and the centres' distance.
  let t1 = select(select(vec2(0.0), vec2(0.5), p.xy == g.xy), vec2(1.0), p.xy < g.xy);
  let t2 = select(select(vec2(0.0), vec2(0.5), p.zw == g.zw), vec2(1.0), p.zw > g.zw);
  let dc2 = 2.0 * vec4(-t1.x * cw, -t1.y * ch, t2.x * cw, t2.y * ch);
  let drho = -0.5 * vec4(dx, dy, dx, dy);
  let ddist = drho / c2 - (rho2 / c2) / c2 * dc2;
  // v through A(w1, h1): dA/dw = h / (w^2 + h^2), dA/dh = -w / (w^2 + h^2).
  let r = dot(wh1, wh1);
  let dv_da = -2.0 * FOUR_OVER_PI2 * gap;
  let dv = dv_da * vec2(safe_div(wh1.y, r), safe_div(-wh1.x, r));
  out.grad = -diou + ddist + k * vec4(-dv.x, -dv.y, dv.x, dv.y);
  return out;
}

// A candidate pair's overlap and metric (ops.md, step 2) from its overlap before the clamp (the
// CIoU, or the rotated assigner's ProbIoU): max(c, 0) (an exact +0 where c is not positive) and
// score^alpha * overlap^beta.
fn pair_metric(c: f32, score: f32) -> vec2<f32> {
  let ov = select(0.0, c, c > 0.0);
  return vec2(ov, pow_u(score, params.alpha) * pow_u(ov, params.beta));
}

// Stores a pair's overlap and metric: -1 and 0 for a pair that is not a candidate.
fn store_pair(p: u32, cand: bool, om: vec2<f32>) {
  setf(params.off_ov + p, select(-1.0, om.x, cand));
  partials[params.off_met + p] = select(0u, bitcast<u32>(om.y) & 0x7fffffffu, cand);
}
