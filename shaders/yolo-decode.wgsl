// yolo-decode.wgsl: the YOLO loss's first pass (tal.wgsl, ops.md "Decode"): per (image, anchor)
// the DFL distances, the softmax's expectation over the r bins of each side, and the predicted box
// in pixels for the assignment; the first image also writes each anchor's centre and stride.

@group(0) @binding(3) var<storage, read> in_pred_dist: array<f32>;
@group(0) @binding(4) var<storage, read> in_anchors: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read> in_strides: array<f32>;

@compute @workgroup_size(WG)
fn yolo_decode(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = thread_index(gid, nwg);
  if (i >= params.b * params.a) {
    return;
  }
  let a = i % params.a;
  let anchor = in_anchors[a];
  let stride = in_strides[a];
  if (i < params.a) {
    setf(params.off_anch + 3u * a, anchor.x);
    setf(params.off_anch + 3u * a + 1u, anchor.y);
    setf(params.off_anch + 3u * a + 2u, stride);
  }
  let d = dfl_distances(i);
  let box = vec4(anchor - d.xy, anchor + d.zw) * stride;
  let at = params.off_dec + 4u * i;
  setf(at, box.x);
  setf(at + 1u, box.y);
  setf(at + 2u, box.z);
  setf(at + 3u, box.w);
}
