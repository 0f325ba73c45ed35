// Range-reduced e^x and the sigmoid and tanh built on it, faster than Math.exp and
// Math.tanh in elementwise loops: the LSTM's and GRU's gates (layers/_recurrent.ts) and
// float32 softmax rows (activations/softmax.ts). Private to the library.

// e^x = 2^(k/64)·e^r with k = round(64·x/ln 2) and |r| ≤ ln 2/128: e^r − 1 by its Taylor
// polynomial of degree 6 (truncation < 1e-19 relative), 2^(k/64) = 2^(k >> 6)·2^((k & 63)/64)
// from two tables. The gate functions below are built on it: within a few float64 ulps of
// their exact values (tanh within 5e-15 relative, its worst near ±0.003), and two to three times as
// fast as Math.exp and Math.tanh in the gate loops. Arguments are clamped to [−708, 709],
// which changes no sigmoid or tanh.
function expFractions(): Float64Array {
  return Float64Array.from({ length: 64 }, (_, j) => 2 ** (j / 64));
}
function expPowers(): Float64Array {
  return Float64Array.from({ length: 2047 }, (_, e) => 2 ** (e - 1023));
}
const EXP_FRACTIONS = expFractions();
const EXP_POWERS = expPowers();
const INV_LN2_64 = 64 / Math.LN2;
// ln 2/64 split so that k·HI is exact for |k| < 2^17; LO holds the rest (with the 2.3e-17
// by which Math.LN2 falls short of ln 2).
const LN2_64_HI = Math.floor((Math.LN2 / 64) * 2 ** 42) / 2 ** 42;
const LN2_64_LO = (Math.LN2 / 64 - LN2_64_HI) + 2.319046813846299558e-17 / 64;
const ROUND = 6755399441055744; // 1.5·2^52: adding and subtracting it rounds to an integer

/** e^x for x in [−708, 709] to a few ulps; x clamped to that range (NaN gives NaN). */
export function exp(x: number): number {
  const v = x < -708 ? -708 : x > 709 ? 709 : x;
  const kf = (v * INV_LN2_64 + ROUND) - ROUND;
  const r = (v - kf * LN2_64_HI) - kf * LN2_64_LO;
  const k = kf | 0;
  const p = 1 + r * (1 + r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r / 720)))));
  return p * EXP_FRACTIONS[k & 63] * EXP_POWERS[(k >> 6) + 1023];
}

/** σ(x) = 1/(1 + e^−x), to a few ulps. */
export function sigmoid(x: number): number {
  return 1 / (1 + exp(-x));
}

/**
 * tanh(x) = m/(m + 2) with m = e^2x − 1, computed as (2^(k/64) − 1) + 2^(k/64)·(e^r − 1) so
 * that it does not cancel near 0: within 5e-15 relative; ±∞ gives ±1, NaN gives NaN.
 */
export function tanh(x: number): number {
  const v = x < -354 ? -708 : x > 354 ? 708 : 2 * x;
  const kf = (v * INV_LN2_64 + ROUND) - ROUND;
  const r = (v - kf * LN2_64_HI) - kf * LN2_64_LO;
  const k = kf | 0;
  const q = r * (1 + r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r / 720)))));
  const scale = EXP_FRACTIONS[k & 63] * EXP_POWERS[(k >> 6) + 1023];
  const m = (scale - 1) + scale * q;
  return m / (m + 2);
}

// For float32 gates: the same reduction with e^r − 1 to degree 3 (sigmoid) or 4 (tanh), 4e-11
// and 7e-12 relative at worst, far below float32's rounding (6e-8), and ~1.6× as fast in
// the LSTM's gate loop.

/** σ(x) for float32 results: within 1e-10 relative. */
export function sigmoid32(x: number): number {
  const v = x > 708 ? -708 : x < -709 ? 709 : -x;
  const kf = (v * INV_LN2_64 + ROUND) - ROUND;
  const r = (v - kf * LN2_64_HI) - kf * LN2_64_LO;
  const k = kf | 0;
  const p = 1 + r * (1 + r * (0.5 + r * (1 / 6)));
  return 1 / (1 + p * EXP_FRACTIONS[k & 63] * EXP_POWERS[(k >> 6) + 1023]);
}

/** tanh(x) for float32 results: within 1e-10 relative; ±∞ gives ±1, NaN gives NaN. */
export function tanh32(x: number): number {
  const v = x < -354 ? -708 : x > 354 ? 708 : 2 * x;
  const kf = (v * INV_LN2_64 + ROUND) - ROUND;
  const r = (v - kf * LN2_64_HI) - kf * LN2_64_LO;
  const k = kf | 0;
  const q = r * (1 + r * (0.5 + r * (1 / 6 + r * (1 / 24))));
  const scale = EXP_FRACTIONS[k & 63] * EXP_POWERS[(k >> 6) + 1023];
  const m = (scale - 1) + scale * q;
  return m / (m + 2);
}

/**
 * The fast functions as source text for the worker pool's tasks: `exp`, `sigmoid32` and
 * `tanh32`, the functions that build their tables, and their constants written from this
 * module's own values (a double printed by JavaScript reads back as the same double), so a
 * worker computes the same bits from a few hundred bytes of source.
 */
export function fastMathSource(): string {
  return `${String(expFractions)}
${String(expPowers)}
const EXP_FRACTIONS = expFractions();
const EXP_POWERS = expPowers();
const INV_LN2_64 = ${INV_LN2_64};
const LN2_64_HI = ${LN2_64_HI};
const LN2_64_LO = ${LN2_64_LO};
const ROUND = ${ROUND};
${String(exp)}
${String(sigmoid32)}
${String(tanh32)}
`;
}
