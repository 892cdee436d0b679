/**
 * The error model of the rotated ops (`rotated_iou_loss`, `pairwise_probiou`) for the fuzzer's
 * tolerance rule (./tolerance.ts): a running error bound of the kernel's own float32 program.
 *
 * `rotatedRowModel` evaluates one row in float64 in exactly the order of shaders/rotated-common.wgsl
 * and shaders/rotated.wgsl (the forward pass and the hand-written reverse pass), carrying beside each
 * intermediate value v a bound e of its float32 error in units of u = 2^-24 (Wilkinson's running
 * error analysis; first order, but where a first-order term would not bound the error):
 *
 *   a +- b: e_a + e_b + |v|      a * b: |b| e_a + |a| e_b + u e_a e_b + |v|
 *   a / b: |a| max(1/lo - 1/|b|, 1/|b| - 1/(|b| + e_b)) + e_a / lo + |v|   (lo: the least |b| within
 *   its error, or the floor the kernel clamps it to; unbounded at 0)
 *   sqrt a: min(e_a / (2 v), sqrt(e_a / u)) + 2 v     (the second where a is within its error of 0)
 *   log a: e_a / a + 8 + 3 |v|   (WGSL: 2^-21 absolutely near 1, 3 ulp elsewhere; log1p likewise,
 *   its series below 1/4 a few ulp)   exp a: v (e_a + 3 + 2 |a|)   (WGSL: 3 + 2|x| ulp)
 *   atan2: 4 |v| + 2     cos, sin of an angle: 4 absolutely (Cody-Waite remainder, |r| <= pi/4, and
 *   Cephes' polynomials; past |theta| = 12,800 k*PIO2_B is rounded too: + 3.1e-4 |theta|)
 *   inputs: 0 (they are float32); float32 constants and uniforms (1/12, eps, alpha^2, tau, beta,
 *   mmrotate's bound 1e-7 where a side is clamped to it): their own rounding, |c|.
 *
 * The bound of a value is therefore the sum of the magnitudes of the terms it is computed from,
 * each weighted by the conditioning of what follows: it grows with ProbIoU's D - 4r cancellation
 * (sd^2 (P1 - Q1)(P2 - Q2) against the squared differences), its 1/(2 hd) near identical boxes,
 * GWD's W = P1 + Q1 + P2 + Q2 - 2 sqrt(...) (u (P1 + Q1 + P2 + Q2)), Y's sqrt (1 / (2 g)), KL's
 * 0.5 tr - 1 + log V1 - log V2 (u times the sum of their absolute values) and its sqrt, thin boxes'
 * E/P1, KFIoU's Vb / (V1 + V2 - Vb + eps), the theta partial's 2 cd sd times the adjoint of sd^2.
 * The rule then allows `K u (|cpu| + S)` with K = 512 (exp, log, sqrt, atan) and S = SAFETY e / K:
 * SAFETY (8) times the bound, beside the K u |cpu| every value gets.
 *
 * Thresholds (the kernel's `max`, `clamp`, `select` on a computed value: probiou's bd0 against eps
 * and 100, GWD's g0 against sqrt(1e-7), its X and Y against 1e-7, the sqrt floors of KL and post, a
 * tie of r(KL12) and r(KL21) in kld_symmax/kld_symmin) are ties where the value is within SAFETY u e
 * of the bound: float32 may take either branch, and the gradient (and loss) of either side holds. The
 * row is evaluated again with each such branch flipped, and the difference is a jump J, which adds
 * J / (K u) to S. mmrotate's side clamp compares inputs with float32's 1e-7 (no float32 lies
 * between it and 1e-7): decided alike on both sides, with the clamped side's rounding (above).
 */

export const ROTATED_OPS = new Set(['rotated_iou_loss', 'pairwise_probiou']);

/**
 * The rule allows SAFETY times the running bound (S = SAFETY e / K): the bound is first order and
 * worst case already (every rounding at its largest, all of one sign); the factor is room for the
 * transcendentals' constants taken from the WGSL spec and the second-order terms the bound drops.
 */
const SAFETY = 8;
/** K of the rule for these ops (kOf: they use exp, log, sqrt, atan2). */
const K = 512;

/** A value and its error bound (units of u). */
interface V {
  v: number;
  e: number;
}

