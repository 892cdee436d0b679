// nms-gather.wgsl: `nms`'s part of the last pass (nms.wgsl's nms_gather): its classes, and the
// kept indices into `keep`.

@group(0) @binding(5) var<storage, read> in_classes: array<i32>;
@group(0) @binding(6) var<storage, read_write> out_keep: array<i32>;

// Box i's class; one class when `classes` is absent.
fn class_of(i: u32) -> i32 {
  if (params.has_classes == 1u) {
    return in_classes[i];
  }
  return 0;
}

// Row `at` of the output: the kept box `box` (group g is the only one).
fn write_row(at: u32, g: u32, box: u32) {
  out_keep[at] = i32(box);
}
