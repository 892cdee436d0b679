// nms-gather.wgsl: `nms`'s side of nms.wgsl: where its boxes, scores and classes come from, and
// the kept indices into `keep`.

@group(0) @binding(3) var<storage, read> in_boxes: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> in_scores: array<f32>;
@group(0) @binding(5) var<storage, read> in_classes: array<i32>;
@group(0) @binding(6) var<storage, read_write> out_keep: array<i32>;

fn score_bits(g: u32, i: u32) -> u32 {
  return bitcast<u32>(in_scores[i]);
}

// Box i's corners as `format` says, not sorted (torchvision's).
fn corners(g: u32, i: u32) -> vec4<f32> {
  let b = in_boxes[i];
  if (params.format == 1u) {
    let h = b.zw * 0.5;
    return vec4(b.xy - h, b.xy + h);
  }
  if (params.format == 2u) {
    return vec4(b.xy, b.xy + b.zw);
  }
  return b;
}

// Box i's class; one class when `classes` is absent.
fn class_of(g: u32, i: u32) -> i32 {
  if (params.has_classes == 1u) {
    return in_classes[i];
  }
  return 0;
}

// Row `at` of the output: the kept box `box` (group g is the only one).
fn write_row(at: u32, g: u32, box: u32) {
  out_keep[at] = i32(box);
}
