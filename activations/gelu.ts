// Legend: x the inputs, w = −x/√2, Φ(x) = erfc(w)/2 the standard normal CDF,
// φ(x) = e^(−x²/2)/√(2π) its density, so that GELU(x) = x·Φ(x) and GELU′(x) = Φ(x) + x·φ(x).
import { getBackend } from "../backends/selection.ts";
import { describe } from "../core/_describe.ts";
import { expectLike, expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { ForwardOptions, Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { Scratch } from "../core/_scratch.ts";
import { Tensor } from "../core/tensor.ts";
import { flatIndex, type GpuContext, type GpuLayer, type GpuTensor, gridFor } from "../core/gpu.ts";
import { kernel } from "../backends/webgpu_ops.ts";

const TWO_OVER_SQRT_PI = 1.1283791670955126; // 2/√π
const INV_SQRT_PI = 0.5641895835477563; // 1/√π
const INV_TWO_SQRT_TWO = 0.35355339059327373; // 1/(2√2)
const INV_SQRT_TWO_PI = 0.3989422804014327; // 1/√(2π)
const TANH_BETA = 0.7978845608028654; // √(2/π), PyTorch's kBeta
const TANH_KAPPA = 0.044715; // κ, PyTorch's kKappa

// erfc is tabulated as Taylor polynomials about the centers a_k = k/16 − 6 (k = 0 … 192):
// erfc(a + s) = Σ_{n=0..12} c_n·s^n with |s| ≤ 1/32, where, since
// dⁿ/dxⁿ e^(−x²) = (−1)ⁿ·Hₙ(x)·e^(−x²) (Hermite polynomials),
//   c_0 = erfc(a),  c_n = −(2/√π)·e^(−a²)·(−1)^(n−1)·H_(n−1)(a)/n!  (n ≥ 1).
// Every coefficient but c_0 carries e^(−a²), so the polynomial keeps erfc's relative
// precision where erfc is tiny. The truncation error is about the first term left out,
// (2·a·s)^13/13! relative: under 1e−17 for |a| ≤ 4.5, 5e−16 at the table's ends (a = ±6,
// |s| = 1/32). Beyond |x| = 6 erfc(x) is under 2e−17: negative x give 2, positive x the
// continued fraction below.
const STEPS = 16; // centers per unit
const STEP = 1 / STEPS;
const REACH = 6; // the centers span [−REACH, REACH]
const LIMIT = REACH + 0.5 / STEPS; // the table answers for |x| < LIMIT
const DEGREE = 12;
const WIDTH = DEGREE + 1; // coefficients per center
const CENTERS = 2 * REACH * STEPS + 1;
const UNDERFLOW = 27.3; // erfc(x) and e^(−x²) round to 0 beyond
// erf(x) near 0, where 1 − erfc(x) would lose erf's relative precision: the Taylor series
// erf(x) = (2/√π)·Σ_n (−1)ⁿ·x^(2n+1)/(n!·(2n+1)), whose 13th term is below 1e−17 for |x| < 1/2.
const ERF_SERIES_TERMS = 13;
const ERF_SERIES_LIMIT = 0.5;

interface ErfcTable {
  value: Float64Array; // [CENTERS, WIDTH]: c_0 … c_12 per center
  slope: Float64Array; // [CENTERS, DEGREE]: the derivative's coefficients (n + 1)·c_(n+1)
  series: Float64Array; // [ERF_SERIES_TERMS]: (2/√π)·(−1)ⁿ/(n!·(2n+1))
}

let table: ErfcTable | undefined;

// Built on first use (a few thousand operations), so that importing computes nothing.
function erfcTable(): ErfcTable {
  table ??= buildTable();
  return table;
}

function buildTable(): ErfcTable {
  const value = new Float64Array(CENTERS * WIDTH);
  const slope = new Float64Array(CENTERS * DEGREE);
  for (let k = 0; k < CENTERS; k++) {
    const a = k * STEP - REACH; // exact, and so is a²
    const offset = k * WIDTH;
    value[offset] = erfcAtCenter(a);
    const scale = -TWO_OVER_SQRT_PI * Math.exp(-a * a);
    let hermite = 1, previous = 0, factorial = 1; // H_0, H_(−1), 0!
    for (let n = 1; n <= DEGREE; n++) {
      factorial *= n;
      // c_n = −(2/√π)·e^(−a²)·(−1)^(n−1)·H_(n−1)(a)/n!
      const c = scale * (n % 2 === 1 ? hermite : -hermite) / factorial;
      value[offset + n] = c;
      slope[k * DEGREE + n - 1] = n * c;
      // H_n = 2a·H_(n−1) − 2(n − 1)·H_(n−2)
      const next = 2 * a * hermite - 2 * (n - 1) * previous;
      previous = hermite;
      hermite = next;
    }
  }
  const series = new Float64Array(ERF_SERIES_TERMS);
  let factorial = 1;
  for (let n = 0; n < ERF_SERIES_TERMS; n++) {
    if (n > 0) factorial *= n;
    series[n] = (n % 2 === 0 ? TWO_OVER_SQRT_PI : -TWO_OVER_SQRT_PI) / (factorial * (2 * n + 1));
  }
  return { value, slope, series };
}

// erfc at a table center, to a few units in the last place: from the erf series where
// |a| ≤ 1/2 (no cancellation in 1 − erf there), else from the continued fraction.
function erfcAtCenter(a: number): number {
  if (a < -ERF_SERIES_LIMIT) return 2 - erfcContinuedFraction(-a);
  if (a > ERF_SERIES_LIMIT) return erfcContinuedFraction(a);
  // erf(a) = (2/√π)·e^(−a²)·Σ_n 2ⁿ·a^(2n+1)/(1·3·5⋯(2n+1)): terms of one sign, no cancellation.
  const twoA2 = 2 * a * a;
  let term = a, sum = a;
  for (let n = 1; Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
    term *= twoA2 / (2 * n + 1);
    sum += term;
  }
  return 1 - TWO_OVER_SQRT_PI * Math.exp(-a * a) * sum;
}

// erfc(z) for z > 0 from Laplace's continued fraction
//   erfc(z) = e^(−z²)/√π · 1/(z + (1/2)/(z + (2/2)/(z + (3/2)/(z + ⋯)))),
// evaluated bottom-up (stable) from a depth that converges to full precision (checked
// against mpmath): 16 + 400/z² levels, 1,280 at the first center it serves (z = 9/16), 27
// where the table ends (z = 6).
function erfcContinuedFraction(z: number): number {
  if (z > UNDERFLOW) return 0;
  let tail = z;
  for (let n = Math.ceil(16 + 400 / (z * z)); n >= 1; n--) tail = z + n / 2 / tail;
  return expNegSquare(z) * INV_SQRT_PI / tail;
}

// e^(−z²) to full relative precision for large z: z² rounded would cost z²·2⁻⁵³ relative,
// so z is split into zh (24 bits, so zh² is exact) and z − zh:
// e^(−z²) = e^(−zh²)·e^(−(z − zh)(z + zh)).
function expNegSquare(z: number): number {
  if (z > UNDERFLOW) return 0;
  const high = Math.fround(z);
  return Math.exp(-high * high) * Math.exp(-(z - high) * (z + high));
}

/**
 * The complementary error function `erfc(x) = 1 − erf(x) = (2/√π)·∫ₓ^∞ e^(−t²) dt`, to about
 * 5e−16 relative over the whole line, tails included (checked against mpmath): `erfc(10)`
 * is 2.088e−45 to full precision, where `1 − erf(10)` would give 0.
 *
 * JavaScript has no `Math.erfc`. Within |x| ≤ 6 it evaluates Taylor polynomials of erfc
 * about points 1/16 apart, whose coefficients follow from the Hermite polynomials;
 * beyond, Laplace's continued fraction (for x > 6) or 2 (for x < −6: erfc(−x) < 2e−17).
 *
 * @param x any number (NaN gives NaN).
 * @returns erfc(x), in [0, 2].
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { erfc } from "@chainrule/nn";
 *
 * assert.equal(erfc(0), 1);
 * assert.ok(Math.abs(erfc(1) - 0.15729920705028513) < 1e-16);
 * assert.ok(Math.abs(erfc(10) / 2.088487583762545e-45 - 1) < 1e-15);
 * assert.equal(erfc(-10), 2);
 * ```
 */
export function erfc(x: number): number {
  const { value } = erfcTable();
  if (x > -LIMIT && x < LIMIT) {
    const k = ((x + REACH) * STEPS + 0.5) | 0; // the nearest center
    return polynomial13(value, k * WIDTH, x - (k * STEP - REACH));
  }
  return x < 0 ? 2 : erfcContinuedFraction(x); // NaN goes to the fraction, which gives NaN
}

/**
 * The error function `erf(x) = (2/√π)·∫₀ˣ e^(−t²) dt`, to about 5e−16 relative (checked
 * against mpmath and Python's `math.erf`), including near 0, where it follows its Taylor
 * series (`erf(1e−10)` is 1.1283791670955126e−10), and in the tails (see {@linkcode erfc}).
 *
 * @param x any number (NaN gives NaN).
 * @returns erf(x), in [−1, 1].
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { erf } from "@chainrule/nn";
 *
 * assert.equal(erf(0), 0);
 * assert.ok(Math.abs(erf(0.5) / 0.5204998778130465 - 1) < 5e-16);
 * assert.equal(erf(1e-10), 1.1283791670955126e-10);
 * assert.equal(erf(-1), -erf(1));
 * assert.equal(erf(7), 1);
 * ```
 */
export function erf(x: number): number {
  if (Math.abs(x) < ERF_SERIES_LIMIT) {
    const c = erfcTable().series;
    const y = x * x;
    let sum = c[ERF_SERIES_TERMS - 1];
    for (let n = ERF_SERIES_TERMS - 2; n >= 0; n--) sum = sum * y + c[n];
    return x * sum;
  }
  return x > 0 ? 1 - erfc(x) : erfc(-x) - 1;
}

// float32's exact form: Φ and GELU′ = Φ + x·φ as cubic Hermite interpolants over [−3, 8],
// from their exact values and slopes at the nodes (Φ′ = φ, GELU″ = (2 − x²)·φ), Φ on a grid
// of 1/64 and GELU′ of 1/128. The cubic Hermite error is h⁴/384·max|f⁗|: about 6e−11 for Φ
// and 3e−11 (absolute) for GELU′, below float32's rounding of the results there (Φ(−3) =
// 1.3e−3, so 5e−8 relative at worst). Backward needs the one table, not Φ's and φ's.
// Outside the grid float32 takes the float64 path: x < −3 (0.1% of N(0, 1)
// pre-activations, where relative precision needs erfc's tail) and x ≥ 8 (Φ = 1 − 6e−16,
// φ < 6e−15: y = x, y′ = 1).
const FAST_LOW = -3;
const FAST_HIGH = 8;
const CDF_STEPS = 64; // Φ's nodes per unit
const SLOPE_STEPS = 128; // GELU′'s nodes per unit
const CDF_INTERVALS = (FAST_HIGH - FAST_LOW) * CDF_STEPS;
const SLOPE_INTERVALS = (FAST_HIGH - FAST_LOW) * SLOPE_STEPS;

interface FastTable {
  cdf: Float64Array; // [CDF_INTERVALS, 4]: Φ's cubic in t ∈ [0, 1) per interval, c0 … c3
  slope: Float64Array; // [SLOPE_INTERVALS, 4]: GELU′'s cubic likewise
}

let fastTable: FastTable | undefined;

function fastGeluTable(): FastTable {
  fastTable ??= { cdf: buildCubics(CDF_STEPS, false), slope: buildCubics(SLOPE_STEPS, true) };
  return fastTable;
}

// Hermite's cubic on [0, 1] through (f0, d0) and (f1, d1), d the slopes scaled by h, as
// power-basis coefficients c0 + c1·t + c2·t² + c3·t³.
function hermiteCubic(
  out: Float64Array,
  o: number,
  f0: number,
  d0: number,
  f1: number,
  d1: number,
) {
  out[o] = f0;
  out[o + 1] = d0;
  out[o + 2] = 3 * (f1 - f0) - 2 * d0 - d1;
  out[o + 3] = 2 * (f0 - f1) + d0 + d1;
}

// [intervals, 4]: the cubics of Φ (f = Φ, f′ = φ) or, when `slope`, of GELU′
// (f = Φ + x·φ, f′ = (2 − x²)·φ), `steps` intervals per unit over [FAST_LOW, FAST_HIGH].
function buildCubics(steps: number, slope: boolean): Float64Array {
  const intervals = (FAST_HIGH - FAST_LOW) * steps;
  const out = new Float64Array(intervals * 4);
  const h = 1 / steps;
  const node = (k: number) => {
    const x = FAST_LOW + k * h; // exact
    const density = Math.exp(-0.5 * x * x) * INV_SQRT_TWO_PI;
    const cdf = 0.5 * erfc(-Math.SQRT1_2 * x);
    return slope
      ? { f: cdf + x * density, d: h * (2 - x * x) * density }
      : { f: cdf, d: h * density };
  };
  let left = node(0);
  for (let k = 0; k < intervals; k++) {
    const right = node(k + 1);
    hermiteCubic(out, 4 * k, left.f, left.d, right.f, right.d);
    left = right;
  }
  return out;
}

// GELU(v) and GELU′(v) by erfc, for the float32 loops' elements off the grid.
function exactGelu(v: number): number {
  return 0.5 * v * erfc(-Math.SQRT1_2 * v);
}

function exactSlope(v: number): number {
  const density = expNegSquare(Math.SQRT1_2 * Math.abs(v)) * INV_SQRT_TWO_PI;
  return 0.5 * erfc(-Math.SQRT1_2 * v) + v * density;
}

// The float32 loops run every element on the grid through its cubic and list the indices
// of those off it (x < −3, x ≥ 8 or NaN: rare; they read interval 0 meanwhile), which are
// then redone; the main loops stay small, with one well-predicted branch, so that they
// compile tight (a clamp of the position with two selects ran at half the speed). `offGrid`
// holds at least as many entries as the data. A backend with `cubicMap` (the wasm one, on
// its worker pool, for training buffers) runs the same loops, with the same bits, and
// returns the list; the redo is then the same.

// y = x·Φ(x), Φ from the grid's cubics.
function fastForward(x: Float32Array, y: Float32Array, offGrid: Int32Array): void {
  const cdf = fastGeluTable().cdf;
  const offList = getBackend().cubicMap?.(x, cdf, FAST_LOW, CDF_STEPS, y);
  if (offList) return redoForward(x, y, offList, offList.length);
  const n = y.length;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const v = x[i];
    let position = (v - FAST_LOW) * CDF_STEPS; // exact for float32 v
    if (!(position >= 0 && position < CDF_INTERVALS)) {
      offGrid[count++] = i;
      position = 0;
    }
    const k = position | 0, t = position - k, o = 4 * k;
    y[i] = v * (cdf[o] + t * (cdf[o + 1] + t * (cdf[o + 2] + t * cdf[o + 3])));
  }
  redoForward(x, y, offGrid, count);
}

// y = x·Φ(x) by erfc at the first `count` indices of `offGrid`.
function redoForward(x: Float32Array, y: Float32Array, offGrid: Int32Array, count: number): void {
  for (let j = 0; j < count; j++) {
    const i = offGrid[j], v = x[i];
    y[i] = v >= FAST_HIGH ? v : exactGelu(v);
  }
}

// dx = dvalues·GELU′(x), GELU′ = Φ + x·φ from the grid's cubics.
function fastBackward(
  x: Float32Array,
  dv: Float32Array,
  dx: Float32Array,
  offGrid: Int32Array,
): void {
  const slope = fastGeluTable().slope;
  const offList = getBackend().cubicMap?.(x, slope, FAST_LOW, SLOPE_STEPS, dx, dv);
  if (offList) return redoBackward(x, dv, dx, offList, offList.length);
  const n = dx.length;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const v = x[i];
    let position = (v - FAST_LOW) * SLOPE_STEPS; // exact for float32 v
    if (!(position >= 0 && position < SLOPE_INTERVALS)) {
      offGrid[count++] = i;
      position = 0;
    }
    const k = position | 0, t = position - k, o = 4 * k;
    dx[i] = dv[i] * (slope[o] + t * (slope[o + 1] + t * (slope[o + 2] + t * slope[o + 3])));
  }
  redoBackward(x, dv, dx, offGrid, count);
}

