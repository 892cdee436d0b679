// reduce.wgsl: one level of the fixed-shape tree that adds the per-thread partials of fused.wgsl.
//
// Workgroup g owns the span of RWG * per consecutive partials starting at g * RWG * per. Lane t
// adds the span's entries t, t + RWG, t + 2 RWG, ... (per of them, neighbouring lanes reading
// neighbouring values) with compensated summation; the lanes' sums are then added pairwise in
// workgroup memory, always in the same order, and the workgroup writes one value. The runtime
// runs levels until one value is left, the last one times `scale` (the runtime passes 1: the
// fused pass scales each loss before adding it) or, for a denominator (denominator.wgsl), inverted. The shape of
// the tree depends only on the count and the plan, so the same inputs give the same bits.

override RWG: u32 = 64u;

// invert (last level of a denominator's tree): write 1 / sum, 0 for a sum of 0.
struct Reduce {
  count: u32,
  per: u32,
  scale: f32,
  invert: u32,
}

@group(0) @binding(0) var<uniform> red: Reduce;
@group(0) @binding(1) var<storage, read> partials_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> out_value: array<f32>;

var<workgroup> lane_sums: array<f32, RWG>;

@compute @workgroup_size(RWG)
fn reduce_partials(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let group = wid.x + wid.y * nwg.x;
  // A folded grid may hold more workgroups than the level has (uniform: the whole group returns).
  let span = RWG * red.per;
  // No partials at all (an empty input) still writes its one sum, 0.
  let groups = max((red.count + span - 1u) / span, 1u);
  if (group >= groups) {
    return;
  }
  let base = group * span;
  var sum = 0.0;
  var comp = 0.0;
  for (var k = 0u; k < red.per; k++) {
    let i = base + k * RWG + lane;
    if (i < red.count) {
      let y = partials_in[i] - comp;
      let t = sum + y;
      // No compensation once the sum is infinite or NaN ((inf - inf) would turn an infinite sum
      // into NaN); the exponent bits, since a compiler may assume neither occurs.
      comp = select((t - sum) - y, 0.0, (bitcast<u32>(t) & 0x7f800000u) == 0x7f800000u);
      sum = t;
    }
  }
  lane_sums[lane] = sum;
  for (var half = RWG / 2u; half > 0u; half /= 2u) {
    workgroupBarrier();
    if (lane < half) {
      lane_sums[lane] += lane_sums[lane + half];
    }
  }
  if (lane == 0u) {
    let sum = lane_sums[0];
    let inverse = select(1.0 / select(sum, 1.0, sum == 0.0), 0.0, sum == 0.0);
    out_value[group] = select(sum * red.scale, inverse, red.invert != 0u);
  }
}
