import { jsBackend } from "../backends/js.ts";
import { wasmBackend, wasmSupport } from "../backends/wasm.ts";
import type { FloatArray } from "./tensor.ts";

// Dimension letters: m rows of the left operand, k the shared dimension, n columns of the
// result. Every array is flat and row-major; `accumulate` adds into `c` instead of overwriting.

/**
 * The matrix products backpropagation needs, as a pluggable compute backend.
 *
 * Layers call the active backend ({@linkcode getBackend}); they hold no kernels of their
 * own, so a faster backend speeds up every layer at once.
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

/**
 * The reference backend: plain, obviously correct loops in TypeScript.
 *
 * Every faster backend is tested against it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { naiveBackend } from "@chainrule/nn";
 *
 * const c = new Float64Array(1);
 * naiveBackend.matmul(new Float64Array([1, 2]), new Float64Array([3, 4]), c, 1, 2, 1);
 * assert.equal(c[0], 11);
 * ```
 */
export const naiveBackend: Backend = {
  name: "naive",
  matmul(a, b, c, m, k, n, accumulate = false) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = accumulate ? c[i * n + j] : 0;
        for (let p = 0; p < k; p++) sum += a[i * k + p] * b[p * n + j];
        c[i * n + j] = sum;
      }
    }
  },
  matmulTransA(a, b, c, m, k, n, accumulate = false) {
    for (let p = 0; p < k; p++) {
      for (let j = 0; j < n; j++) {
        let sum = accumulate ? c[p * n + j] : 0;
        for (let i = 0; i < m; i++) sum += a[i * k + p] * b[i * n + j];
        c[p * n + j] = sum;
      }
    }
  },
  matmulTransB(a, b, c, m, k, n, accumulate = false) {
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        let sum = accumulate ? c[i * k + p] : 0;
        for (let j = 0; j < n; j++) sum += a[i * n + j] * b[p * n + j];
        c[i * k + p] = sum;
      }
    }
  },
  addBias(c, bias, m, n) {
    for (let i = 0; i < m; i++) {
      const row = i * n;
      for (let j = 0; j < n; j++) c[row + j] += bias[j];
    }
  },
  sumColumns(a, out, m, n, accumulate = false) {
    for (let j = 0; j < n; j++) {
      let sum = accumulate ? out[j] : 0;
      for (let i = 0; i < m; i++) sum += a[i * n + j];
      out[j] = sum;
    }
  },
};

const builtins: Record<string, () => Backend> = {
  naive: () => naiveBackend,
  js: () => jsBackend,
  wasm: () => {
    if (wasmSupport() === "none") {
      throw new RangeError(
        'setBackend: backend "wasm" needs WebAssembly SIMD, which this runtime lacks (use "js")',
      );
    }
    return wasmBackend;
  },
};
const registered = new Map<string, Backend>();
let active: Backend | undefined;

/**
 * Makes `backend` selectable by its name in {@linkcode setBackend} and
 * {@linkcode withBackend} (the built-ins `"naive"`, `"js"` and `"wasm"` always are).
 */
export function registerBackend(backend: Backend): void {
  registered.set(backend.name, backend);
}

function resolve(backend: Backend | string, where: string): Backend {
  if (typeof backend !== "string") {
    if (!backend || typeof backend.matmul !== "function") {
      throw new TypeError(`${where}: expected a Backend or a backend name, got ${backend}`);
    }
    return backend;
  }
  const found = registered.get(backend) ??
    (Object.hasOwn(builtins, backend) ? builtins[backend]() : undefined);
  if (!found) {
    const known = [...Object.keys(builtins), ...registered.keys()].join(", ");
    throw new RangeError(`${where}: unknown backend "${backend}", expected one of ${known}`);
  }
  return found;
}

/**
 * The backend that layers compute with now: the one last set, else `wasm` where the
 * runtime has WebAssembly SIMD, else `js`.
 */
export function getBackend(): Backend {
  active ??= wasmSupport() === "none" ? jsBackend : wasmBackend;
  return active;
}

/**
 * Makes `backend` (an object, or a name: `"wasm"`, `"js"`, `"naive"` or a registered one)
 * the one every layer computes with.
 *
 * @throws {RangeError} for an unknown name, or `"wasm"` on a runtime without SIMD.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getBackend, setBackend } from "@chainrule/nn";
 *
 * const previous = getBackend();
 * setBackend("js");
 * assert.equal(getBackend().name, "js");
 * setBackend(previous);
 * ```
 */
export function setBackend(backend: Backend | string): void {
  active = resolve(backend, "setBackend");
}

/**
 * Runs `fn` with `backend` active and restores the previous backend afterwards, even when
 * `fn` throws: the way to give one model its own backend.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dense, Tensor, withBackend } from "@chainrule/nn";
 *
 * const dense = new Dense(2, 1, { weights: [[1], [2]] });
 * const out = withBackend("naive", () => dense.forward(Tensor.from([[3, 4]])));
 * assert.deepEqual(out.toArray(), [[11]]);
 * ```
 */
export function withBackend<T>(backend: Backend | string, fn: () => T): T {
  const previous = getBackend();
  active = resolve(backend, "withBackend");
  try {
    return fn();
  } finally {
    active = previous;
  }
}