/** A result of float32 arithmetic: below 2^-126 the GPU may flush it to 0 (an error of all of it). */
const fl = (v: number, e: number): V => ({ v, e: v !== 0 && Math.abs(v) < 2 ** -126 ? e + Math.abs(v) / 2 ** -24 : e });
const c0 = (v: number): V => ({ v, e: 0 });
/** A float32 constant or uniform: exact when float32 holds it, else its rounding. */
const cst = (v: number): V => ({ v, e: Math.fround(v) === v ? 0 : Math.abs(v) });
const add = (a: V, b: V): V => fl(a.v + b.v, a.e + b.e + Math.abs(a.v + b.v));
const sub = (a: V, b: V): V => fl(a.v - b.v, a.e + b.e + Math.abs(a.v - b.v));
/** x * y with 0 * Infinity = 0: an exact 0 times a factor of unbounded error is still exactly 0. */
const times = (x: number, y: number) => (x === 0 || y === 0 ? 0 : x * y);
// (and the product of the two errors: where both factors are uncertain beyond their size, as gwd's
// 1/g and post's derivative at near-identical thin boxes, it is the largest term)
const mul = (a: V, b: V): V => fl(a.v * b.v, times(Math.abs(b.v), a.e) + times(Math.abs(a.v), b.e) + times(a.e, b.e) * 2 ** -24 + Math.abs(a.v * b.v));
/**
 * a / b, not only to first order: b may lie anywhere within its error of itself, but not below
 * `floor` where the kernel clamps it (sqrt(max(x, 1e-7))): |a|/lo - |a|/|b| + e_a / lo, lo the least
 * |b| can be; unbounded where that reaches 0.
 */
const div = (a: V, b: V, floor = 0): V => {
  const v = a.v / b.v;
  const B = Math.abs(b.v);
  const d = b.e * 2 ** -24;
  // (never above |b| itself: where the model's float64 |b| lies below the floor, its own value)
  const lo = Math.min(B, Math.max(floor, B - d));
  if (!(lo > 0)) return { v, e: Infinity };
  // b smaller (down to lo) or larger (up to B + d): whichever moves a / b more
  return fl(v, times(Math.abs(a.v), Math.max(1 / lo - 1 / B, 1 / B - 1 / (B + d))) / 2 ** -24 + a.e / lo + Math.abs(v));
};
const neg = (a: V): V => ({ v: -a.v, e: a.e });
const abs = (a: V): V => ({ v: Math.abs(a.v), e: a.e });
const sqrtV = (a: V): V => {
  const v = Math.sqrt(Math.max(a.v, 0));
  const first = v > 0 ? a.e / (2 * v) : Infinity;
  return { v, e: Math.min(first, Math.sqrt(a.e / 2 ** -24)) + 2 * v };
};
const logV = (a: V): V => {
  const v = Math.log(a.v);
  // (a moved by its error d: log(a) - log(a - d), unbounded where d reaches a)
  const d = a.e * 2 ** -24;
  return { v, e: (d < a.v ? -Math.log1p(-d / a.v) / 2 ** -24 : Infinity) + 8 + 3 * Math.abs(v) };
};
const log1pV = (y: V): V => {
  const v = Math.log1p(y.v);
  // |y| >= 1/4: log(1 + y), the sum's rounding and log's own; below, the series (a few ulp)
  return { v, e: y.e / (1 + y.v) + (Math.abs(y.v) >= 0.25 ? 9 + 3 * Math.abs(v) : 4 * Math.abs(v)) };
};
// (exp(x + d) - exp(x) for x's error d, not only its first order: bd's error may be large)
const expMoved = (x: V) => times(Math.exp(x.v), Math.expm1(x.e * 2 ** -24)) / 2 ** -24;
const expV = (a: V): V => {
  const v = Math.exp(a.v);
  return fl(v, expMoved(a) + v * (3 + 2 * Math.abs(a.v)));
};
const expm1V = (x: V): V => {
  const v = Math.expm1(x.v);
  const ex = Math.exp(x.v);
  return { v, e: expMoved(x) + (Math.abs(x.v) >= 0.25 ? ex * (3 + 2 * Math.abs(x.v)) + Math.abs(v) : 4 * Math.abs(v)) };
};
/**
 * max(a, c) (and min): 1-Lipschitz, so never more error than a's; where a lies below c, only as much
 * as a's error could carry it past c.
 */
const maxC = (a: V, c: number): V => (a.v >= c ? a : { v: c, e: Math.max(cst(c).e, (a.v - c) / 2 ** -24 + a.e) });
const minC = (a: V, c: number): V => (a.v <= c ? a : { v: c, e: Math.max(cst(c).e, (c - a.v) / 2 ** -24 + a.e) });

