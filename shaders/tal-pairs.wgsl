// tal-pairs.wgsl: tal_assign's pairs (tal.wgsl): one thread per (image, gt row, anchor).

@group(0) @binding(3) var<storage, read> in_scores: array<f32>;
@group(0) @binding(4) var<storage, read> in_pred_boxes: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> in_anchors: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read> in_gt_labels: array<i32>;
@group(0) @binding(7) var<storage, read> in_gt_boxes: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> in_gt_mask: array<i32>;

@compute @workgroup_size(WG)
fn tal_pairs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = thread_index(gid, nwg);
  let na = params.a;
  if (p >= params.b * params.m * na) {
    return;
  }
  let ab = pair_of(p);
  let a = ab.x;
  let row = ab.y;
  let b = ab.z;
  // A padding row's pairs are never read (tal-assign.wgsl): nothing to write.
  if (in_gt_mask[row] != 1) {
    return;
  }
  let g = in_gt_boxes[row];
  let cand = in_gt(in_anchors[a], g);
  var om = vec2(0.0);
  if (cand) {
    let score = in_scores[(b * na + a) * params.c + class_of(in_gt_labels[row])];
    om = pair_metric(g, in_pred_boxes[b * na + a], score);
  }
  store_pair(p, cand, om);
}
