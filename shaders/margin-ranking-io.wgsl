// margin-ranking-io.wgsl: margin_ranking's tensors, two inputs and a target per output element,
// and a gradient for each input (concatenated after margin.wgsl).

@group(0) @binding(6) var<storage, read> in_input1: array<f32>;
@group(0) @binding(7) var<storage, read> in_input2: array<f32>;
@group(0) @binding(8) var<storage, read> in_targets: array<f32>;
@group(0) @binding(9) var<storage, read_write> out_grad_input1: array<f32>;
@group(0) @binding(10) var<storage, read_write> out_grad_input2: array<f32>;

fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  let r = margin_ranking_entry(in_input1[i], in_input2[i], in_targets[i]);
  if (want_grad) {
    let d = g * r.y;
    out_grad_input1[i] = d;
    out_grad_input2[i] = -d;
  }
  return r.x;
}