// dx = dvalues·GELU′(x) by erfc at the first `count` indices of `offGrid`.
function redoBackward(
  x: Float32Array,
  dv: Float32Array,
  dx: Float32Array,
  offGrid: Int32Array,
  count: number,
): void {
  for (let j = 0; j < count; j++) {
    const i = offGrid[j], v = x[i];
    dx[i] = v >= FAST_HIGH ? dv[i] : dv[i] * exactSlope(v);
  }
}

// Σ_{n=0..12} c[o + n]·sⁿ by Estrin's scheme (shorter dependency chains than Horner's).
function polynomial13(c: Float64Array, o: number, s: number): number {
  const s2 = s * s, s4 = s2 * s2, s8 = s4 * s4;
  return (c[o] + s * c[o + 1]) + s2 * (c[o + 2] + s * c[o + 3]) +
    s4 * ((c[o + 4] + s * c[o + 5]) + s2 * (c[o + 6] + s * c[o + 7])) +
    s8 * ((c[o + 8] + s * c[o + 9]) + s2 * (c[o + 10] + s * c[o + 11]) + s4 * c[o + 12]);
}

// Σ_{n=0..11} c[o + n]·sⁿ, the derivative's polynomial.
function polynomial12(c: Float64Array, o: number, s: number): number {
  const s2 = s * s, s4 = s2 * s2, s8 = s4 * s4;
  return (c[o] + s * c[o + 1]) + s2 * (c[o + 2] + s * c[o + 3]) +
    s4 * ((c[o + 4] + s * c[o + 5]) + s2 * (c[o + 6] + s * c[o + 7])) +
    s8 * ((c[o + 8] + s * c[o + 9]) + s2 * (c[o + 10] + s * c[o + 11]));
}

