// nms-gather.wgsl: `nms`'s last pass (nms.wgsl): the kept indices into `keep`, and their count.

@group(0) @binding(5) var<storage, read> in_classes: array<i32>;
@group(0) @binding(6) var<storage, read_write> out_keep: array<i32>;

// Box i's class; one class when `classes` is absent.
fn class_of(i: u32) -> i32 {
  if (params.has_classes == 1u) {
    return in_classes[i];
  }
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
    out_keep[at.y + k] = i32(partials[params.off_sel + t]);
  }
}
