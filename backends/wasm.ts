import type { AdamHyper, Backend } from "../core/backend.ts";
import type { FloatArray } from "../core/tensor.ts";
import { adamLoop, jsBackend } from "./js.ts";
import {
  PLAIN_KERNELS,
  PLAIN_KERNELS_F64,
  RELAXED_KERNELS,
  RELAXED_KERNELS_F64,
  TILE,
  TILE_F64,
} from "./_wasm_kernels.ts";

// The wasm backend copies each operand into a scratch area of the module's memory
// (one memcpy, ~1% of a 1024³ product), packs it into panels there and runs the SIMD
// kernels (one module for float32, one for float64); the result is copied back. Keeping
// operands resident in wasm memory would save the copies but would tie every tensor to a
// memory that detaches when it grows.

interface KernelExports {
  memory: WebAssembly.Memory;
  gemm(
    lp: number,
    rp: number,
    c: number,
    m: number,
    n: number,
    k: number,
    ldc: number,
    load: number,
    scratch: number,
  ): void;
  packRowsL(src: number, ld: number, rows: number, cols: number, dst: number): void;
  packRowsR(src: number, ld: number, rows: number, cols: number, dst: number): void;
  packColsL(src: number, ld: number, rows: number, cols: number, dst: number): void;
  packColsR(src: number, ld: number, rows: number, cols: number, dst: number): void;
  addBias(c: number, bias: number, m: number, n: number): void;
  sumRows(a: number, out: number, m: number, n: number): void;
  relu(x: number, out: number, n: number): void;
  reluBackward(x: number, dvalues: number, out: number, n: number): void;
  dotRows(a: number, bt: number, c: number, m: number, k: number, n: number, load: number): void;
  outerRows(a: number, b: number, c: number, m: number, k: number, n: number, load: number): void;
  adam(
    value: number,
    grad: number,
    momentum: number,
    cache: number,
    n: number,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    negativeRate: number,
    correction1: number,
    correction2: number,
    epsilon: number,
  ): void;
}

/** Which WebAssembly kernels this runtime can run. */
export type WasmSupport = "relaxed-simd" | "simd" | "none";