const sgn = (x: number) => (x > 0 ? 1 : x < 0 ? -1 : 0);
const vec = (x: V, y: V): [V, V] => [x, y];

/** The side of a tie a row is evaluated on: by threshold name, the branch forced (absent: as computed). */
type Force = Map<string, boolean>;

class Branches {
  ties = new Set<string>();
  constructor(private force: Force) {}
  /** `a >= c` as the kernel compares, a tie where a is within SAFETY u e of c. */
  ge(name: string, a: V, c: number): boolean {
    const f = this.force.get(name);
    if (f !== undefined) return f;
    if (Math.abs(a.v - c) <= SAFETY * 2 ** -24 * (a.e + Math.abs(c))) this.ties.add(name);
    return a.v >= c;
  }
}

export interface RotatedConfigLike {
  variant: string;
  eps: number;
  ciou: boolean;
  fun: string;
  tau: number;
  alpha: number;
  normalize: boolean;
  sqrt: boolean;
  beta: number;
}

/** cos and sin of theta with the kernel's error bound (as values: the reference's, up to a common sign). */
function cosSin(theta: number): [V, V] {
  const r = theta - Math.round(theta / Math.PI) * Math.PI;
  const e = 4 + (Math.abs(theta) > 12800 ? 3.1e-4 * Math.abs(theta) : 0);
  return [{ v: Math.cos(r), e }, { v: Math.sin(r), e }];
}

interface Pair {
  d: [V, V];
  cs1: [V, V];
  cs2: [V, V];
  uv1: [V, V];
  uv2: [V, V];
  cd: V;
  sd: V;
  cd2: V;
  sd2: V;
  wh1: [V, V];
  dwh1: [number, number];
  wh2: [V, V];
  pq1: [V, V];
  pq2: [V, V];
  E: [V, V];
  F: [V, V];
  D: V;
}

function mmSide(w: number): [V, number] {
  if (w < 1e-7) return [cst(1e-7), 0];
  if (w > 1e7) return [c0(1e7), 0];
  return [c0(w), 1];
}

/** rotated-common.wgsl pair_of. */
function pairOf(p: ArrayLike<number>, po: number, t: ArrayLike<number>, to: number, mm: boolean): Pair {
  const d = vec(sub(c0(p[po]), c0(t[to])), sub(c0(p[po + 1]), c0(t[to + 1])));
  const cs1 = cosSin(p[po + 4]);
  const cs2 = cosSin(t[to + 4]);
  const [c1, s1] = cs1;
  const [c2, s2] = cs2;
  const uv1 = vec(add(mul(d[0], c1), mul(d[1], s1)), sub(mul(d[1], c1), mul(d[0], s1)));
  const uv2 = vec(add(mul(d[0], c2), mul(d[1], s2)), sub(mul(d[1], c2), mul(d[0], s2)));
  let wh1 = vec(c0(p[po + 2]), c0(p[po + 3]));
  let wh2 = vec(c0(t[to + 2]), c0(t[to + 3]));
  let dwh1: [number, number] = [1, 1];
  let k = cst(1 / 12);
  if (mm) {
    const [w1, dw] = mmSide(p[po + 2]);
    const [h1, dh] = mmSide(p[po + 3]);
    wh1 = [w1, h1];
    dwh1 = [dw, dh];
    wh2 = [mmSide(t[to + 2])[0], mmSide(t[to + 3])[0]];
    k = c0(0.25);
  }
  const pq1 = vec(mul(mul(k, wh1[0]), wh1[0]), mul(mul(k, wh1[1]), wh1[1]));
  const pq2 = vec(mul(mul(k, wh2[0]), wh2[0]), mul(mul(k, wh2[1]), wh2[1]));
  const cd = add(mul(c1, c2), mul(s1, s2));
  const sd = sub(mul(s2, c1), mul(c2, s1));
  const sdr = mul(sd, sd);
  const cdr = mul(cd, cd);
  const small = sdr.v <= 0.5;
  const sd2 = small ? sdr : sub(c0(1), cdr);
  const cd2 = small ? sub(c0(1), sdr) : cdr;
  const E = vec(add(mul(pq2[0], cd2), mul(pq2[1], sd2)), add(mul(pq2[0], sd2), mul(pq2[1], cd2)));
  const F = vec(add(mul(pq1[0], cd2), mul(pq1[1], sd2)), add(mul(pq1[0], sd2), mul(pq1[1], cd2)));
  const D = add(add(add(mul(pq1[0], pq1[1]), mul(pq2[0], pq2[1])), mul(pq1[1], E[0])), mul(pq1[0], E[1]));
  return { d, cs1, cs2, uv1, uv2, cd, sd, cd2, sd2, wh1, dwh1, wh2, pq1, pq2, E, F, D };
}

