// nms-common.wgsl: what both NMS modules share (nms.wgsl, nms-tfjs.wgsl): the Run uniform every
// kernel has, scores ordered by their bits, and ops.md's IoU.

struct Run {
  n: u32,
  threads: u32,
  flags: u32,
  scale: f32,
}

// A score's bits mapped so that unsigned order is numeric order (-0 as +0): infinities and -0
// order as numbers whatever the device does with them.
fn score_key(bits: u32) -> u32 {
  let b = select(bits, 0u, bits == 0x80000000u);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn is_nan(bits: u32) -> bool {
  return (bits & 0x7fffffffu) > 0x7f800000u;
}

fn finite4(v: vec4<f32>) -> bool {
  let e = bitcast<vec4<u32>>(v) & vec4(0x7f800000u);
  return all(e != vec4(0x7f800000u));
}

// ops.md's IoU: 0 for disjoint or touching boxes, inverted or zero-area ones, and any box with a
// non-finite coordinate. Identical boxes give exactly 1: the intersection's sides are computed as
// the areas' are, so inter equals area bit for bit.
fn box_iou(a: vec4<f32>, b: vec4<f32>) -> f32 {
  if (!finite4(a) || !finite4(b)) {
    return 0.0;
  }
  let iw = min(a.z, b.z) - max(a.x, b.x);
  let ih = min(a.w, b.w) - max(a.y, b.y);
  if (!(iw > 0.0 && ih > 0.0)) {
    return 0.0;
  }
  // Both boxes have positive width and height here, so the union is at least inter > 0.
  let inter = iw * ih;
  return inter / ((a.z - a.x) * (a.w - a.y) + (b.z - b.x) * (b.w - b.y) - inter);
}
