// rotated-pairwise.wgsl: pairwise_probiou (ops.md): output element i is ProbIoU of a[i / m] and
// b[i % m], ultralytics' batch_probiou. Rows of `a` are chunked, `b` is bound whole. No gradient: g
// and want_grad are unused. `weight` ([n, m], optional) multiplies each entry, as for every op.

struct Params {
  eps: f32,
  m: u32,
}

@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_a: array<f32>;
@group(0) @binding(7) var<storage, read> in_b: array<f32>;

fn box_at(ja: u32, from_a: bool) -> array<f32, 5> {
  let k = 5u * ja;
  if (from_a) {
    return array<f32, 5>(in_a[k], in_a[k + 1u], in_a[k + 2u], in_a[k + 3u], in_a[k + 4u]);
  }
  return array<f32, 5>(in_b[k], in_b[k + 1u], in_b[k + 2u], in_b[k + 3u], in_b[k + 4u]);
}

fn any_nan5(v: array<f32, 5>) -> bool {
  return is_nan(v[0]) || is_nan(v[1]) || is_nan(v[2]) || is_nan(v[3]) || is_nan(v[4]);
}

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let m = params.m;
  let a = box_at(i / m, true);
  let b = box_at(i % m, false);
  let q = pair_of(a, b, false);
  let v = 1.0 - hd_of(bhatta(q, params.eps).bd0, params.eps);
  // A NaN coordinate makes the entry NaN (ops.md, Conventions), whatever the clamp made of it; so
  // does an infinite angle: its cos and sin are not defined (the reference's are NaN), where the
  // reduction by pi/2 gave numbers.
  return select(v, nan_f32(), any_nan5(a) || any_nan5(b) || is_non_finite(a[4]) || is_non_finite(b[4]));
}
