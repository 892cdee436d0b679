// nms-onnx-gather.wgsl: `nms_onnx`'s last pass (nms.wgsl): a row (batch, class, box) per kept box,
// by batch, then class, then decreasing score, and their count.

@group(0) @binding(6) var<storage, read_write> out_selected: array<i32>;

// A group is one (batch, class): every box in it is of that class.
fn class_of(i: u32) -> i32 {
  return 0;
}

// Row `at` of the output: (batch, class, box) of the kept box `box` of group g.
fn write_row(at: u32, g: u32, box: u32) {
  out_selected[3u * at] = i32(g / params.c);
  out_selected[3u * at + 1u] = i32(g % params.c);
  out_selected[3u * at + 2u] = i32(box);
}