/** The adjoints (rotated.wgsl Adj). */
interface Adj {
  d: [V, V];
  uv1: [V, V];
  uv2: [V, V];
  s2: V;
  pq1: [V, V];
  wh1: [V, V];
}
const newAdj = (): Adj => ({ d: [c0(0), c0(0)], uv1: [c0(0), c0(0)], uv2: [c0(0), c0(0)], s2: c0(0), pq1: [c0(0), c0(0)], wh1: [c0(0), c0(0)] });
const acc = (a: [V, V], x: V, y: V): [V, V] => [add(a[0], x), add(a[1], y)];

function backE(q: Pair, gx: V, gy: V, a: Adj) {
  a.s2 = add(a.s2, mul(sub(gx, gy), sub(q.pq2[1], q.pq2[0])));
}
function backF(q: Pair, gx: V, gy: V, a: Adj) {
  a.pq1 = acc(a.pq1, add(mul(gx, q.cd2), mul(gy, q.sd2)), add(mul(gx, q.sd2), mul(gy, q.cd2)));
  a.s2 = add(a.s2, mul(sub(gx, gy), sub(q.pq1[1], q.pq1[0])));
}
function backD(q: Pair, g: V, a: Adj) {
  a.pq1 = acc(a.pq1, mul(g, add(q.pq1[1], q.E[1])), mul(g, add(q.pq1[0], q.E[0])));
  backE(q, mul(g, q.pq1[1]), mul(g, q.pq1[0]), a);
}

function finish(q: Pair, a: Adj, mm: boolean): V[] {
  const [c1, s1] = q.cs1;
  const [c2, s2] = q.cs2;
  const o0 = sub(add(sub(add(a.d[0], mul(a.uv1[0], c1)), mul(a.uv1[1], s1)), mul(a.uv2[0], c2)), mul(a.uv2[1], s2));
  const o1 = add(add(add(add(a.d[1], mul(a.uv1[0], s1)), mul(a.uv1[1], c1)), mul(a.uv2[0], s2)), mul(a.uv2[1], c2));
  const k2 = mm ? c0(0.5) : cst(1 / 6);
  const gw = q.dwh1[0] === 0 ? c0(0) : add(a.wh1[0], mul(mul(a.pq1[0], k2), q.wh1[0]));
  const gh = q.dwh1[1] === 0 ? c0(0) : add(a.wh1[1], mul(mul(a.pq1[1], k2), q.wh1[1]));
  const o4 = sub(sub(mul(a.uv1[0], q.uv1[1]), mul(a.uv1[1], q.uv1[0])), mul(mul(mul(a.s2, c0(2)), q.cd), q.sd));
  return [o0, o1, gw, gh, o4];
}

/** rotated-common.wgsl bhatta + hd_of: [bd0, t12, z, r, hd]. */
function bhatta(q: Pair, eps: V, br: Branches) {
  const v1 = abs(mul(q.wh1[0], q.wh1[1]));
  const v2 = abs(mul(q.wh2[0], q.wh2[1]));
  const r = mul(v1, div(v2, c0(144)));
  const uu1 = vec(mul(q.uv1[0], q.uv1[0]), mul(q.uv1[1], q.uv1[1]));
  const uu2 = vec(mul(q.uv2[0], q.uv2[0]), mul(q.uv2[1], q.uv2[1]));
  const n = add(add(add(mul(q.pq1[1], uu1[0]), mul(q.pq1[0], uu1[1])), mul(q.pq2[1], uu2[0])), mul(q.pq2[0], uu2[1]));
  const de = add(q.D, eps);
  const t12 = mul(c0(0.25), div(n, de));
  const den = add(mul(c0(4), r), eps);
  const z = div(q.D, den);
  const a1 = sub(v1, v2);
  const a2 = sub(abs(mul(q.wh1[1], q.wh2[0])), abs(mul(q.wh1[0], q.wh2[1])));
  const excess = add(add(div(mul(a1, a1), c0(144)), div(mul(a2, a2), c0(144))), mul(q.sd2, mul(sub(q.pq1[0], q.pq1[1]), sub(q.pq2[0], q.pq2[1]))));
  // (z < 0.5: log(z + eps) itself)
  const t3 = z.v < 0.5 ? logV(add(z, eps)) : log1pV(add(maxC(div(sub(excess, eps), den), -1), eps));
  const bd0 = add(t12, mul(c0(0.5), t3));
  // clamp(bd0, eps, 100): a tie at either bound
  const lo = br.ge('bd0>=eps', bd0, eps.v);
  const hi = !br.ge('bd0>100', bd0, 100) || bd0.v === 100;
  const bd = !lo ? maxC(bd0, eps.v) : !hi ? minC(bd0, 100) : bd0;
  const hd = sqrtV(add(neg(expm1V(neg(bd))), eps));
  return { bd0, t12, z, r, hd, de, den, pass: lo && hi };
}

