// margin-ranking-io-vec4.wgsl: margin-ranking-io.wgsl four elements at a time, loaded and stored
// as vec4 (a module with fused-vec4.wgsl in place of fused.wgsl).

@group(0) @binding(6) var<storage, read> in_input1: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> in_input2: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> in_targets: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> out_grad_input1: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> out_grad_input2: array<vec4<f32>>;

fn element_loss4(j: u32, g: vec4<f32>, want_grad: bool) -> vec4<f32> {
  let a = in_input1[j];
  let b = in_input2[j];
  let t = in_targets[j];
  let r0 = margin_ranking_entry(a.x, b.x, t.x);
  let r1 = margin_ranking_entry(a.y, b.y, t.y);
  let r2 = margin_ranking_entry(a.z, b.z, t.z);
  let r3 = margin_ranking_entry(a.w, b.w, t.w);
  if (want_grad) {
    let d = g * vec4(r0.y, r1.y, r2.y, r3.y);
    out_grad_input1[j] = d;
    out_grad_input2[j] = -d;
  }
  return vec4(r0.x, r1.x, r2.x, r3.x);
}
