// yolo-pairs.wgsl: the YOLO loss's pairs (tal.wgsl): as tal_pairs, with the scores the sigmoid of
// the class logits and the boxes and anchors in pixels (yolo_decode wrote them).

@group(0) @binding(3) var<storage, read> in_pred_scores: array<f32>;
@group(0) @binding(4) var<storage, read> in_gt_labels: array<i32>;
@group(0) @binding(5) var<storage, read> in_gt_boxes: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> in_gt_mask: array<i32>;

@compute @workgroup_size(WG)
fn yolo_pairs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = thread_index(gid, nwg);
  if (i >= params.b * params.a) {
    return;
  }
  let at = params.off_anch + 3u * (i % params.a);
  pair_rows(i, vec2(getf(at), getf(at + 1u)) * getf(at + 2u));
}

fn pair_inside(row: u32, anchor: vec2<f32>) -> bool {
  return in_gt(anchor, in_gt_boxes[row]);
}

// The CIoU of the gt and the box yolo_decode wrote (pixels).
fn pair_overlap(row: u32, i: u32) -> f32 {
  let d = params.off_dec + 4u * i;
  return ciou_u(in_gt_boxes[row], vec4(getf(d), getf(d + 1u), getf(d + 2u), getf(d + 3u)), false).value;
}

fn pair_score(i: u32, cls: u32) -> f32 {
  return logistic(in_pred_scores[i * params.c + cls]).x;
}
