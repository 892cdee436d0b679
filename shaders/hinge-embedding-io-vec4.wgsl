// hinge-embedding-io-vec4.wgsl: hinge-embedding-io.wgsl four elements at a time, loaded and
// stored as vec4 (a module with fused-vec4.wgsl in place of fused.wgsl).

@group(0) @binding(6) var<storage, read> in_pred: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> in_targets: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> out_grad_pred: array<vec4<f32>>;

fn element_loss4(j: u32, g: vec4<f32>, want_grad: bool) -> vec4<f32> {
  let x = in_pred[j];
  let t = in_targets[j];
  let r0 = hinge_embedding_entry(x.x, t.x);
  let r1 = hinge_embedding_entry(x.y, t.y);
  let r2 = hinge_embedding_entry(x.z, t.z);
  let r3 = hinge_embedding_entry(x.w, t.w);
  if (want_grad) {
    out_grad_pred[j] = g * vec4(r0.y, r1.y, r2.y, r3.y);
  }
  return vec4(r0.x, r1.x, r2.x, r3.x);
}
