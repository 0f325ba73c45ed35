import type { Backend } from "../core/backend.ts";
import type { FloatArray } from "../core/tensor.ts";
import { jsBackend } from "./js.ts";
import { PLAIN_KERNELS, RELAXED_KERNELS, TILE } from "./_wasm_kernels.ts";

// The wasm backend copies each float32 operand into a scratch area of the module's memory
// (one memcpy, ~1% of a 1024³ product), packs it into panels there and runs the f32x4
// kernels; the result is copied back. Keeping operands resident in wasm memory would save
// the copies but would tie every tensor to a memory that detaches when it grows.

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
}

/** Which WebAssembly kernels this runtime can run. */
export type WasmSupport = "relaxed-simd" | "simd" | "none";

function decode(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// Float offsets of the scratch areas, 16-float aligned.
const align = (floats: number) => (floats + 15) & ~15;
const { mr: MR, nr: NR } = TILE;

/** The wasm kernels of one instantiated module, with the copies in and out of its memory. */
export class WasmKernels {
  /** `"relaxed-simd"` (fused multiply-add) or `"simd"` (mul + add). */
  readonly variant: WasmSupport;
  readonly #exports: KernelExports;
  #heap: Float32Array;

  /** Compiles `bytes` synchronously (they are a few kilobytes). */
  constructor(bytes: Uint8Array, variant: WasmSupport) {
    const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    this.#exports = new WebAssembly.Instance(module, {}).exports as unknown as KernelExports;
    this.#heap = new Float32Array(this.#exports.memory.buffer);
    this.variant = variant;
  }

  #reserve(floats: number): Float32Array {
    const memory = this.#exports.memory;
    const missing = floats * 4 - memory.buffer.byteLength;
    if (missing > 0) memory.grow(Math.ceil(missing / 65536));
    if (this.#heap.buffer !== memory.buffer) this.#heap = new Float32Array(memory.buffer);
    return this.#heap;
  }

  /**
   * c (=|+=) L·R for one of the three products: `kind` 0 = a·b, 1 = aᵀ·b, 2 = a·bᵀ, with
   * m, k, n as in {@linkcode Backend}.
   */
  product(
    kind: 0 | 1 | 2,
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    m: number,
    k: number,
    n: number,
    accumulate: boolean,
  ): void {
    // The output is rows × cols with the reduction `depth`.
    const rows = kind === 1 ? k : m;
    const cols = kind === 2 ? k : n;
    const depth = kind === 0 ? k : kind === 1 ? m : n;
    const scratch = 0;
    const rawA = align(MR * NR);
    const rawB = rawA + align(a.length);
    const packedL = rawB + align(b.length);
    const packedR = packedL + align(Math.ceil(rows / MR) * MR * depth);
    const out = packedR + align(Math.ceil(cols / NR) * NR * depth);
    const heap = this.#reserve(out + rows * cols);
    heap.set(a, rawA);
    heap.set(b, rawB);
    if (accumulate) heap.set(c, out);
    const x = this.#exports;
    if (kind === 0) {
      x.packColsL(rawA * 4, k, m, k, packedL * 4);
      x.packRowsR(rawB * 4, n, k, n, packedR * 4);
    } else if (kind === 1) {
      x.packRowsL(rawA * 4, k, m, k, packedL * 4);
      x.packRowsR(rawB * 4, n, m, n, packedR * 4);
    } else {
      x.packColsL(rawA * 4, n, m, n, packedL * 4);
      x.packColsR(rawB * 4, n, k, n, packedR * 4);
    }
    x.gemm(
      packedL * 4,
      packedR * 4,
      out * 4,
      rows,
      cols,
      depth,
      cols,
      accumulate ? 1 : 0,
      scratch * 4,
    );
    c.set(heap.subarray(out, out + rows * cols));
  }

  /** c[m, n] += bias[n] on every row. */
  addBias(c: Float32Array, bias: Float32Array, m: number, n: number): void {
    const at = align(MR * NR);
    const biasAt = at + align(m * n);
    const heap = this.#reserve(biasAt + n);
    heap.set(c, at);
    heap.set(bias, biasAt);
    this.#exports.addBias(at * 4, biasAt * 4, m, n);
    c.set(heap.subarray(at, at + m * n));
  }

  /** out[n] (=|+=) Σ_rows a[m, n], rows added in ascending order. */
  sumColumns(
    a: Float32Array,
    out: Float32Array,
    m: number,
    n: number,
    accumulate: boolean,
  ): void {
    const at = align(MR * NR);
    const outAt = at + align(m * n);
    const heap = this.#reserve(outAt + n);
    heap.set(a, at);
    if (accumulate) heap.set(out, outAt);
    else heap.fill(0, outAt, outAt + n);
    this.#exports.sumRows(at * 4, outAt * 4, m, n);
    out.set(heap.subarray(outAt, outAt + n));
  }

  /** out = max(x, 0); with `dvalues`, out = x > 0 ? dvalues : 0. */
  relu(x: Float32Array, out: Float32Array, dvalues?: Float32Array): void {
    const n = x.length;
    const xAt = align(MR * NR);
    const dvAt = xAt + align(n);
    const outAt = dvAt + (dvalues ? align(n) : 0);
    const heap = this.#reserve(outAt + n);
    heap.set(x, xAt);
    if (dvalues) {
      heap.set(dvalues, dvAt);
      this.#exports.reluBackward(xAt * 4, dvAt * 4, outAt * 4, n);
    } else this.#exports.relu(xAt * 4, outAt * 4, n);
    out.set(heap.subarray(outAt, outAt + n));
  }
}

let kernels: WasmKernels | null | undefined;

/** Instantiates one build of the kernels, or returns null where the runtime rejects it. */
export function instantiateKernels(variant: "relaxed-simd" | "simd"): WasmKernels | null {
  if (typeof WebAssembly !== "object") return null;
  const bytes = decode(variant === "relaxed-simd" ? RELAXED_KERNELS : PLAIN_KERNELS);
  return WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)
    ? new WasmKernels(bytes, variant)
    : null;
}