function probiouHd(q: Pair, eps: V, g: V, want: boolean, a: Adj, br: Branches): V {
  const b = bhatta(q, eps, br);
  if (!want || !b.pass) return b.hd;
  const e = expV(neg(b.bd0));
  // (hd >= sqrt(1 - exp(-eps) + eps): bd is clamped to eps below)
  const gbd = div(mul(g, e), mul(c0(2), b.hd), 2 * Math.sqrt(-Math.expm1(-eps.v) + eps.v) * (1 - 1e-6));
  const gn = div(mul(gbd, c0(0.25)), b.de);
  const gz = div(mul(gbd, c0(0.5)), add(b.z, eps));
  const gd = add(neg(mul(gbd, div(b.t12, b.de))), div(gz, b.den));
  const gr = div(mul(mul(neg(gz), b.z), c0(4)), b.den);
  const g2 = mul(gn, c0(2));
  a.uv1 = acc(a.uv1, mul(mul(g2, q.pq1[1]), q.uv1[0]), mul(mul(g2, q.pq1[0]), q.uv1[1]));
  a.uv2 = acc(a.uv2, mul(mul(g2, q.pq2[1]), q.uv2[0]), mul(mul(g2, q.pq2[0]), q.uv2[1]));
  a.pq1 = acc(a.pq1, mul(gn, mul(q.uv1[1], q.uv1[1])), mul(gn, mul(q.uv1[0], q.uv1[0])));
  backD(q, gd, a);
  const ra = div(abs(mul(q.wh2[0], q.wh2[1])), c0(144));
  const gra = mul(gr, ra);
  a.wh1 = acc(a.wh1, mul(gra, c0(sgn(q.wh1[0].v) * Math.abs(q.wh1[1].v))), mul(gra, c0(sgn(q.wh1[1].v) * Math.abs(q.wh1[0].v))));
  return b.hd;
}

function post(x: V, cfg: RotatedConfigLike, tau: V, br: Branches): [V, V] {
  let y = x;
  let dy = c0(1);
  if (cfg.fun === 'log1p') {
    y = log1pV(x);
    dy = div(c0(1), add(c0(1), x));
  } else if (cfg.fun === 'sqrt') {
    const on = br.ge('post>=floor', x, 1e-7);
    y = sqrtV(maxC(x, 1e-7));
    dy = on ? div(c0(0.5), y, Math.sqrt(1e-7)) : c0(0);
  }
  if (cfg.tau >= 1) {
    const den = add(tau, y);
    return [sub(c0(1), div(c0(1), den)), div(dy, mul(den, den))];
  }
  return [y, dy];
}

function root(x: V, cfg: RotatedConfigLike, name: string, br: Branches): [V, V] {
  if (!cfg.sqrt) return [x, c0(1)];
  const on = br.ge(name, x, 1e-7);
  const y = sqrtV(maxC(x, 1e-7));
  return [y, on ? div(c0(0.5), y, Math.sqrt(1e-7)) : c0(0)];
}

