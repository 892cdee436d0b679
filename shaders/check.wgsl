// check.wgsl: the runtime's check of input values that live on the GPU, which the host cannot
// scan without a readback (src/ops/value-rules.ts; src/runtime/checks.ts runs it). One thread per
// element: a value that breaks the rule lowers the check's status word to its index (atomicMin),
// so the word ends as the first bad index, or 0xffffffff when every value keeps the rule. The
// status words are read back with the results, or guard the copy into a framework's tensors.
// Comparisons that NaN must fail test its bit pattern: a compiler may assume NaN never occurs.

override WG: u32 = 64u;

const CLASS_OR_IGNORE: u32 = 0u;
const UNIT: u32 = 1u;
const DFL: u32 = 2u;
const PM1: u32 = 3u;
const AP: u32 = 4u;
const LE1: u32 = 5u;
const COUNT: u32 = 6u;
const FINITE: u32 = 7u;
const CLASS: u32 = 8u;
const BIT: u32 = 9u;
const POSITIVE: u32 = 10u;

// n: elements in this chunk; base: the index of its first element; slot: the status word;
// c: classes (CLASS_OR_IGNORE) or bins k (DFL); ignore: ignoreIndex.
struct Check {
  n: u32,
  base: u32,
  slot: u32,
  rule: u32,
  c: i32,
  ignore: i32,
}

@group(0) @binding(0) var<uniform> check: Check;
@group(0) @binding(1) var<storage, read> values: array<u32>;
@group(0) @binding(2) var<storage, read_write> status: array<atomic<u32>>;

fn is_nan_bits(b: u32) -> bool {
  return (b & 0x7fffffffu) > 0x7f800000u;
}
fn is_non_finite_bits(b: u32) -> bool {
  return (b & 0x7f800000u) == 0x7f800000u;
}

fn breaks(b: u32) -> bool {
  let x = bitcast<f32>(b);
  switch (check.rule) {
    case CLASS_OR_IGNORE: {
      let y = bitcast<i32>(b);
      return !(y == check.ignore || (y >= 0 && y < check.c));
    }
    case UNIT: {
      // As the host: NaN is left to check: true.
      return !is_nan_bits(b) && (x < 0.0 || x > 1.0);
    }
    case DFL: {
      return is_nan_bits(b) || x < 0.0 || x >= f32(check.c - 1);
    }
    case PM1: {
      return b != 0x3f800000u && b != 0xbf800000u;
    }
    case AP: {
      // 1, 0 (either sign) or -1.
      return b != 0x3f800000u && (b & 0x7fffffffu) != 0u && b != 0xbf800000u;
    }
    case LE1: {
      return is_nan_bits(b) || x > 1.0;
    }
    case COUNT: {
      return is_non_finite_bits(b) || x < 0.0;
    }
    case CLASS: {
      let y = bitcast<i32>(b);
      return !(y >= 0 && y < check.c);
    }
    case BIT: {
      return b != 0u && b != 1u;
    }
    case POSITIVE: {
      return is_non_finite_bits(b) || !(x > 0.0);
    }
    default: {
      return is_non_finite_bits(b);
    }
  }
}

@compute @workgroup_size(WG)
fn check_values(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= check.n) {
    return;
  }
  if (breaks(values[i])) {
    atomicMin(&status[check.slot], check.base + i);
  }
}
