// guard.wgsl: copies a call's output into a tensor of the caller's (TF.js), but only when the
// call's work ran and its value checks passed; otherwise it writes NaN, so that a call that failed
// on the GPU never hands over numbers (the failure itself is thrown by the next call or flush()).
// `status` word 0 is 1 once the call's work ran (the runtime copies 1 there after the work, in
// the same command buffer: a command buffer the device refuses runs none of it); words 1.. are the
// check pass's (0xffffffff: every value kept its rule). One thread per element. The words are
// copied as u32, never as floats: an int32 output (tal_assign's labels) read as f32 is a denormal,
// which a GPU may flush to zero. A failed int32 output holds NaN's bits (2143289344).

override WG: u32 = 64u;

const PASSED: u32 = 0xffffffffu;

// NaN from a private variable: WGSL refuses a constant expression that is NaN.
var<private> NAN_BITS: u32 = 0x7fc00000u;

@group(0) @binding(0) var<storage, read> status: array<u32>;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

fn valid() -> bool {
  var ok = status[0] == 1u;
  for (var k = 1u; k < arrayLength(&status); k++) {
    ok = ok && status[k] == PASSED;
  }
  return ok;
}

@compute @workgroup_size(WG)
fn guarded_copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= arrayLength(&dst)) {
    return;
  }
  if (valid()) {
    dst[i] = src[i];
  } else {
    dst[i] = NAN_BITS;
  }
}
