// tal-pairs.wgsl: tal_assign's pairs (tal.wgsl): one thread per (image, anchor), over the image's
// real gt rows (tal-pair-rows.wgsl). The boxes are bound as plain floats, four columns (xyxy), or
// five (cx, cy, w, h, theta) for the rotated assigner (ROTATED): its in-box test and ProbIoU use
// rotated-common.wgsl, which this module includes.

@group(0) @binding(3) var<storage, read> in_scores: array<f32>;
@group(0) @binding(4) var<storage, read> in_pred_boxes: array<f32>;
@group(0) @binding(5) var<storage, read> in_anchors: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read> in_gt_labels: array<i32>;
@group(0) @binding(7) var<storage, read> in_gt_boxes: array<f32>;
@group(0) @binding(8) var<storage, read> in_gt_mask: array<i32>;

// ultralytics' probiou default, as RotatedTaskAlignedAssigner calls it.
const PROBIOU_EPS: f32 = 1e-7;

@compute @workgroup_size(WG)
fn tal_pairs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = thread_index(gid, nwg);
  if (i >= params.b * params.a) {
    return;
  }
  pair_rows(i, in_anchors[i % params.a]);
}

fn pair_score(i: u32, cls: u32) -> f32 {
  return in_scores[i * params.c + cls];
}

// Box k of a buffer of boxes: its four or five columns (a fifth of 0 for xyxy).
fn gt_box(k: u32) -> array<f32, 5> {
  if (ROTATED) {
    let o = 5u * k;
    return array<f32, 5>(in_gt_boxes[o], in_gt_boxes[o + 1u], in_gt_boxes[o + 2u], in_gt_boxes[o + 3u], in_gt_boxes[o + 4u]);
  }
  let o = 4u * k;
  return array<f32, 5>(in_gt_boxes[o], in_gt_boxes[o + 1u], in_gt_boxes[o + 2u], in_gt_boxes[o + 3u], 0.0);
}
fn pred_box(k: u32) -> array<f32, 5> {
  if (ROTATED) {
    let o = 5u * k;
    return array<f32, 5>(in_pred_boxes[o], in_pred_boxes[o + 1u], in_pred_boxes[o + 2u], in_pred_boxes[o + 3u], in_pred_boxes[o + 4u]);
  }
  let o = 4u * k;
  return array<f32, 5>(in_pred_boxes[o], in_pred_boxes[o + 1u], in_pred_boxes[o + 2u], in_pred_boxes[o + 3u], 0.0);
}
fn xyxy(v: array<f32, 5>) -> vec4<f32> {
  return vec4(v[0], v[1], v[2], v[3]);
}

// ultralytics' RotatedTaskAlignedAssigner.select_candidates_in_gts: the corners a, b, d of
// xywhr2xyxyxyxy (v1 = (w/2) (cos, sin), v2 = (h/2) (-sin, cos); a = c + v1 + v2, b = c + v1 - v2,
// d = c - v1 + v2), and p is inside when 0 <= ap.ab <= |ab|^2 and 0 <= ap.ad <= |ad|^2 (edges in).
fn in_rotated(p: vec2<f32>, g: array<f32, 5>) -> bool {
  let cs = cos_sin(g[4]);
  let c = vec2(g[0], g[1]);
  let v1 = (0.5 * g[2]) * cs;
  let v2 = vec2(-(0.5 * g[3]) * cs.y, (0.5 * g[3]) * cs.x);
  let a = c + v1 + v2;
  let ab = (c + v1 - v2) - a;
  let ad = (c - v1 + v2) - a;
  let ap = p - a;
  let pab = ap.x * ab.x + ap.y * ab.y;
  let pad = ap.x * ad.x + ap.y * ad.y;
  return pab >= 0.0 && pab <= ab.x * ab.x + ab.y * ab.y && pad >= 0.0 && pad <= ad.x * ad.x + ad.y * ad.y;
}

fn pair_inside(row: u32, anchor: vec2<f32>) -> bool {
  let g = gt_box(row);
  if (ROTATED) {
    return in_rotated(anchor, g);
  }
  return in_gt(anchor, xyxy(g));
}

// The CIoU (xyxy), or ProbIoU(gt, pred) with eps 1e-7: 1 - hd of rotated-common.wgsl.
fn pair_overlap(row: u32, i: u32) -> f32 {
  let g = gt_box(row);
  let p = pred_box(i);
  if (ROTATED) {
    return 1.0 - hd_of(bhatta(pair_of(p, g, false), PROBIOU_EPS).bd0, PROBIOU_EPS);
  }
  return ciou_u(xyxy(g), xyxy(p), false).value;
}