function decode(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// Element offsets of the scratch areas, 16-element aligned.
const align = (floats: number) => (floats + 15) & ~15;

/** Element type of a kernel module. */
export type WasmFloat = "f32" | "f64";

/** The wasm kernels of one instantiated module, with the copies in and out of its memory. */
export class WasmKernels {
  /** `"relaxed-simd"` (fused multiply-add) or `"simd"` (mul + add). */
  readonly variant: WasmSupport;
  /** The element type the kernels compute in. */
  readonly float: WasmFloat;
  readonly #exports: KernelExports;
  readonly #bytes: number; // per element
  readonly #mr: number;
  readonly #nr: number;
  #heap: FloatArray;
  readonly #views = new Map<number, FloatArray>(); // by offset, see #slice

  /** Compiles `bytes` synchronously (they are a few kilobytes). */
  constructor(bytes: Uint8Array, variant: WasmSupport, float: WasmFloat = "f32") {
    const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    this.#exports = new WebAssembly.Instance(module, {}).exports as unknown as KernelExports;
    this.float = float;
    this.#bytes = float === "f64" ? 8 : 4;
    ({ mr: this.#mr, nr: this.#nr } = float === "f64" ? TILE_F64 : TILE);
    this.#heap = this.#view();
    this.variant = variant;
  }

  /**
   * heap[at, at + length) as a view, reused across calls: a training step copies its
   * results out through the same few views every time, so it allocates none.
   */
  #slice(at: number, length: number): FloatArray {
    const views = this.#views;
    let view = views.get(at);
    if (view === undefined || view.length !== length || view.buffer !== this.#heap.buffer) {
      if (views.size >= 64) views.clear(); // many shapes: keep the cache small
      view = this.#heap.subarray(at, at + length);
      views.set(at, view);
    }
    return view;
  }

  #view(): FloatArray {
    const buffer = this.#exports.memory.buffer;
    return this.float === "f64" ? new Float64Array(buffer) : new Float32Array(buffer);
  }

  #reserve(floats: number): FloatArray {
    const memory = this.#exports.memory;
    const missing = floats * this.#bytes - memory.buffer.byteLength;
    if (missing > 0) memory.grow(Math.ceil(missing / 65536));
    if (this.#heap.buffer !== memory.buffer) this.#heap = this.#view();
    return this.#heap;
  }

  /**
   * c (=|+=) L·R for one of the three products: `kind` 0 = a·b, 1 = aᵀ·b, 2 = a·bᵀ, with
   * m, k, n as in {@linkcode Backend}; then `bias` added to every row of c, if given, before
   * c is copied out (rounded as a separate `addBias` would).
   */
  product(
    kind: 0 | 1 | 2,
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    m: number,
    k: number,
    n: number,
    accumulate: boolean,
    bias?: FloatArray,
  ): void {
    // The output is rows × cols with the reduction `depth`.
    const rows = kind === 1 ? k : m;
    const cols = kind === 2 ? k : n;
    const depth = kind === 0 ? k : kind === 1 ? m : n;
    if (cols <= 4) return this.#thin(kind, a, b, c, rows, cols, depth, accumulate, bias);
    if (kind === 1 && rows <= 4) return this.#thinRows(a, b, c, rows, cols, depth, accumulate);
    const scratch = 0;
    const MR = this.#mr, NR = this.#nr, B = this.#bytes;
    const rawA = align(MR * NR);
    const rawB = rawA + align(a.length);
    const packedL = rawB + align(b.length);
    const packedR = packedL + align(Math.ceil(rows / MR) * MR * depth);
    const out = packedR + align(Math.ceil(cols / NR) * NR * depth);
    const heap = this.#reserve(out + align(rows * cols) + cols);
    heap.set(a, rawA);
    heap.set(b, rawB);
    if (accumulate) heap.set(c, out);
    const x = this.#exports;
    if (kind === 0) {
      x.packColsL(rawA * B, k, m, k, packedL * B);
      x.packRowsR(rawB * B, n, k, n, packedR * B);
    } else if (kind === 1) {
      x.packRowsL(rawA * B, k, m, k, packedL * B);
      x.packRowsR(rawB * B, n, m, n, packedR * B);
    } else {
      x.packColsL(rawA * B, n, m, n, packedL * B);
      x.packColsR(rawB * B, n, k, n, packedR * B);
    }
    x.gemm(
      packedL * B,
      packedR * B,
      out * B,
      rows,
      cols,
      depth,
      cols,
      accumulate ? 1 : 0,
      scratch * B,
    );
    this.#finish(out, c, rows, cols, bias);
  }

  /**
   * The products whose output has at most four columns, unpacked: `a·b` and `a·bᵀ` as dot
   * products of contiguous rows (`dotRows`, with `bt` the right operand as [cols, depth]),
   * `aᵀ·b` as a sum of row outer products (`outerRows`).
   */
  #thin(
    kind: 0 | 1 | 2,
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    rows: number,
    cols: number,
    depth: number,
    accumulate: boolean,
    bias?: FloatArray,
  ): void {
    const B = this.#bytes;
    const btAt = align(a.length);
    const out = btAt + align(cols * depth);
    const heap = this.#reserve(out + align(rows * cols) + cols);
    heap.set(a);
    if (kind === 1) {
      heap.set(b, btAt);
      if (accumulate) heap.set(c, out);
      this.#exports.outerRows(0, btAt * B, out * B, depth, rows, cols, accumulate ? 1 : 0);
      return this.#finish(out, c, rows, cols, bias);
    }
    if (kind === 2) heap.set(b, btAt);
    else {
      for (let j = 0; j < cols; j++) {
        for (let p = 0, to = btAt + j * depth; p < depth; p++) heap[to + p] = b[p * cols + j];
      }
    }
    if (accumulate) heap.set(c, out);
    this.#exports.dotRows(0, btAt * B, out * B, rows, depth, cols, accumulate ? 1 : 0);
    this.#finish(out, c, rows, cols, bias);
  }

  /** c = heap[out, out + rows·cols) (+ bias on every row). */
  #finish(out: number, c: FloatArray, rows: number, cols: number, bias?: FloatArray): void {
    const heap = this.#heap;
    if (bias) {
      const at = out + align(rows * cols);
      heap.set(bias, at);
      this.#exports.addBias(out * this.#bytes, at * this.#bytes, rows, cols);
    }
    c.set(this.#slice(out, rows * cols));
  }

  /**
   * `aᵀ·b` with at most four output rows (`dweights` of a layer with few inputs): the
   * transpose bᵀ·a by `outerRows`, transposed back into c.
   */
  #thinRows(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    rows: number,
    cols: number,
    depth: number,
    accumulate: boolean,
  ): void {
    const B = this.#bytes;
    const aAt = align(b.length);
    const out = aAt + align(a.length);
    const heap = this.#reserve(out + rows * cols);
    heap.set(b);
    heap.set(a, aAt);
    this.#exports.outerRows(0, aAt * B, out * B, depth, cols, rows, 0);
    for (let r = 0; r < rows; r++) {
      for (let j = 0, at = r * cols; j < cols; j++) {
        c[at + j] = accumulate ? c[at + j] + heap[out + j * rows + r] : heap[out + j * rows + r];
      }
    }
  }

  /** c[m, n] += bias[n] on every row. */
  addBias(c: FloatArray, bias: FloatArray, m: number, n: number): void {
    const at = align(this.#mr * this.#nr);
    const biasAt = at + align(m * n);
    const heap = this.#reserve(biasAt + n);
    heap.set(c, at);
    heap.set(bias, biasAt);
    this.#exports.addBias(at * this.#bytes, biasAt * this.#bytes, m, n);
    c.set(this.#slice(at, m * n));
  }

  /** out[n] (=|+=) Σ_rows a[m, n], rows added in ascending order. */
  sumColumns(
    a: FloatArray,
    out: FloatArray,
    m: number,
    n: number,
    accumulate: boolean,
  ): void {
    const at = align(this.#mr * this.#nr);
    const outAt = at + align(m * n);
    const heap = this.#reserve(outAt + n);
    heap.set(a, at);
    if (accumulate) heap.set(out, outAt);
    else heap.fill(0, outAt, outAt + n);
    this.#exports.sumRows(at * this.#bytes, outAt * this.#bytes, m, n);
    out.set(this.#slice(outAt, n));
  }

  /** out = max(x, 0); with `dvalues`, out = x > 0 ? dvalues : 0. */
  relu(x: FloatArray, out: FloatArray, dvalues?: FloatArray): void {
    const n = x.length;
    const B = this.#bytes;
    const xAt = align(this.#mr * this.#nr);
    const dvAt = xAt + align(n);
    const outAt = dvAt + (dvalues ? align(n) : 0);
    const heap = this.#reserve(outAt + n);
    heap.set(x, xAt);
    if (dvalues) {
      heap.set(dvalues, dvAt);
      this.#exports.reluBackward(xAt * B, dvAt * B, outAt * B, n);
    } else this.#exports.relu(xAt * B, outAt * B, n);
    out.set(this.#slice(outAt, n));
  }

  /** Adam's update of `value`, `momentum`, `cache` in place; see `Backend.adam`. */
  adam(
    value: FloatArray,
    grad: FloatArray,
    momentum: FloatArray,
    cache: FloatArray,
    hyper: AdamHyper,
  ): void {
    const n = value.length, B = this.#bytes;
    const at = align(this.#mr * this.#nr);
    const [gradAt, momentumAt, cacheAt] = [at + align(n), at + 2 * align(n), at + 3 * align(n)];
    const heap = this.#reserve(cacheAt + n);
    heap.set(value, at);
    heap.set(grad, gradAt);
    heap.set(momentum, momentumAt);
    heap.set(cache, cacheAt);
    const { beta1, beta2, epsilon } = hyper;
    this.#exports.adam(
      at * B,
      gradAt * B,
      momentumAt * B,
      cacheAt * B,
      n,
      beta1,
      1 - beta1,
      beta2,
      1 - beta2,
      -hyper.learningRate,
      hyper.correction1,
      hyper.correction2,
      epsilon,
    );
    value.set(this.#slice(at, n));
    momentum.set(this.#slice(momentumAt, n));
    cache.set(this.#slice(cacheAt, n));
  }
}

let kernels: WasmKernels | null | undefined;
let kernels64: WasmKernels | null | undefined;

/** Instantiates one build of the kernels, or returns null where the runtime rejects it. */
export function instantiateKernels(
  variant: "relaxed-simd" | "simd",
  float: WasmFloat = "f32",
): WasmKernels | null {
  if (typeof WebAssembly !== "object") return null;
  const relaxed = variant === "relaxed-simd";
  const bytes = decode(
    float === "f64"
      ? (relaxed ? RELAXED_KERNELS_F64 : PLAIN_KERNELS_F64)
      : (relaxed ? RELAXED_KERNELS : PLAIN_KERNELS),
  );
  return WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)
    ? new WasmKernels(bytes, variant, float)
    : null;
}

/**
 * Loads the float32 kernels on first use: the relaxed-SIMD build where
 * `WebAssembly.validate` accepts it, else the plain SIMD build; null where neither validates.
 */
export function loadWasmKernels(): WasmKernels | null {
  kernels ??= instantiateKernels("relaxed-simd") ?? instantiateKernels("simd");
  return kernels;
}

/** The float64 kernels, loaded on first use like {@linkcode loadWasmKernels}. */
export function loadWasmKernels64(): WasmKernels | null {
  kernels64 ??= instantiateKernels("relaxed-simd", "f64") ?? instantiateKernels("simd", "f64");
  return kernels64;
}

/**
 * What this runtime supports: `"relaxed-simd"` (fused multiply-add kernels), `"simd"`
 * (mul + add kernels, e.g. Node 20 without flags) or `"none"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wasmSupport } from "@chainrule/nn";
 *
 * assert.ok(["relaxed-simd", "simd", "none"].includes(wasmSupport()));
 * ```
 */
export function wasmSupport(): WasmSupport {
  return loadWasmKernels()?.variant ?? "none";
}

// Below this many multiply-adds (m·k·n) a product stays in JS: copying, packing and the
// call cost more than SIMD saves. Measured: JS wins at 4³–6³, wasm from about 8³ on, and
// wasm wins even on thin training shapes such as 300×64×3 (docs/speed.md).
const CROSSOVER = 512;
// The same for the bias add, the column sums and ReLU (elements).
const ELEMENTWISE = 2048;

/** The kernels for three arrays of one element type (float32 or float64), else null. */
function kernelsFor(x: FloatArray, y: FloatArray, z: FloatArray): WasmKernels | null {
  if (x instanceof Float32Array) {
    return y instanceof Float32Array && z instanceof Float32Array ? loadWasmKernels() : null;
  }
  return y instanceof Float64Array && z instanceof Float64Array ? loadWasmKernels64() : null;
}

// The element-wise passes (bias add, column sums, ReLU) of large enough arrays run in wasm
// for both element types: in W1's float64 training step this beat the JS loops by 0.7 s of
// 2.2 s (the JS loops ran 3–5× slower there than in isolation).
function elementwiseKernels(
  length: number,
  x: FloatArray,
  y: FloatArray,
  z: FloatArray,
): WasmKernels | null {
  return length >= ELEMENTWISE ? kernelsFor(x, y, z) : null;
}

/**
 * The default backend where WebAssembly SIMD is available: float32 products run in f32x4
 * kernels (6×8 register tiles, packed panels, cache-blocked), float64 products in f64x2
 * kernels (6×4 tiles), with `relaxed_madd` where the runtime supports relaxed SIMD; thin
 * products (at most four output columns) skip the packing. It decides per call: mixed
 * element types, and products too small to gain from SIMD, go to {@linkcode jsBackend}; the
 * bias add, the column sums and ReLU run in SIMD kernels too.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { naiveBackend, wasmBackend } from "@chainrule/nn/plugin";
 *
 * const a = Float32Array.from({ length: 64 * 48 }, (_, i) => (i % 7) - 3);
 * const b = Float32Array.from({ length: 48 * 40 }, (_, i) => (i % 5) - 2);
 * const fast = new Float32Array(64 * 40);
 * const reference = new Float32Array(64 * 40);
 * wasmBackend.matmul(a, b, fast, 64, 48, 40);
 * naiveBackend.matmul(a, b, reference, 64, 48, 40);
 * assert.deepEqual(fast, reference); // small integers: exact in float32
 * ```
 */
export const wasmBackend: Backend = {
  name: "wasm",
  matmul(a, b, c, m, k, n, accumulate = false) {
    const kernels = m * k * n >= CROSSOVER ? kernelsFor(a, b, c) : null;
    if (kernels) kernels.product(0, a, b, c, m, k, n, accumulate);
    else jsBackend.matmul(a, b, c, m, k, n, accumulate);
  },
  matmulBias(a, b, bias, c, m, k, n) {
    const kernels = m * k * n >= CROSSOVER && bias.constructor === c.constructor
      ? kernelsFor(a, b, c)
      : null;
    if (kernels) kernels.product(0, a, b, c, m, k, n, false, bias);
    else {
      wasmBackend.matmul(a, b, c, m, k, n);
      wasmBackend.addBias(c, bias, m, n);
    }
  },
  matmulTransA(a, b, c, m, k, n, accumulate = false) {
    const kernels = m * k * n >= CROSSOVER ? kernelsFor(a, b, c) : null;
    if (kernels) kernels.product(1, a, b, c, m, k, n, accumulate);
    else jsBackend.matmulTransA(a, b, c, m, k, n, accumulate);
  },
  matmulTransB(a, b, c, m, k, n, accumulate = false) {
    const kernels = m * k * n >= CROSSOVER ? kernelsFor(a, b, c) : null;
    if (kernels) kernels.product(2, a, b, c, m, k, n, accumulate);
    else jsBackend.matmulTransB(a, b, c, m, k, n, accumulate);
  },
  addBias(c, bias, m, n) {
    const kernels = elementwiseKernels(m * n, c, bias, bias);
    if (kernels) kernels.addBias(c, bias, m, n);
    else jsBackend.addBias(c, bias, m, n);
  },
  sumColumns(a, out, m, n, accumulate = false) {
    const kernels = elementwiseKernels(m * n, a, out, out);
    if (kernels) kernels.sumColumns(a, out, m, n, accumulate);
    else jsBackend.sumColumns(a, out, m, n, accumulate);
  },
  relu(x, out) {
    const kernels = elementwiseKernels(x.length, x, out, out);
    if (kernels) kernels.relu(x, out);
    else jsBackend.relu!(x, out);
  },
  reluBackward(x, dvalues, out) {
    const kernels = elementwiseKernels(x.length, x, dvalues, out);
    if (kernels) kernels.relu(x, out, dvalues);
    else jsBackend.reluBackward!(x, dvalues, out);
  },
  adam(value, grad, momentum, cache, hyper) {
    const kernels = elementwiseKernels(value.length, value, grad, momentum);
    if (kernels && cache.constructor === value.constructor) {
      kernels.adam(value, grad, momentum, cache, hyper);
    } else adamLoop(value, grad, momentum, cache, hyper);
  },
};