// The GPU kernels, float32. `phi(x)` is (Φ(x), e^(−x²/2)). For |x| < 1, Φ(x) = 1/2 + x·S(x²)
// by the Taylor series S = Σ_n (−1)ⁿ·x²ⁿ/(2ⁿ·n!·(2n + 1)·√(2π)) to n = 8 (the next term
// is under 2e−10). Elsewhere Φ(−a), a = |x|, is erfc(a/√2)/2 by Numerical Recipes' erfcc,
// erfc(z) = t·exp(−z² + P(t)), t = 1/(1 + z/2), P a Chebyshev-fitted degree-9 polynomial:
// under 1.1e−7 relative for every z ≥ 0 (checked against erfc above), so the tail keeps its
// relative precision; Φ(x) = 1 − Φ(−x) for x ≥ 1. z² = a²/2 is not rounded: a is split into
// h (its 12 leading bits, so h² is exact) and a − h, e^(−a²/2) = e^(−h²/2)·e^(−(a − h)(a + h)/2).
// |x| is clamped to 15, past which Φ(−|x|) and φ(x) are 0 in float32.
const GELU_PHI = /* wgsl */ `
fn phi(x: f32) -> vec2f {
  let a = min(abs(x), 15.0);
  let h = bitcast<f32>(bitcast<u32>(a) & 0xfffff000u);
  let g = exp(-0.5 * h * h);
  let r = -0.5 * (a - h) * (a + h);
  let t = 1.0 / (1.0 + 0.35355339 * a);
  let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277))))))));
  let q = 0.5 * t * g * exp(r + poly);
  let x2 = x * x;
  let series = 0.5 + x * (0.39894228 + x2 * (-0.066490380 + x2 * (0.0099735570 +
    x2 * (-0.0011873282 + x2 * (1.1543469e-4 + x2 * (-9.4446563e-6 +
    x2 * (6.6596935e-7 + x2 * (-4.1226674e-8 + x2 * 2.2735298e-9))))))));
  return vec2f(select(select(q, 1.0 - q, x >= 0.0), series, a < 1.0), g * exp(r));
}`;

