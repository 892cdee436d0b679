// rows-subgroup.wgsl: a subgroup per row, the row kernel for hardware with the `subgroups`
// feature. Concatenated after fused.wgsl in place of rows.wgsl, in a module that starts with
// subgroups-enable.wgsl, by the same families: their row_loss_wg(row, lane, g, want_grad) splits
// the row over row_lanes() lanes and combines with row_sum / row_max, which here are subgroup
// operations: no workgroup memory and no barrier, and a 32-lane subgroup reads a row of 80 floats
// in three coalesced loads where a thread per row strides 320 bytes between lanes.
//
// Subgroups are taken to be consecutive local invocation indices (lane = index mod size), as
// every Vulkan, Metal and D3D12 driver forms them for a one-dimensional workgroup. Lane 0 of each
// subgroup keeps its rows' compensated sum; every thread writes one partial, as in fused.wgsl.

var<private> sg_lanes: u32;

fn row_lanes() -> u32 {
  return sg_lanes;
}
fn row_sum(v: f32, lane: u32) -> f32 {
  return subgroupAdd(v);
}
fn row_max(v: f32, lane: u32) -> f32 {
  return subgroupMax(v);
}

@compute @workgroup_size(WG)
fn main_rows(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) index: u32,
  @builtin(subgroup_invocation_id) lane: u32,
  @builtin(subgroup_size) size: u32,
) {
  sg_lanes = size;
  let tid = (wid.x + wid.y * nwg.x) * WG + index;
  // threads is a multiple of WG: whole workgroups return here.
  if (tid >= run.threads) {
    return;
  }
  let store = has_flag(FLAG_STORE_LOSS);
  let want_grad = has_flag(FLAG_GRAD);
  let go = scalar_grad_output();
  let slots = run.threads / size;
  var acc = vec2(0.0);
  for (var row = tid / size; row < run.n; row += slots) {
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
    partials[tid] = select(0.0, acc.x, lane == 0u);
  }
}
