// tal-pair-rows.wgsl: the loop over an image's real gt rows that both pairs passes run (tal.wgsl,
// ops.md steps 1 and 2). The module that includes it declares in_gt_labels, in_gt_boxes and
// in_gt_mask, and pair_score(i, cls): anchor i's score in class cls, as a probability.

fn pair_rows(i: u32, anchor: vec2<f32>, pred: vec4<f32>) {
  let a = i % params.a;
  let b = i / params.a;
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
      om = pair_metric(g, pred, pair_score(i, class_of(in_gt_labels[row])));
    }
    store_pair(row * params.a + a, cand, om);
  }
}
