// rows.wgsl: a workgroup per row, for row ops whose rows are long (softmax over c classes,
// per-sample sums). Concatenated after fused.wgsl by families that define
//   fn row_loss_wg(row: u32, lane: u32, g: f32, want_grad: bool) -> f32
// which every lane of the workgroup calls for the same row: lanes split the row's entries
// (lane, lane + row_lanes(), ...), combine them with row_sum / row_max, write the gradient of their
// entries scaled by g, and return the row's unweighted loss (the same value on every lane).
// Every thread still writes one partial (lane 0 holds the workgroup's sum), so reduce.wgsl and
// the runtime's partials layout are the same as for fused.wgsl's main.

var<workgroup> wg_scratch: array<f32, WG>;

// Tree reductions over the workgroup. Call in uniform control flow only (they hold barriers).
fn wg_sum(v: f32, lane: u32) -> f32 {
  wg_scratch[lane] = v;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if (lane < half) {
      wg_scratch[lane] = wg_scratch[lane] + wg_scratch[lane + half];
    }
    workgroupBarrier();
  }
  let total = wg_scratch[0];
  workgroupBarrier();
  return total;
}

fn wg_max(v: f32, lane: u32) -> f32 {
  wg_scratch[lane] = v;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if (lane < half) {
      wg_scratch[lane] = max(wg_scratch[lane], wg_scratch[lane + half]);
    }
    workgroupBarrier();
  }
  let m = wg_scratch[0];
  workgroupBarrier();
  return m;
}

// What a row function sees of its row's lanes (the same three names in rows-subgroup.wgsl):
// how many there are (the stride of its loops over the row), and their sum and maximum.
fn row_lanes() -> u32 {
  return WG;
}
fn row_sum(v: f32, lane: u32) -> f32 {
  return wg_sum(v, lane);
}
fn row_max(v: f32, lane: u32) -> f32 {
  return wg_max(v, lane);
}

@compute @workgroup_size(WG)
fn main_rows(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let group = wid.x + wid.y * nwg.x;
  let groups = run.threads / WG;
  if (group >= groups) {
    return;
  }
  let store = has_flag(FLAG_STORE_LOSS);
  let want_grad = has_flag(FLAG_GRAD);
  let go = scalar_grad_output();
  var acc = vec2(0.0);
  for (var row = group; row < run.n; row += groups) {
    let f = element_factors(row, go);
    let l = f.x * row_loss_wg(row, lane, f.y, want_grad);
    if (lane == 0u) {
      if (store) {
        out_loss[row] = l;
      } else {
        acc = kahan_add(acc, l * run.scale);
      }
    }
  }
  if (!store) {
    partials[group * WG + lane] = select(0.0, acc.x, lane == 0u);
  }
}
