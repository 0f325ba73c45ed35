import type { FloatArray } from "./tensor.ts";

// Dimension letters: m rows of the left operand, k the shared dimension, n columns of the
// result. Every array is flat and row-major; `accumulate` adds into `c` instead of overwriting.

/**
 * The matrix products backpropagation needs, as a pluggable compute backend.
 *
 * Layers call the active backend (`getBackend()`, in `backends/selection.ts`); they hold no
 * kernels of their own, so a faster backend speeds up every layer at once.
 */
export interface Backend {
  /** The name users select it by, e.g. `"js"`. */
  readonly name: string;
  /** c[m,n] = a[m,k]·b[k,n] (forward: `inputs·W`). */
  matmul(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    m: number,
    k: number,
    n: number,
    accumulate?: boolean,
  ): void;
  /** c[k,n] = a[m,k]ᵀ·b[m,n] (`dweights = inputsᵀ·dvalues`). */
  matmulTransA(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    m: number,
    k: number,
    n: number,
    accumulate?: boolean,
  ): void;
  /**
   * c[m,n] = a[m,k]·b[k,n] + bias[n] on every row (optional: `Dense` calls `matmul` then
   * `addBias` when absent). The sum must round as those two calls would: the product first,
   * then the bias added to it.
   */
  matmulBias?(
    a: FloatArray,
    b: FloatArray,
    bias: FloatArray,
    c: FloatArray,
    m: number,
    k: number,
    n: number,
  ): void;
  /** c[m,k] = a[m,n]·b[k,n]ᵀ (`dinputs = dvalues·Wᵀ`). */
  matmulTransB(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    m: number,
    k: number,
    n: number,
    accumulate?: boolean,
  ): void;
  /** c[m,n] += bias[n] on every row. */
  addBias(c: FloatArray, bias: FloatArray, m: number, n: number): void;
  /** out[n] = Σ_rows a[m,n] (`dbiases = Σ_batch dvalues`). */
  sumColumns(a: FloatArray, out: FloatArray, m: number, n: number, accumulate?: boolean): void;
  /**
   * out = max(x, 0) element-wise (optional: the ReLU layer loops itself when absent). The
   * one activation nearly every model has, so a backend may vectorize it.
   */
  relu?(x: FloatArray, out: FloatArray): void;
  /** out = x > 0 ? dvalues : 0 element-wise (optional, with {@linkcode Backend.relu}). */
  reluBackward?(x: FloatArray, dvalues: FloatArray, out: FloatArray): void;
  /**
   * One Adam update in place (optional: `Adam` loops itself when absent), the book's
   * operations in its order: `m = β₁m + (1−β₁)g`, `v = β₂v + (1−β₂)g²` (stored, then read
   * back), `value += (−lr·(m/c₁)) / (√(v/c₂) + ε)`, in float64 arithmetic or, for float32
   * arrays, in float32 arithmetic (as NumPy computes the book's code on float32 arrays; within
   * float32 rounding of the float64 loop). All four arrays have one element type and length.
   */
  adam?(
    value: FloatArray,
    grad: FloatArray,
    momentum: FloatArray,
    cache: FloatArray,
    hyper: AdamHyper,
  ): void;
}

/** The scalars of one Adam update (see {@linkcode Backend.adam}). */
export interface AdamHyper {
  /** β₁ */
  beta1: number;
  /** β₂ */
  beta2: number;
  /** The step size of this update. */
  learningRate: number;
  /** 1 − β₁^(t+1) */
  correction1: number;
  /** 1 − β₂^(t+1) */
  correction2: number;
  /** ε */
  epsilon: number;
}