// out = y (forward) or out = dvalues·slope (backward), element-wise, `body` computing `y` or
// `slope` from the input `v`.
const geluKernel = (backward: boolean, body: string, functions = "") => /* wgsl */ `
struct P { count: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
${
  backward
    ? `@group(0) @binding(2) var<storage, read> dvalues: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;`
    : "@group(0) @binding(2) var<storage, read_write> out: array<f32>;"
}
${functions}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.count) { return; }
  let v = x[i];
  ${body}
  out[i] = ${backward ? "dvalues[i] * slope" : "y"};
}`;

// y = x·Φ(x)
const GELU_FORWARD = geluKernel(
  false,
  "let y = v * phi(v).x;",
  GELU_PHI,
);

// GELU′(x) = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π), with Φ and φ at x clamped to ±15:
// +∞ gives 1, −∞ gives −∞·0 = NaN, as on the CPU
const GELU_BACKWARD = geluKernel(
  true,
  `let c = clamp(v, -15.0, 15.0);
  let q = phi(c);
  let slope = q.x + min(v, 15.0) * (q.y * 0.39894228);`,
  GELU_PHI,
);

// y = x/(1 + e^m), m = −2u = −2√(2/π)·(x + κx³); 0 where e^m would pass float32's range
// (≈ 1e−38·x there). The tanh form's kernels never form ∞: at x = −∞ and +∞ they give the
// limits (0 and +∞, slopes 0 and 1), where the CPU's ∞/∞ and ∞·0 give NaN for some.
const GELU_TANH_FORWARD = geluKernel(
  false,
  `let m = -1.5957691 * (v + 0.044715 * (v * v * v));
  let y = select(v / (1.0 + exp(min(m, 88.0))), 0.0, m > 88.0);`,
);

