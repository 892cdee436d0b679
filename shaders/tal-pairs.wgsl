// tal-pairs.wgsl: tal_assign's pairs (tal.wgsl): one thread per (image, anchor), over the image's
// real gt rows.

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
  let a = i % params.a;
  let b = i / params.a;
  let anchor = in_anchors[a];
  let pred = in_pred_boxes[i];
  for (var j = 0u; j < params.m; j++) {
    let row = b * params.m + j;
    // A padding row's pairs are never read (tal-assign.wgsl): nothing to write.
    if (in_gt_mask[row] != 1) {
      continue;
    }
    let g = in_gt_boxes[row];
    let cand = in_gt(anchor, g);
    var om = vec2(0.0);
    if (cand) {
      om = pair_metric(g, pred, in_scores[i * params.c + class_of(in_gt_labels[row])]);
    }
    store_pair(row * params.a + a, cand, om);
  }
}
