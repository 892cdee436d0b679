// reduce.wgsl: adds the per-thread partials of fused.wgsl in a fixed order
// with compensated summation, and scales the sum (1/count for 'mean').
// One thread: the partials are few (at most the fused pass's thread count).

struct Reduce {
  count: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> red: Reduce;
@group(0) @binding(1) var<storage, read> partials_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> out_value: array<f32>;

@compute @workgroup_size(1)
fn reduce_partials() {
  var sum = 0.0;
  var comp = 0.0;
  for (var i = 0u; i < red.count; i++) {
    let y = partials_in[i] - comp;
    let t = sum + y;
    comp = (t - sum) - y;
    sum = t;
  }
  out_value[0] = sum * red.scale;
}