function kl(q: Pair, swap: boolean, g: V | null, a: Adj, a2: V): V {
  const lv = sub(logV(mul(q.wh1[0], q.wh1[1])), logV(mul(q.wh2[0], q.wh2[1])));
  if (!swap) {
    const c = div(mul(c0(0.5), add(div(mul(q.uv1[0], q.uv1[0]), q.pq1[0]), div(mul(q.uv1[1], q.uv1[1]), q.pq1[1]))), a2);
    const v = sub(add(add(c, mul(c0(0.5), add(div(q.E[0], q.pq1[0]), div(q.E[1], q.pq1[1])))), lv), c0(1));
    if (g && g.v !== 0) {
      a.uv1 = acc(a.uv1, div(mul(g, q.uv1[0]), mul(q.pq1[0], a2)), div(mul(g, q.uv1[1]), mul(q.pq1[1], a2)));
      const t = (k: 0 | 1) => div(mul(g, div(add(div(mul(q.uv1[k], q.uv1[k]), a2), q.E[k]), q.pq1[k])), q.wh1[k]);
      a.wh1 = acc(a.wh1, neg(t(0)), neg(t(1)));
      const h = mul(g, c0(0.5));
      backE(q, div(h, q.pq1[0]), div(h, q.pq1[1]), a);
      a.wh1 = acc(a.wh1, div(g, q.wh1[0]), div(g, q.wh1[1]));
    }
    return v;
  }
  const c = div(mul(c0(0.5), add(div(mul(q.uv2[0], q.uv2[0]), q.pq2[0]), div(mul(q.uv2[1], q.uv2[1]), q.pq2[1]))), a2);
  const v = sub(sub(add(c, mul(c0(0.5), add(div(q.F[0], q.pq2[0]), div(q.F[1], q.pq2[1])))), lv), c0(1));
  if (g && g.v !== 0) {
    a.uv2 = acc(a.uv2, div(mul(g, q.uv2[0]), mul(q.pq2[0], a2)), div(mul(g, q.uv2[1]), mul(q.pq2[1], a2)));
    const h = mul(g, c0(0.5));
    backF(q, div(h, q.pq2[0]), div(h, q.pq2[1]), a);
    a.wh1 = acc(a.wh1, neg(div(g, q.wh1[0])), neg(div(g, q.wh1[1])));
  }
  return v;
}