// GELU′ = σ + 2x·σ·(1 − σ)·u′, σ = 1/(1 + e^m), σ·(1 − σ) = σ·e^m·σ;
// 0 for m > 88 and 1 for m < −88, where GELU′ is within 1e−36 of them (x³ may overflow)
const GELU_TANH_BACKWARD = geluKernel(
  true,
  `let v2 = v * v;
  let m = -1.5957691 * (v + 0.044715 * (v2 * v));
  let e = exp(min(m, 88.0));
  let sigma = 1.0 / (1.0 + e);
  let spread = sigma * (e * sigma);
  let full = sigma + 2.0 * v * spread * 0.79788456 * (1.0 + 0.134145 * v2);
  let slope = select(select(full, 1.0, m < -88.0), 0.0, m > 88.0);`,
);

/** The two forms of {@linkcode GELU}, as PyTorch names them. */
export type GELUApproximate = "none" | "tanh";

/** Options of {@linkcode GELU}. */
export interface GELUOptions {
  /**
   * `"none"` (the default): the exact `x·Φ(x)`, as `torch.nn.GELU()`; `"tanh"`: PyTorch's
   * approximation `x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (`nn.GELU(approximate="tanh")`).
   */
  approximate?: GELUApproximate;
}

/**
 * Gaussian error linear unit (Hendrycks & Gimpel 2016), element-wise:
 * `outputs = inputs·Φ(inputs)`, where Φ is the standard normal CDF, the activation of
 * BERT's and GPT's feed-forward blocks; equal to `torch.nn.GELU()` (float64 forward and
 * backward agree to 1e−15 relative).
 *
 * Φ(x) is computed as `erfc(−x/√2)/2` (see {@linkcode erfc}), so the outputs keep their
 * relative precision where they are tiny: `GELU(−10)` is −7.62e−23, not a rounding residue.
 * In float32 the exact form interpolates Φ and GELU′ from tables where −3 ≤ x < 8 (within a
 * unit or two of float32's last place); float64 always evaluates erfc.
 * With `approximate: "tanh"` it is PyTorch's tanh form, computed as `x/(1 + e^(−2u))` with
 * `u = √(2/π)·(x + 0.044715·x³)`, which is the same function without the cancellation of
 * `1 + tanh(u)` for negative x.
 *
 * Shapes: any → the same shape. No parameters. A training forward reuses its output buffer
 * (see `ForwardOptions`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GELU, Tensor } from "@chainrule/nn";
 *
 * const gelu = new GELU();
 * const out = gelu.forward(Tensor.from([[0, 1, -1]], { dtype: "float64" }));
 * // Φ(1) = 0.8413447460685429, so GELU(1) = Φ(1) and GELU(−1) = −(1 − Φ(1))
 * assert.ok(Math.abs(out.get(0, 1) - 0.8413447460685429) < 1e-15);
 * assert.ok(Math.abs(out.get(0, 2) + 0.15865525393145705) < 1e-15);
 * // GELU′(0) = Φ(0) = 1/2
 * assert.equal(gelu.backward(Tensor.from([[1, 0, 0]], { dtype: "float64" })).get(0, 0), 0.5);
 * assert.equal(new GELU({ approximate: "tanh" }).toString(), 'GELU(approximate="tanh")');
 * ```
 */
