// tal-assign.wgsl: an anchor's gt row and target score (ops.md, steps 4 and 5), for the modules
// that bind in_gt_mask (tal.wgsl lists the passes).

// ops.md, step 4: the anchor's gt row, or -1 when no row selected it. One selector keeps it;
// several give the row of the largest overlap over all rows (non-candidates at 0, ties to the
// lower row, row 0 when every overlap is 0).
fn assign_anchor(b: u32, a: u32) -> i32 {
  let m = params.m;
  let na = params.a;
  var selectors = 0u;
  var chosen = 0u;
  var best = -1.0;
  var best_row = 0u;
  for (var j = 0u; j < m; j++) {
    // A padding row's pairs were never written: it selects nothing, and its overlaps are 0.
    var ov = 0.0;
    if (in_gt_mask[b * m + j] == 1) {
      let p = (b * m + j) * na + a;
      if ((partials[params.off_met + p] & SEL) != 0u) {
        selectors++;
        chosen = j;
      }
      ov = max(getf(params.off_ov + p), 0.0);
    }
    if (ov > best) {
      best = ov;
      best_row = j;
    }
  }
  if (selectors == 0u) {
    return -1;
  }
  return i32(select(best_row, chosen, selectors == 1u));
}

// Step 4 for anchor i of the batch, with the row kept in the scratch for the passes after.
fn assign_and_keep(i: u32) -> i32 {
  let g = assign_anchor(i / params.a, i % params.a);
  partials[params.off_anc + i] = bitcast<u32>(g);
  return g;
}

// ops.md, step 5: an anchor's target score in its gt's class.
fn target_score(b: u32, a: u32, g: u32) -> f32 {
  let row = b * params.m + g;
  // Row 0 wins an anchor whose overlaps are all 0 even when it is padding: its metric is 0.
  if (in_gt_mask[row] != 1) {
    return 0.0;
  }
  let metric = bitcast<f32>(partials[params.off_met + row * params.a + a] & 0x7fffffffu);
  let gmax = vec2(getf(params.off_gmax + 2u * row), getf(params.off_gmax + 2u * row + 1u));
  return metric * gmax.y / (gmax.x + params.eps);
}