/** One row of the kernel's program with its error bounds: the loss, the five pred partials, predDelta's two. */
function rowOnce(p: ArrayLike<number>, po: number, t: ArrayLike<number>, to: number, cfg: RotatedConfigLike, want: boolean, br: Branches, deltas?: { pd: ArrayLike<number>; td: ArrayLike<number>; at: number }, part?: number): { loss: V; grad: V[]; gradDelta: V[] } {
  const mm = cfg.variant !== 'probiou';
  const q = pairOf(p, po, t, to, mm);
  const a = newAdj();
  const eps = cst(cfg.eps);
  let loss: V;
  let gradDelta: V[] = [];
  if (cfg.variant === 'probiou') {
    const hd = probiouHd(q, eps, c0(1), want, a, br);
    loss = hd;
    if (cfg.ciou) {
      const A = (w: V, h: V): V => {
        if (w.v === 0) return c0(0);
        if (h.v === 0) return c0(sgn(w.v) * Math.PI / 2);
        const v = Math.atan2(w.v, h.v) + (h.v < 0 ? (w.v > 0 ? -Math.PI : Math.PI) : 0);
        const rel = w.e / Math.abs(w.v) + h.e / Math.abs(h.v);
        return { v, e: 4 * Math.abs(v) + 2 + rel * Math.abs(w.v * h.v) / (w.v * w.v + h.v * h.v) };
      };
      const da = sub(A(q.wh2[0], q.wh2[1]), A(q.wh1[0], q.wh1[1]));
      const v = mul(mul(cst(4 / Math.PI ** 2), da), da);
      const k = div(v, add(add(v, hd), eps));
      loss = add(loss, mul(k, v));
      const m = Math.max(Math.abs(q.wh1[0].v), Math.abs(q.wh1[1].v));
      if (want && m > 0) {
        const ga = mul(mul(mul(neg(k), cst(4 / Math.PI ** 2)), c0(2)), da);
        const wn = vec(div(q.wh1[0], c0(m)), div(q.wh1[1], c0(m)));
        const den = mul(add(mul(wn[0], wn[0]), mul(wn[1], wn[1])), c0(m));
        a.wh1 = acc(a.wh1, div(mul(ga, wn[1]), den), div(mul(ga, neg(wn[0])), den));
      }
    }
  } else if (cfg.variant === 'gwd') {
    const a2 = cst(cfg.alpha * cfg.alpha);
    const v1 = mul(q.wh1[0], q.wh1[1]);
    const v2 = mul(q.wh2[0], q.wh2[1]);
    const g0raw = div(mul(v1, v2), c0(16));
    const SF = 3.16227766016837933e-4;
    const g0on = br.ge('g0>=floor', g0raw, SF);
    const g0 = g0on ? g0raw : cst(SF);
    const x0 = add(add(mul(q.pq1[0], q.E[0]), mul(q.pq1[1], q.E[1])), mul(c0(2), g0));
    const x0on = br.ge('x0>=floor', x0, 1e-7);
    const s = sqrtV(maxC(x0, 1e-7));
    const w = sub(add(add(add(q.pq1[0], q.pq1[1]), q.pq2[0]), q.pq2[1]), mul(c0(2), s));
    const yy = add(add(mul(q.d[0], q.d[0]), mul(q.d[1], q.d[1])), mul(a2, w));
    const yon = br.ge('y>=floor', yy, 1e-7);
    const gg = sqrtV(maxC(yy, 1e-7));
    const scale = cfg.normalize ? mul(c0(2), sqrtV(sqrtV(g0))) : c0(1);
    const x = div(gg, scale);
    const [y, dy] = post(x, cfg, cst(cfg.tau), br);
    loss = y;
    if (want) {
      let gg0 = c0(0);
      if (cfg.normalize) gg0 = sub(gg0, div(mul(dy, x), mul(c0(4), g0)));
      if (yon) {
        const gy = mul(div(dy, scale), div(c0(0.5), gg, Math.sqrt(1e-7)));
        a.d = acc(a.d, mul(mul(gy, c0(2)), q.d[0]), mul(mul(gy, c0(2)), q.d[1]));
        const gw = mul(gy, a2);
        a.pq1 = acc(a.pq1, gw, gw);
        if (x0on) {
          const gx = div(neg(gw), s, Math.sqrt(1e-7));
          a.pq1 = acc(a.pq1, mul(gx, q.E[0]), mul(gx, q.E[1]));
          backE(q, mul(gx, q.pq1[0]), mul(gx, q.pq1[1]), a);
          gg0 = add(gg0, mul(c0(2), gx));
        }
      }
      if (g0on) {
        const f = div(mul(gg0, v2), c0(16));
        a.wh1 = acc(a.wh1, mul(f, q.wh1[1]), mul(f, q.wh1[0]));
      }
    }
  } else if (cfg.variant !== 'kfiou') {
    const a2 = cst(cfg.alpha * cfg.alpha);
    const k12 = kl(q, false, null, a, a2);
    const k21 = cfg.variant === 'kld' ? c0(0) : kl(q, true, null, a, a2);
    let x: V;
    let g12 = c0(0);
    let g21 = c0(0);
    if (cfg.variant === 'kld') {
      const [r, dr] = root(k12, cfg, 'r12>=floor', br);
      x = r;
      g12 = dr;
    } else if (cfg.variant === 'jd') {
      const [r, dr] = root(add(mul(c0(0.5), k12), mul(c0(0.5), k21)), cfg, 'jd>=floor', br);
      x = r;
      g12 = mul(c0(0.5), dr);
      g21 = g12;
    } else {
      const [r12, d12] = root(k12, cfg, 'r12>=floor', br);
      const [r21, d21] = root(k21, cfg, 'r21>=floor', br);
      const max = cfg.variant === 'kld_symmax';
      const diff = sub(r12, r21);
      // a tie of r12 and r21 (`part` forces the side: 1, 0.5, 0)
      br.ge('r12>=r21', diff, 0);
      const first = max ? r12.v > r21.v : r12.v < r21.v;
      const pt = part ?? (r12.v === r21.v ? 0.5 : first ? 1 : 0);
      x = (max ? r12.v >= r21.v : r12.v <= r21.v) ? r12 : r21;
      g12 = mul(c0(pt), d12);
      g21 = mul(c0(1 - pt), d21);
    }
    const [y, dy] = post(x, cfg, cst(cfg.tau), br);
    loss = y;
    if (want) {
      kl(q, false, mul(dy, g12), a, a2);
      if (cfg.variant !== 'kld') kl(q, true, mul(dy, g21), a, a2);
    }
  } else {
    const v1 = mul(q.wh1[0], q.wh1[1]);
    const v2 = mul(q.wh2[0], q.wh2[1]);
    const sD = sqrtV(q.D);
    const vb = div(mul(v1, v2), mul(c0(4), sD));
    const den = add(sub(add(v1, v2), vb), eps);
    const kf = div(vb, den);
    let kl0 = sub(c0(1), kf);
    let gkf = c0(-1);
    if (cfg.fun === 'ln') {
      kl0 = neg(logV(add(kf, eps)));
      gkf = neg(div(c0(1), add(kf, eps)));
    } else if (cfg.fun === 'exp') {
      const ex = expV(sub(c0(1), kf));
      kl0 = sub(ex, c0(1));
      gkf = neg(ex);
    }
    const beta = cst(cfg.beta);
    const e = deltas ? [sub(c0(deltas.pd[deltas.at]), c0(deltas.td[deltas.at])), sub(c0(deltas.pd[deltas.at + 1]), c0(deltas.td[deltas.at + 1]))] : q.d;
    const xy = e.map((x) => (Math.abs(x.v) < cfg.beta ? div(mul(mul(c0(0.5), x), x), beta) : sub(abs(x), mul(c0(0.5), beta))));
    const ge = e.map((x) => (Math.abs(x.v) < cfg.beta ? div(x, beta) : c0(sgn(x.v))));
    loss = add(add(xy[0], xy[1]), kl0);
    if (want) {
      if (deltas) gradDelta = ge;
      else a.d = acc(a.d, ge[0], ge[1]);
      const den2 = mul(den, den);
      const gvb = div(mul(gkf, add(den, vb)), den2);
      const gv1 = add(div(mul(neg(gkf), vb), den2), div(mul(gvb, v2), mul(c0(4), sD)));
      a.wh1 = acc(a.wh1, mul(gv1, q.wh1[1]), mul(gv1, q.wh1[0]));
      backD(q, div(mul(neg(gvb), vb), mul(c0(2), q.D)), a);
    }
  }
  return { loss, grad: want ? finish(q, a, mm) : [], gradDelta };
}

