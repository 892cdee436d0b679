// The bandwidth yardstick: reads n_src vec4s once and writes n_dst vec4s once (16-byte loads
// and stores, the widest WGSL has), with the grid-stride shape of the loss kernels.
// dst[i] sums src[j] for every j = i (mod n_dst).

struct Copy {
  n_src: u32,
  n_dst: u32,
  threads: u32,
}

@group(0) @binding(0) var<uniform> cp: Copy;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let tid = gid.x + gid.y * nwg.x * 64u;
  if (tid >= cp.threads) {
    return;
  }
  for (var i = tid; i < cp.n_dst; i += cp.threads) {
    var s = vec4(0.0);
    for (var j = i; j < cp.n_src; j += cp.n_dst) {
      s += src[j];
    }
    dst[i] = s;
  }
}