export class GELU implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "GELU";
  /** `"none"` for the exact form, `"tanh"` for PyTorch's tanh approximation. */
  readonly approximate: GELUApproximate;
  #inputs?: Tensor; // [...], cached by forward for backward
  #training = false; // whether the cached forward was a training one
  #outputs = new Scratch(); // [...], reused by training forwards
  #dinputs = new Scratch(); // [...], reused by backward after a training forward
  #offGrid = new Int32Array(0); // [size], float32's list of elements off the grid
  #gpuInputs?: GpuTensor; // [...], cached by gpuForward for gpuBackward

  #offGridFor(size: number): Int32Array {
    if (this.#offGrid.length < size) this.#offGrid = new Int32Array(size);
    return this.#offGrid;
  }

  /**
   * Creates the layer.
   *
   * @throws {TypeError} when `approximate` is neither `"none"` nor `"tanh"`.
   */
  constructor(options: GELUOptions = {}) {
    const approximate = options.approximate ?? "none";
    if (approximate !== "none" && approximate !== "tanh") {
      throw new TypeError(
        `new GELU: approximate must be "none" or "tanh", got ${describe(approximate)}`,
      );
    }
    this.approximate = approximate;
  }

  /** Rebuilds the layer from {@linkcode GELU.config}. */
  static fromConfig(config: JsonObject): GELU {
    return new GELU(config as GELUOptions);
  }

  /** `inputs` [...] → outputs [...]; a training forward reuses its output buffer. */
  forward(inputs: Tensor, options?: ForwardOptions): Tensor {
    expectTensor(inputs, "GELU.forward");
    this.#inputs = inputs;
    this.#training = options?.training === true;
    const outputs = this.#training
      ? this.#outputs.get(inputs.dtype, inputs.shape, getBackend())
      : Tensor.zeros(inputs.shape, { dtype: inputs.dtype });
    const x = inputs.data, y = outputs.data, n = x.length;
    if (this.approximate === "tanh") {
      // y = x·(1 + tanh u)/2 = x/(1 + e^(−2u)), u = √(2/π)·(x + 0.044715·x³)
      for (let i = 0; i < n; i++) {
        const v = x[i];
        const u = TANH_BETA * (v + TANH_KAPPA * (v * v * v));
        y[i] = v / (1 + Math.exp(-2 * u));
      }
      return outputs;
    }
    const { value } = erfcTable();
    if (y instanceof Float32Array) {
      fastForward(x as Float32Array, y, this.#offGridFor(n));
      return outputs;
    }
    // y = x·Φ(x) = x·erfc(w)/2, w = −x/√2
    for (let i = 0; i < n; i++) {
      const v = x[i];
      const w = -Math.SQRT1_2 * v;
      let e: number; // erfc(w)
      if (w > -LIMIT && w < LIMIT) {
        const k = ((w + REACH) * STEPS + 0.5) | 0;
        e = polynomial13(value, k * WIDTH, w - (k * STEP - REACH));
      } else {
        e = w < 0 ? 2 : erfcContinuedFraction(w);
      }
      y[i] = 0.5 * v * e;
    }
    return outputs;
  }

  // dinputs = dvalues·(Φ(x) + x·φ(x)), with Φ(x) = erfc(w)/2 and φ(x) = −erfc′(w)/(2√2)
  // tanh form: dvalues·(σ + 2x·σ·(1 − σ)·u′), σ = 1/(1 + e^(−2u)), u′ = √(2/π)·(1 + 3κ·x²)
  /** `dvalues` [...] → dinputs [...] */
  backward(dvalues: Tensor): Tensor {
    const inputs = expectLike(dvalues, this.#inputs, "GELU.backward");
    const dinputs = this.#training
      ? this.#dinputs.get(inputs.dtype, inputs.shape, getBackend())
      : Tensor.zeros(inputs.shape, { dtype: inputs.dtype });
    const x = inputs.data, dv = dvalues.data, dx = dinputs.data, n = x.length;
    if (this.approximate === "tanh") {
      for (let i = 0; i < n; i++) {
        const v = x[i];
        const v2 = v * v;
        const e = Math.exp(-2 * TANH_BETA * (v + TANH_KAPPA * (v2 * v)));
        const sigma = 1 / (1 + e);
        // σ·(1 − σ) = σ·e·σ, which is 0 (not ∞·0) once e overflows
        const spread = e === Infinity ? 0 : sigma * (e * sigma);
        dx[i] = dv[i] * (sigma + 2 * v * spread * TANH_BETA * (1 + 3 * TANH_KAPPA * v2));
      }
      return dinputs;
    }
    const { value, slope } = erfcTable();
    if (dx instanceof Float32Array) {
      fastBackward(x as Float32Array, dv as Float32Array, dx, this.#offGridFor(n));
      return dinputs;
    }
    for (let i = 0; i < n; i++) {
      const v = x[i];
      const w = -Math.SQRT1_2 * v;
      let e: number, de: number; // erfc(w), erfc′(w) = −(2/√π)·e^(−w²)
      if (w > -LIMIT && w < LIMIT) {
        const k = ((w + REACH) * STEPS + 0.5) | 0;
        const s = w - (k * STEP - REACH);
        e = polynomial13(value, k * WIDTH, s);
        de = polynomial12(slope, k * DEGREE, s);
      } else {
        e = w < 0 ? 2 : erfcContinuedFraction(w);
        de = -TWO_OVER_SQRT_PI * expNegSquare(Math.abs(w));
      }
      dx[i] = dv[i] * (0.5 * e - INV_TWO_SQRT_TWO * v * de);
    }
    return dinputs;
  }

  /** {@linkcode GELU.forward} on the device (Φ by a rational erfc, see the kernels). */
  gpuForward(ctx: GpuContext, inputs: GpuTensor): GpuTensor {
    const outputs = ctx.buffer(this, "outputs", inputs.shape);
    const code = this.approximate === "tanh" ? GELU_TANH_FORWARD : GELU_FORWARD;
    const size = inputs.size;
    ctx.run(
      this,
      "forward",
      kernel("GELU.forward", code),
      [inputs, outputs],
      [size],
      gridFor(size),
    );
    this.#gpuInputs = inputs;
    return outputs;
  }

  // dinputs = dvalues·(Φ(x) + x·φ(x))
  // tanh form: dvalues·(σ + 2x·σ·(1 − σ)·u′), σ = 1/(1 + e^(−2u)), u′ = √(2/π)·(1 + 3κ·x²)
  /** {@linkcode GELU.backward} on the device. */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor): GpuTensor {
    const inputs = this.#gpuInputs;
    if (!inputs) throw new Error("GELU.gpuBackward: call gpuForward first");
    const dinputs = ctx.buffer(this, "dinputs", inputs.shape);
    const code = this.approximate === "tanh" ? GELU_TANH_BACKWARD : GELU_BACKWARD;
    const size = inputs.size;
    const tensors = [inputs, dvalues, dinputs];
    ctx.run(this, "backward", kernel("GELU.backward", code), tensors, [size], gridFor(size));
    return dinputs;
  }

  /** None: GELU has no parameters. */
  params(): Param[] {
    return [];
  }

  /** `{ approximate }` */
  config(): JsonObject {
    return { approximate: this.approximate };
  }

  /** `GELU()`, or `GELU(approximate="tanh")` */
  toString(): string {
    return this.approximate === "none" ? "GELU()" : `GELU(approximate="${this.approximate}")`;
  }
}