/**
 * S of one row (./tolerance.ts's rule, K = 512): `loss` for the row's loss, `grad` for its five pred
 * partials and `delta` for predDelta's two, per unit upstream, ties included as jumps. `value` and
 * `g` are the model's own float64 values (equal to the reference's but at ties, which `ties` names:
 * test/fuzz/rotated-rule.test.ts).
 */
export function rotatedRowTerms(p: ArrayLike<number>, po: number, t: ArrayLike<number>, to: number, cfg: RotatedConfigLike, want: boolean, deltas?: { pd: ArrayLike<number>; td: ArrayLike<number>; at: number }): { loss: number; grad: number[]; delta: number[]; value: number; g: number[]; gd: number[]; ties: string[] } {
  const KU = K * 2 ** -24;
  const br = new Branches(new Map());
  const base = rowOnce(p, po, t, to, cfg, want, br, deltas);
  // Each side of the ties (every combination of them: float32 may take several at once), its own
  // bound; and the spread of the sides' values as a jump: whichever side the reference took (float64
  // at a tie takes either too), the GPU may take any other.
  const names = [...br.ties].filter((x) => x !== 'r12>=r21').slice(0, 4);
  const parts = br.ties.has('r12>=r21') ? [0, 0.5, 1] : [undefined];
  const sides: ReturnType<typeof rowOnce>[] = [base];
  if (br.ties.size) {
    for (let m = 0; m < 1 << names.length; m++) {
      for (const part of parts) {
        // (tie k forced to the side given by bit k of m)
        const force: Force = new Map(names.map((x, k) => [x, ((m >> k) & 1) === 1]));
        sides.push(rowOnce(p, po, t, to, cfg, want, new Branches(force), deltas, part));
      }
    }
  }
  const spread = (f: (o: ReturnType<typeof rowOnce>) => V) => {
    const vs = sides.map((o) => f(o).v);
    return (Math.max(...vs) - Math.min(...vs)) / KU + Math.max(...sides.map((o) => (SAFETY * f(o).e) / K));
  };
  const lossJ = spread((o) => o.loss);
  const gradJ = base.grad.map((_, k) => spread((o) => o.grad[k]));
  const deltaJ = base.gradDelta.map((_, k) => spread((o) => o.gradDelta[k]));
  // (a bound that is not a number would excuse any error: none should arise, but never pass one on)
  const sure = (x: number) => {
    if (x < 0) throw new Error(`rotated error model: a negative bound (${x}): a defect of the model`);
    return Number.isNaN(x) ? Infinity : x;
  };
  return {
    loss: sure(lossJ),
    grad: gradJ.map(sure),
    delta: deltaJ.map(sure),
    value: base.loss.v,
    g: base.grad.map((x) => x.v),
    gd: base.gradDelta.map((x) => x.v),
    ties: [...br.ties],
  };
}

/** S of pairwise_probiou's entry (a[i], b[j]): 1 - hd, K = 512. */
export function probiouPairTerms(a: ArrayLike<number>, i: number, b: ArrayLike<number>, j: number, eps: number): { loss: number; value: number } {
  const br = new Branches(new Map());
  const q = pairOf(a, 5 * i, b, 5 * j, false);
  const hd = probiouHd(q, cst(eps), c0(1), false, newAdj(), br);
  const v = sub(c0(1), hd);
  if (v.e < 0) throw new Error(`rotated error model: a negative bound (${v.e}): a defect of the model`);
  return { loss: Number.isNaN(v.e) ? Infinity : (SAFETY * v.e) / K, value: v.v };
}
