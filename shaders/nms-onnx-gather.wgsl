// nms-onnx-gather.wgsl: `nms_onnx`'s side of nms.wgsl: a group is one (batch, class), whose boxes
// are the batch's and whose scores are the class's; a row (batch, class, box) per kept box, by
// batch, then class, then decreasing score.

@group(0) @binding(3) var<storage, read> in_boxes: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> in_scores: array<f32>;
@group(0) @binding(6) var<storage, read_write> out_selected: array<i32>;

fn score_bits(g: u32, i: u32) -> u32 {
  return bitcast<u32>(in_scores[g * params.n + i]);
}

// ONNX's corner boxes are sorted; its centre boxes are not.
fn corners(g: u32, i: u32) -> vec4<f32> {
  let b = in_boxes[(g / params.c) * params.n + i];
  if (params.center == 1u) {
    let h = b.zw * 0.5;
    return vec4(b.xy - h, b.xy + h);
  }
  return vec4(min(b.xy, b.zw), max(b.xy, b.zw));
}

// Every box of a group is of its class.
fn class_of(g: u32, i: u32) -> i32 {
  return 0;
}

// Row `at` of the output: (batch, class, box) of the kept box `box` of group g.
fn write_row(at: u32, g: u32, box: u32) {
  out_selected[3u * at] = i32(g / params.c);
  out_selected[3u * at + 1u] = i32(g % params.c);
  out_selected[3u * at + 2u] = i32(box);
}
