// tal-scores.wgsl: tal_assign's targetScores (tal.wgsl, ops.md step 5): per anchor a row of c
// values, non-zero only at a foreground anchor, in its gt's class.

@group(0) @binding(3) var<storage, read> in_gt_labels: array<i32>;
@group(0) @binding(4) var<storage, read_write> out_target_scores: array<f32>;
@group(0) @binding(5) var<storage, read> in_gt_mask: array<i32>;

@compute @workgroup_size(WG)
fn tal_scores(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = thread_index(gid, nwg);
  if (i >= params.b * params.a) {
    return;
  }
  let b = i / params.a;
  let g = bitcast<i32>(partials[params.off_anc + i]);
  var ts = 0.0;
  var cls = 0u;
  if (g >= 0) {
    ts = target_score(b, i % params.a, u32(g));
    cls = class_of(in_gt_labels[b * params.m + u32(g)]);
  }
  let nc = params.c;
  for (var c = 0u; c < nc; c++) {
    out_target_scores[i * nc + c] = select(0.0, ts, g >= 0 && c == cls);
  }
}
