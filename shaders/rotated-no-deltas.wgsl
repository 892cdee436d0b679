// rotated-no-deltas.wgsl: the narrow module's stand-ins for rotated-deltas.wgsl (GpuKernel.narrow):
// no binding, never called (params.has_pred_delta is 0 in every call that runs this module).

fn load_deltas(i: u32) -> vec4<f32> {
  return vec4(0.0);
}

fn store_grad_delta(i: u32, g: vec2<f32>) {}
