// tal-pairs.wgsl: tal_assign's pairs (tal.wgsl): one thread per (image, anchor), over the image's
// real gt rows (tal-pair-rows.wgsl).

@group(0) @binding(3) var<storage, read> in_scores: array<f32>;
@group(0) @binding(4) var<storage, read> in_pred_boxes: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> in_anchors: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read> in_gt_labels: array<i32>;
@group(0) @binding(7) var<storage, read> in_gt_boxes: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> in_gt_mask: array<i32>;

@compute @workgroup_size(WG)
fn tal_pairs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = thread_index(gid, nwg);
  if (i >= params.b * params.a) {
    return;
  }
  pair_rows(i, in_anchors[i % params.a], in_pred_boxes[i]);
}

fn pair_score(i: u32, cls: u32) -> f32 {
  return in_scores[i * params.c + cls];
}
