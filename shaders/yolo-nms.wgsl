// yolo-nms.wgsl: the YOLO post-process's side of nms.wgsl (src/ops/yolo-nms.ts): a detector's
// output [b, 4 + C, A] decoded by yolo_decode into the scratch, then hard NMS over each image (a
// group), class-aware unless `agnostic`, and the kept detections as rows of corners, score, class
// and image.
//   best class (multi = 0): box i is anchor i, its score the largest class score (the first of
//                           equal maxima gives the class), NaN when any class score is NaN
//   multi-label (multi = 1): box i is (anchor i / C, class i % C), its score that class's, NaN
//                           when any class score of the anchor is NaN (ultralytics' amax is NaN)

@group(0) @binding(3) var<storage, read> in_output: array<f32>;
@group(0) @binding(4) var<storage, read_write> out_boxes: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out_scores: array<f32>;
@group(0) @binding(6) var<storage, read_write> out_classes: array<i32>;
@group(0) @binding(8) var<storage, read_write> out_batch_index: array<i32>;

// Output row k of anchor a of image g.
fn raw(g: u32, k: u32, a: u32) -> f32 {
  return in_output[(g * (params.c + 4u) + k) * params.anchors + a];
}

fn score_bits(g: u32, i: u32) -> u32 {
  return partials[params.off_score + g * params.n + i];
}

fn anchor_of(i: u32) -> u32 {
  return select(i, i / params.c, params.multi == 1u);
}

fn corners(g: u32, i: u32) -> vec4<f32> {
  let at = params.off_box + 4u * (g * params.anchors + anchor_of(i));
  return bitcast<vec4<f32>>(vec4(partials[at], partials[at + 1u], partials[at + 2u], partials[at + 3u]));
}

// Box i's class, and the class NMS compares: one for every box when `agnostic`.
fn real_class(g: u32, i: u32) -> i32 {
  if (params.multi == 1u) {
    return i32(i % params.c);
  }
  return bitcast<i32>(partials[params.off_class + g * params.n + i]);
}

fn class_of(g: u32, i: u32) -> i32 {
  return select(real_class(g, i), 0, params.agnostic == 1u);
}

// Thread per (image, anchor): ultralytics' xywh2xyxy (half sides, then the corners), and the
// anchor's boxes' scores.
@compute @workgroup_size(WG)
fn yolo_decode(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg);
  let A = params.anchors;
  if (t >= params.groups * A) {
    return;
  }
  let g = t / A;
  let a = t % A;
  let x = raw(g, 0u, a);
  let y = raw(g, 1u, a);
  let dw = raw(g, 2u, a) * 0.5;
  let dh = raw(g, 3u, a) * 0.5;
  let box = vec4(x - dw, y - dh, x + dw, y + dh);
  let at = params.off_box + 4u * t;
  partials[at] = bitcast<u32>(box.x);
  partials[at + 1u] = bitcast<u32>(box.y);
  partials[at + 2u] = bitcast<u32>(box.z);
  partials[at + 3u] = bitcast<u32>(box.w);
  var nan = false;
  var best = bitcast<u32>(raw(g, 4u, a));
  var cls = 0u;
  for (var c = 0u; c < params.c; c++) {
    let bits = bitcast<u32>(raw(g, 4u + c, a));
    nan = nan || is_nan(bits);
    if (!is_nan(bits) && score_key(bits) > score_key(best)) {
      best = bits;
      cls = c;
    }
  }
  let nan_bits = 0x7fc00000u;
  if (params.multi == 1u) {
    for (var c = 0u; c < params.c; c++) {
      partials[params.off_score + g * params.n + a * params.c + c] = select(bitcast<u32>(raw(g, 4u + c, a)), nan_bits, nan);
    }
  } else {
    partials[params.off_score + g * params.n + a] = select(best, nan_bits, nan);
    partials[params.off_class + g * params.n + a] = cls;
  }
}

// Row `at` of the output: the kept box i of image g.
fn write_row(at: u32, g: u32, i: u32) {
  out_boxes[at] = corners(g, i);
  out_scores[at] = bitcast<f32>(score_bits(g, i));
  out_classes[at] = real_class(g, i);
  out_batch_index[at] = i32(g);
}
