// yolo-sum.wgsl: the YOLO loss's last pass (tal.wgsl, ops.md step 6): one workgroup adds every
// anchor's box, cls and dfl terms in a fixed order, divides by the normaliser, applies the gains,
// and writes the components and the total b * (box + cls + dfl).

@group(0) @binding(3) var<storage, read_write> out_loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> out_components: array<f32>;

var<workgroup> lane_sums: array<vec3<f32>, WG>;

@compute @workgroup_size(WG)
fn yolo_sum(@builtin(local_invocation_index) lane: u32) {
  let count = params.b * params.a;
  var s = vec3(0.0);
  var comp = vec3(0.0);
  for (var i = lane; i < count; i += WG) {
    let at = params.off_part + 3u * i;
    let y = vec3(getf(at), getf(at + 1u), getf(at + 2u)) - comp;
    let t = s + y;
    comp = (t - s) - y;
    s = t;
  }
  lane_sums[lane] = s - comp;
  workgroupBarrier();
  if (lane == 0u) {
    var total = vec3(0.0);
    var c = vec3(0.0);
    for (var l = 0u; l < WG; l++) {
      let y = lane_sums[l] - c;
      let t = total + y;
      c = (t - total) - y;
      total = t;
    }
    let tss = getf(params.off_tot);
    let parts = vec3(params.box_gain, params.cls_gain, params.dfl_gain) * total / tss;
    out_components[0] = parts.x;
    out_components[1] = parts.y;
    out_components[2] = parts.z;
    out_loss[0] = f32(params.b) * (parts.x + parts.y + parts.z);
  }
}
