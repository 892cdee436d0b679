// yolo-anchor.wgsl: the YOLO loss's assignment per anchor (tal.wgsl, ops.md step 4): its gt row,
// and that gt's class and box for the loss pass.

@group(0) @binding(3) var<storage, read> in_gt_labels: array<i32>;
@group(0) @binding(4) var<storage, read> in_gt_boxes: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> in_gt_mask: array<i32>;

@compute @workgroup_size(WG)
fn yolo_anchor(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = thread_index(gid, nwg);
  if (i >= params.b * params.a) {
    return;
  }
  let b = i / params.a;
  let g = assign_and_keep(i);
  if (g >= 0) {
    let row = b * params.m + u32(g);
    partials[params.off_alab + i] = class_of(in_gt_labels[row]);
    let box = in_gt_boxes[row];
    let at = params.off_abox + 4u * i;
    setf(at, box.x);
    setf(at + 1u, box.y);
    setf(at + 2u, box.z);
    setf(at + 3u, box.w);
  }
}
