// boxes.wgsl: box formats and the geometry shared by iou.wgsl and pairwise.wgsl (ops.md,
// "Conventions": a loss on boxes in another format equals the loss on the boxes converted to
// xyxy, and its gradient is with respect to the input as given).

override FORMAT: u32 = 0u; // 0 xyxy, 1 cxcywh, 2 xywh

const FOUR_OVER_PI2: f32 = 0.40528473456935109; // 4 / pi^2, CIoU's v

// Both boxes of a pair in xyxy. Every IoU term is a difference of corners, so moving the pair
// changes no value and no gradient, only roundings. Converting cxcywh or xywh to corners rounds
// each corner by about a float32 step of its reference point (at x = 1e5 that is 0.0078, more than
// a box 0.008 wide), and after moving the pair so that the second box's reference point is the
// origin it rounds by a step of the offset between the two instead. So on each axis where the two
// points are closer to each other than either is to 0 (their offset is then exact, and every
// coordinate shrinks), the pair is moved; elsewhere it stays, and xyxy corners never move.
struct BoxPair {
  a: vec4<f32>,
  b: vec4<f32>,
}

fn pair_origin(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  return select(vec2(0.0), b, abs(a - b) < min(abs(a), abs(b)));
}

fn pair_to_xyxy(a: vec4<f32>, b: vec4<f32>) -> BoxPair {
  switch FORMAT {
    case 1u: {
      let o = pair_origin(a.xy, b.xy);
      let ca = a.xy - o;
      let cb = b.xy - o;
      let ra = 0.5 * a.zw;
      let rb = 0.5 * b.zw;
      return BoxPair(vec4(ca - ra, ca + ra), vec4(cb - rb, cb + rb));
    }
    case 2u: {
      let o = pair_origin(a.xy, b.xy);
      let pa = a.xy - o;
      let pb = b.xy - o;
      return BoxPair(vec4(pa, pa + a.zw), vec4(pb, pb + b.zw));
    }
    default: {
      return BoxPair(a, b);
    }
  }
}

// Chain rule from xyxy back to the input's format.
fn grad_to_format(g: vec4<f32>) -> vec4<f32> {
  switch FORMAT {
    case 1u: {
      return vec4(g.xy + g.zw, 0.5 * (g.zw - g.xy));
    }
    case 2u: {
      return vec4(g.xy + g.zw, g.zw);
    }
    default: {
      return g;
    }
  }
}

const HALF_PI: f32 = 1.5707963267948966;

// atan2(y, x) that never reads the sign of a zero: WGSL leaves it undefined, and SwiftShader's
// atan2(-0, 1) is pi. 0 where y = 0 (every caller's angle is 0 there), pi/2 * sgn(y) where x = 0.
fn zero_safe_atan2(y: f32, x: f32) -> f32 {
  return select(select(atan2(y, x), HALF_PI * sgn(y), x == 0.0), 0.0, y == 0.0);
}

// ops.md's A(w, h) reads (w, h) with h >= 0: (-w, -h) where h < 0.
fn fold_aspect(wh: vec2<f32>) -> vec2<f32> {
  return select(wh, -wh, wh.y < 0.0);
}

// A of a folded size: 0 where w = 0, whatever h (ops.md's three cases agree there).
fn aspect_angle(f: vec2<f32>) -> f32 {
  return zero_safe_atan2(f.x, f.y);
}

// A(wg, hg) - A(w, h). Where both heights are positive the difference of angles is one
// atan2 of (sin, cos) of that difference, exact for nearly equal aspects (design.md); its
// sine is 0 only for equal aspects, where the cosine is > 0 and the gap is 0.
fn aspect_gap(wh: vec2<f32>, whg: vec2<f32>) -> f32 {
  let a = fold_aspect(wh);
  let b = fold_aspect(whg);
  if (a.y > 0.0 && b.y > 0.0) {
    return zero_safe_atan2(b.x * a.y - a.x * b.y, b.x * a.x + b.y * a.y);
  }
  return aspect_angle(b) - aspect_angle(a);
}

// Width and height, read from the input where it holds them (exact, no f32 round trip).
fn box_size(b: vec4<f32>) -> vec2<f32> {
  return select(b.zw - b.xy, b.zw, FORMAT != 0u);
}

// Twice the centre offset, pred minus target, from the inputs as given, in whichever order rounds
// less: differences of corners first, (x1 - x1g) + (x2 - x2g), or sums first, (x1 + x2) - (x1g +
// x2g). A sum rounds by a step of its size, so the order whose partial results are smaller wins:
// differences for small boxes far from the origin, sums for an inverted box (x2 < x1) around 0,
// whose corners would otherwise swamp a small offset. cxcywh centres need one subtraction.
fn gap_of(a: vec2<f32>, b: vec2<f32>, c: vec2<f32>, d: vec2<f32>) -> vec2<f32> {
  return select(a + b, c - d, abs(c) + abs(d) < abs(a) + abs(b));
}
fn centre_gap(pb: vec4<f32>, tb: vec4<f32>) -> vec2<f32> {
  switch FORMAT {
    case 1u: {
      return 2.0 * (pb.xy - tb.xy);
    }
    case 2u: {
      return gap_of(2.0 * (pb.xy - tb.xy), pb.zw - tb.zw, 2.0 * pb.xy + pb.zw, 2.0 * tb.xy + tb.zw);
    }
    default: {
      return gap_of(pb.xy - tb.xy, pb.zw - tb.zw, pb.xy + pb.zw, tb.xy + tb.zw);
    }
  }
}
