// tal-pair-rows.wgsl: the loop over an image's real gt rows that both pairs passes run (tal.wgsl,
// ops.md steps 1 and 2). The module that includes it declares in_gt_labels and in_gt_mask, and:
//   pair_score(i, cls)        anchor i's score in class cls, as a probability
//   pair_inside(row, anchor)  whether the anchor centre is a candidate of gt row `row` (step 1)
//   pair_overlap(row, i)      the overlap of gt row `row` and anchor i's predicted box, before the
//                             clamp at 0 (step 2)

fn pair_rows(i: u32, anchor: vec2<f32>) {
  let a = i % params.a;
  let b = i / params.a;
  for (var j = 0u; j < params.m; j++) {
    let row = b * params.m + j;
    // A padding row's pairs are never read (tal-assign.wgsl): nothing to write.
    if (in_gt_mask[row] != 1) {
      continue;
    }
    let cand = pair_inside(row, anchor);
    var om = vec2(0.0);
    if (cand) {
      om = pair_metric(pair_overlap(row, i), pair_score(i, class_of(in_gt_labels[row])));
    }
    store_pair(row * params.a + a, cand, om);
  }
}
