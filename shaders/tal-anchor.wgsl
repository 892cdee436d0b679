// tal-anchor.wgsl: tal_assign's outputs per anchor (tal.wgsl, ops.md steps 4 to 6): the gt row,
// then its label and box, with ultralytics' values at a background anchor (row 0's) and where
// there are no gt rows (label c, box 0). Boxes are plain floats: four columns, five with ROTATED.

@group(0) @binding(3) var<storage, read> in_gt_labels: array<i32>;
@group(0) @binding(4) var<storage, read> in_gt_boxes: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_labels: array<i32>;
@group(0) @binding(6) var<storage, read_write> out_boxes: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_foreground: array<i32>;
@group(0) @binding(8) var<storage, read_write> out_gt_index: array<i32>;
@group(0) @binding(9) var<storage, read> in_gt_mask: array<i32>;

@compute @workgroup_size(WG)
fn tal_anchor(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = thread_index(gid, nwg);
  if (i >= params.b * params.a) {
    return;
  }
  let b = i / params.a;
  let g = assign_and_keep(i);
  let row = u32(max(g, 0));
  let cols = select(4u, 5u, ROTATED);
  out_gt_index[i] = i32(row);
  out_foreground[i] = select(0, 1, g >= 0);
  if (params.m == 0u) {
    out_labels[i] = i32(params.c);
    for (var q = 0u; q < cols; q++) {
      out_boxes[i * cols + q] = 0.0;
    }
  } else {
    out_labels[i] = in_gt_labels[b * params.m + row];
    let at = (b * params.m + row) * cols;
    for (var q = 0u; q < cols; q++) {
      out_boxes[i * cols + q] = in_gt_boxes[at + q];
    }
  }
}
