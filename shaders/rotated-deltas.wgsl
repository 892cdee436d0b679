// rotated-deltas.wgsl: KFIoU's predDelta and targetDelta [n, 2] and their gradient, for
// rotated.wgsl (the module of calls that give them; rotated-no-deltas.wgsl is the other).

@group(0) @binding(8) var<storage, read> in_pred_delta: array<f32>;
@group(0) @binding(9) var<storage, read> in_target_delta: array<f32>;
@group(0) @binding(11) var<storage, read_write> out_grad_pred_delta: array<f32>;

// (predDelta, targetDelta) of row i.
fn load_deltas(i: u32) -> vec4<f32> {
  return vec4(in_pred_delta[2u * i], in_pred_delta[2u * i + 1u], in_target_delta[2u * i], in_target_delta[2u * i + 1u]);
}

fn store_grad_delta(i: u32, g: vec2<f32>) {
  out_grad_pred_delta[2u * i] = g.x;
  out_grad_pred_delta[2u * i + 1u] = g.y;
}
