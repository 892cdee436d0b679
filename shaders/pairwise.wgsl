// pairwise.wgsl: pairwise_iou (ops.md, "Pairwise matrices"). Output element i is the
// pair (a[i / m], b[i % m]); rows of `a` are chunked, `b` is bound whole. torchvision's
// conventions: IoU = inter / union with no eps, eps 1e-7 only in c2 and CIoU's alpha.
// No gradient: g and want_grad are unused.

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
  let gap = aspect_gap(wb, wa);
  let v = FOUR_OVER_PI2 * gap * gap;
  return diou - safe_div(v, 1.0 - iou + v + PAIR_EPS) * v;
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let m = params.m;
  let a = in_a[i / m];
  let b = in_b[i % m];
  let xy = pair_to_xyxy(a, b);
  return pair_value(xy.a, xy.b, box_size(a), box_size(b), 0.5 * centre_gap(a, b));
}

// The tiled kernel: a tile is WG rows of `a` by WG columns of `b`. Each lane keeps its own `b`
// box in registers and the workgroup stages the tile's `a` boxes in workgroup memory, so each
// box is read from global memory once per tile rather than once per pair, and the lanes of a
// workgroup write consecutive entries of a row.
var<workgroup> tile_a: array<vec4<f32>, WG>;

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
      tile_a[lane] = in_a[r0 + lane];
    }
    workgroupBarrier();
    if (j < m) {
      let b = in_b[j];
      let wb = box_size(b);
      let count = min(WG, rows - r0);
      for (var r = 0u; r < count; r++) {
        let a = tile_a[r];
        let xy = pair_to_xyxy(a, b);
        out_loss[(r0 + r) * m + j] = pair_value(xy.a, xy.b, box_size(a), wb, 0.5 * centre_gap(a, b));
      }
    }
  }
}
