// margin.wgsl: hinge, hinge_embedding, margin_ranking and exponential (ops.md, "More
// classification and ranking losses"), one prediction per output element. A hinge max(0, z)
// passes the gradient where z >= 0 (PyTorch's clamp_min): at z = 0 the slope is that of z.
// Targets are -1 or +1: the host refuses anything else, and a target on the device that is
// neither (the host cannot read it) makes its element NaN, as a NaN prediction does (ops.md,
// Conventions): never a finite wrong number.

override OP: u32 = 0u; // logit_entry: 0 hinge, 1 exponential

// exponential's cap on its exponent: exp(80) = 5.5e34 is finite in f32.
const EXP_CAP: f32 = 80.0;

struct Params {
  margin: f32,
}

@group(0) @binding(5) var<uniform> params: Params;

// A target other than exactly -1 or +1 (NaN first: comparisons with it are unreliable).
fn target_invalid(y: f32) -> bool {
  return is_nan(y) || abs(y) != 1.0;
}

// (loss, d loss / d f): max(0, margin - y f). A NaN z is NaN (PyTorch's clamp_min(nan, 0)), not 0.
fn hinge_entry(f: f32, y: f32) -> vec2<f32> {
  let z = params.margin - y * f;
  return poison2(select(vec2(0.0, 0.0), vec2(z, -y), z >= 0.0), is_nan(z) || target_invalid(y));
}

// (loss, d loss / d x): x where y = 1, max(0, margin - x) where y = -1.
fn hinge_embedding_entry(x: f32, y: f32) -> vec2<f32> {
  let z = params.margin - x;
  let neg = select(vec2(0.0, 0.0), vec2(z, -1.0), z >= 0.0);
  return poison2(select(neg, vec2(x, 1.0), y > 0.0), is_nan(x) || target_invalid(y));
}

// (loss, d loss / d input1); d loss / d input2 is its negation.
fn margin_ranking_entry(a: f32, b: f32, y: f32) -> vec2<f32> {
  let z = -y * (a - b) + params.margin;
  return poison2(select(vec2(0.0, 0.0), vec2(z, -y), z >= 0.0), is_nan(z) || target_invalid(y));
}

// (loss, d loss / d f): exp(min(-y f, 80)), no gradient past the cap; min() could turn a NaN z
// into the cap.
fn exponential_entry(f: f32, y: f32) -> vec2<f32> {
  let z = -y * f;
  let e = exp(min(z, EXP_CAP));
  return poison2(vec2(e, select(0.0, -y * e, z <= EXP_CAP)), is_nan(z) || target_invalid(y));
}

// (loss, d loss / d logit) of the op a logits/targets module was compiled for.
fn logit_entry(f: f32, y: f32) -> vec2<f32> {
  if (OP == 0u) {
    return hinge_entry(f, y);
  }
  return exponential_entry(f, y);
}