/**
 * Loads the kernels on first use: the relaxed-SIMD build where `WebAssembly.validate`
 * accepts it, else the plain SIMD build; null where neither validates.
 */
export function loadWasmKernels(): WasmKernels | null {
  kernels ??= instantiateKernels("relaxed-simd") ?? instantiateKernels("simd");
  return kernels;
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
// wasm wins even on thin training shapes such as 300×64×3 (docs/issue6.md).
const CROSSOVER = 512;
// The same for the bias add and the column sums (m·n elements).
const ELEMENTWISE = 2048;

function useWasm(
  x: FloatArray,
  y: FloatArray,
  m: number,
  k: number,
  n: number,
): x is Float32Array {
  return x instanceof Float32Array && y instanceof Float32Array && m * k * n >= CROSSOVER &&
    loadWasmKernels() !== null;
}

/**
 * The default backend where WebAssembly SIMD is available: float32 products run in f32x4
 * kernels (6×8 register tiles, packed panels, cache-blocked), with `f32x4.relaxed_madd`
 * where the runtime supports relaxed SIMD. It decides per call: float64 operands, and
 * products too small to gain from SIMD, go to {@linkcode jsBackend}; the bias add, the
 * column sums and ReLU run in f32x4 kernels too.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { naiveBackend, wasmBackend } from "@chainrule/nn";
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
    if (useWasm(a, b, m, k, n) && c instanceof Float32Array) {
      loadWasmKernels()!.product(0, a, b as Float32Array, c, m, k, n, accumulate);
    } else jsBackend.matmul(a, b, c, m, k, n, accumulate);
  },
  matmulTransA(a, b, c, m, k, n, accumulate = false) {
    if (useWasm(a, b, m, k, n) && c instanceof Float32Array) {
      loadWasmKernels()!.product(1, a, b as Float32Array, c, m, k, n, accumulate);
    } else jsBackend.matmulTransA(a, b, c, m, k, n, accumulate);
  },
  matmulTransB(a, b, c, m, k, n, accumulate = false) {
    if (useWasm(a, b, m, k, n) && c instanceof Float32Array) {
      loadWasmKernels()!.product(2, a, b as Float32Array, c, m, k, n, accumulate);
    } else jsBackend.matmulTransB(a, b, c, m, k, n, accumulate);
  },
  addBias(c, bias, m, n) {
    if (c instanceof Float32Array && bias instanceof Float32Array && m * n >= ELEMENTWISE) {
      const kernels = loadWasmKernels();
      if (kernels) return kernels.addBias(c, bias, m, n);
    }
    jsBackend.addBias(c, bias, m, n);
  },
  sumColumns(a, out, m, n, accumulate = false) {
    if (a instanceof Float32Array && out instanceof Float32Array && m * n >= ELEMENTWISE) {
      const kernels = loadWasmKernels();
      if (kernels) return kernels.sumColumns(a, out, m, n, accumulate);
    }
    jsBackend.sumColumns(a, out, m, n, accumulate);
  },
  relu(x, out) {
    const kernels = x.length >= ELEMENTWISE ? loadWasmKernels() : null;
    if (kernels && x instanceof Float32Array && out instanceof Float32Array) {
      kernels.relu(x, out);
    } else jsBackend.relu!(x, out);
  },
  reluBackward(x, dvalues, out) {
    const kernels = x.length >= ELEMENTWISE ? loadWasmKernels() : null;
    if (
      kernels && x instanceof Float32Array && dvalues instanceof Float32Array &&
      out instanceof Float32Array
    ) {
      kernels.relu(x, out, dvalues);
    } else jsBackend.reluBackward!(x, dvalues, out);
  },
};
