// nms-onnx-gather.wgsl: `nms_onnx`'s last pass (nms.wgsl): a row (batch, class, box) per kept box,
// by batch, then class, then decreasing score, and their count.

@group(0) @binding(6) var<storage, read_write> out_selected: array<i32>;

// A group is one (batch, class): every box in it is of that class.
fn class_of(i: u32) -> i32 {
  return 0;
}

@compute @workgroup_size(WG)
fn nms_gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg);
  if (t >= max(params.groups * params.cap, 1u)) {
    return;
  }
  let at = gather_slot(t);
  let k = t % max(params.cap, 1u);
  if (at.x < params.groups && k < partials[params.off_gcount + at.x]) {
    let row = 3u * (at.y + k);
    out_selected[row] = i32(at.x / params.c);
    out_selected[row + 1u] = i32(at.x % params.c);
    out_selected[row + 2u] = i32(partials[params.off_sel + t]);
  }
}
