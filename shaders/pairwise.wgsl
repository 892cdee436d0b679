// pairwise.wgsl: pairwise_iou (ops.md, "Pairwise matrices"). Output element i is the
// pair (a[i / m], b[i % m]); rows of `a` are chunked, `b` is bound whole. torchvision's
// conventions: IoU = inter / union with no eps, eps 1e-7 only in c2 and CIoU's alpha.
// No gradient: g and want_grad are unused. `weight` ([n, m], optional) multiplies each entry, as
// for every op (ops.md, Conventions).

override VARIANT: u32 = 0u; // 0 iou, 1 giou, 2 diou, 3 ciou

struct Params {
  m: u32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_a: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> in_b: array<vec4<f32>>;

const PAIR_EPS: f32 = 1e-7;

// a, b: the boxes in xyxy; wa, wb: their sizes; d: their centre offset.
fn pair_value(a: vec4<f32>, b: vec4<f32>, wa: vec2<f32>, wb: vec2<f32>, d: vec2<f32>) -> f32 {
  let iwh = max(min(a.zw, b.zw) - max(a.xy, b.xy), vec2(0.0));
  let inter = iwh.x * iwh.y;
  let uni = wa.x * wa.y + wb.x * wb.y - inter;
  let iou = safe_div(inter, uni);
  if (VARIANT == 0u) {
    return iou;
  }
  let cwh = max(max(a.zw, b.zw) - min(a.xy, b.xy), vec2(0.0));
  if (VARIANT == 1u) {
    let c = cwh.x * cwh.y;
    return iou - safe_div(c - uni, c);
  }
  let diou = iou - safe_div(dot(d, d), dot(cwh, cwh) + PAIR_EPS);
  if (VARIANT == 2u) {
    return diou;
  }
  let v = ciou_v(wb, wa);
  return diou - safe_div(v, 1.0 - iou + v + PAIR_EPS) * v;
}

// Entry (a, b), unweighted; wb = box_size(b). Where a coordinate is NaN or infinite (non_finite),
// the sizes and the centre offset come from the xyxy corners, as the float64 reference forms them
// (ops.md, Conventions: non-finite input is never hidden): a NaN corner, or a side that is Inf - Inf,
// makes a size NaN and with it the union and the IoU that every variant reads, so the entry is NaN by
// arithmetic, whatever max made of the intersection. Selects, not a branch: a second, branched path
// through pair_value made the kernel about twice as slow on SwiftShader, finite input included.
fn pair_entry(a: vec4<f32>, b: vec4<f32>, wb: vec2<f32>, non_finite: bool) -> f32 {
  let xy = pair_to_xyxy(a, b);
  let corners = non_finite && FORMAT != 0u; // xyxy's own sizes and offset are the corners'
  let wa = select(box_size(a), xy.a.zw - xy.a.xy, corners);
  let wbb = select(wb, xy.b.zw - xy.b.xy, corners);
  let d = select(centre_gap(a, b), (xy.a.xy + xy.a.zw) - (xy.b.xy + xy.b.zw), corners);
  return pair_value(xy.a, xy.b, wa, wbb, 0.5 * d);
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let m = params.m;
  let a = in_a[i / m];
  let b = in_b[i % m];
  return pair_entry(a, b, box_size(b), box_any_non_finite(a) || box_any_non_finite(b));
}

// The tiled kernel: a tile is WG rows of `a` by WG columns of `b`. Each lane keeps its own `b`
// box in registers and the workgroup stages the tile's `a` boxes in workgroup memory, so each
// box is read from global memory once per tile rather than once per pair, and the lanes of a
// workgroup write consecutive entries of a row.
var<workgroup> tile_a: array<vec4<f32>, WG>;
var<workgroup> tile_a_non_finite: array<bool, WG>; // tested once per box of a tile, not per pair

@compute @workgroup_size(WG)
fn main_tiled(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let group = wid.x + wid.y * nwg.x;
  let groups = run.threads / WG;
  if (group >= groups) {
    return;
  }
  let m = params.m;
  let rows = run.n / m;
  let col_tiles = (m + WG - 1u) / WG;
  let tiles = ((rows + WG - 1u) / WG) * col_tiles;
  for (var t = group; t < tiles; t += groups) {
    let r0 = (t / col_tiles) * WG;
    let j = (t % col_tiles) * WG + lane;
    workgroupBarrier(); // the previous tile's reads of tile_a are done
    if (r0 + lane < rows) {
      let a = in_a[r0 + lane];
      tile_a[lane] = a;
      tile_a_non_finite[lane] = box_any_non_finite(a);
    }
    workgroupBarrier();
    if (j < m) {
      let b = in_b[j];
      let wb = box_size(b);
      let b_non_finite = box_any_non_finite(b);
      let count = min(WG, rows - r0);
      for (var r = 0u; r < count; r++) {
        out_loss[(r0 + r) * m + j] = pair_entry(tile_a[r], b, wb, b_non_finite || tile_a_non_finite[r]);
      }
      // weight ([n, m]) multiplies each entry, a NaN weight included; in a loop of its own, as a test
      // and load per pair in the loop above slowed the unweighted kernel by a quarter on SwiftShader.
      if (has_flag(FLAG_WEIGHT)) {
        for (var r = 0u; r < count; r++) {
          let k = (r0 + r) * m + j;
          out_loss[k] *= in_weight[k];
        }
      }
    }
  }
}
