import type { Backend } from "../core/backend.ts";
import type { FloatArray } from "../core/tensor.ts";
import { BlasConvolution, type Gemm, NO_TRANS, ROW_MAJOR, TRANS } from "./_blas_conv.ts";
import type { WinogradTransforms } from "./_conv_tasks.ts";
import { jsBackend } from "./js.ts";
import { onThreadsChange, requestedThreads } from "./threads.ts";
import { wasmBackend } from "./wasm.ts";

// Below this many multiply-adds the FFI call costs more than it saves.
const CROSSOVER = 4096;

// Winograd's chunks on OpenBLAS (W4's conv2, one thread, forward + backward, on Haswell's
// kernels: 2¹⁸ elements 16.9 ms, 2¹⁹ 16.5, 2²⁰ 18.0, 2²² 21.1; on the AVX-512 ones 2¹⁸ to 2²⁰
// within noise of each other, 16.8–18.6; below 2¹⁷ a chunk's tiles are too small to be
// placed in the wasm memory, and the transforms fall back to JavaScript loops).
const BLAS_WINOGRAD_CHUNK_ELEMENTS = 1 << 19;

const GEMM_PARAMETERS = [
  "i32", // order
  "i32", // transA
  "i32", // transB
  "i32", // M
  "i32", // N
  "i32", // K
  "f32", // alpha (f64 for dgemm)
  "buffer", // A
  "i32", // lda
  "buffer", // B
  "i32", // ldb
  "f32", // beta (f64 for dgemm)
  "buffer", // C
  "i32", // ldc
] as const;

const SYMBOLS = {
  cblas_sgemm: { parameters: GEMM_PARAMETERS, result: "void" },
  cblas_dgemm: {
    parameters: GEMM_PARAMETERS.map((p) => (p === "f32" ? "f64" : p)) as unknown as [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f64",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f64",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  // OpenBLAS's own thread count, set from setThreads (absent from other BLAS libraries).
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  // What OpenBLAS says of itself (C strings), for blasInfo.
  openblas_get_corename: { parameters: [], result: "pointer", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
} as const;

/** Where OpenBLAS usually lives: the loader's search path first, then common locations. */
const CANDIDATES = [
  "libopenblas.so.0",
  "libopenblas.so",
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
  "/usr/lib64/libopenblas.so.0",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
  "/usr/local/opt/openblas/lib/libopenblas.dylib",
  "libopenblas.dylib",
  "libopenblas.dll",
];

/** Options of {@linkcode blasBackend}. */
export interface BlasOptions {
  /** Path of the OpenBLAS shared library; else `$CHAINRULE_BLAS`, else the usual places. */
  path?: string;
}

function granted(name: "ffi" | "env"): boolean {
  try {
    return Deno.permissions.querySync({ name }).state === "granted";
  } catch {
    return false;
  }
}

function open(path: string) {
  try {
    return Deno.dlopen(path, SYMBOLS);
  } catch {
    return null;
  }
}

let cached: Backend | null | undefined;
// Each backend's library, and where it was found.
const libraries = new WeakMap<
  Backend,
  { path: string; symbols: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] }
>();

/** What {@linkcode blasInfo} reports of the library behind the `blas` backend. */
export interface BlasInfo {
  /** Where the library was found (a name the loader resolved, or a path). */
  path: string;
  /**
   * The kernels OpenBLAS chose for this processor, e.g. `"Cooperlake"` or `"Haswell"` (the
   * environment variable `OPENBLAS_CORETYPE` overrides its choice); undefined for a BLAS
   * library that does not say.
   */
  core?: string;
  /** OpenBLAS's build configuration, e.g. `"OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY …"`. */
  config?: string;
  /** The threads OpenBLAS runs its products on now (set from `setThreads`). */
  threads?: number;
}

/**
 * Which BLAS library a `blas` backend loaded and which kernels it runs: where the library
 * was found, and for OpenBLAS its core, build configuration and thread count. A machine
 * that sets `OPENBLAS_CORETYPE` to an older processor (some do, for older OpenBLAS builds)
 * runs older kernels: this says so.
 *
 * @param backend a backend {@linkcode blasBackend} returned (default: the one it returns
 * without a path, if it has been called).
 * @returns the library's description, or null for no such backend.
 *
 * @example
 * ```ts ignore
 * import { blasBackend, blasInfo } from "@chainrule/nn/blas";
 *
 * const blas = blasBackend();
 * if (blas) console.log(blasInfo(blas)); // { path: "libopenblas.so.0", core: "Cooperlake", … }
 * ```
 */
export function blasInfo(backend: Backend | null | undefined = cached): BlasInfo | null {
  const library = backend ? libraries.get(backend) : undefined;
  if (!library) return null;
  const { path, symbols } = library;
  const text = (read?: () => Deno.PointerValue) => {
    const pointer = read?.();
    return pointer ? Deno.UnsafePointerView.getCString(pointer).trim() : undefined;
  };
  return {
    path,
    core: text(symbols.openblas_get_corename ?? undefined),
    config: text(symbols.openblas_get_config ?? undefined),
    threads: symbols.openblas_get_num_threads?.() ?? undefined,
  };
}

/**
 * The `blas` backend: float32 and float64 products through the system OpenBLAS
 * (`cblas_sgemm` / `cblas_dgemm`) by Deno FFI, with no copies (the typed arrays are passed
 * as they are). Needs `--allow-ffi` and the library (`apt-get install libopenblas0`).
 * Convolutions run a sample at a time on OpenBLAS's products (backends/_blas_conv.ts).
 * Products too small to pay for the FFI call, the bias add, the column sums, ReLU and Adam's
 * update go to the `wasm` backend (float32) or the `js` backend (float64); for float32 the
 * `wasm` backend also places the layers' training buffers in its shared memory and runs max
 * pooling, Winograd's transforms, the LSTM's recurrence, attention's heads and GELU on its
 * kernels. OpenBLAS runs on
 * as many threads as `setThreads` asks (by default the available cores, capped at 8), via
 * `openblas_set_num_threads`.
 *
 * @returns the backend, or null when the library or the FFI permission is missing (no
 * permission prompt is raised).
 *
 * @example
 * ```ts ignore
 * import { setBackend } from "@chainrule/nn";
 * import { blasBackend } from "@chainrule/nn/blas";
 *
 * const blas = blasBackend();
 * if (blas) setBackend(blas); // run with --allow-ffi
 * ```
 */
export function blasBackend(options: BlasOptions = {}): Backend | null {
  if (cached !== undefined && options.path === undefined) return cached;
  if (!granted("ffi")) return null;
  const fromEnv = granted("env") ? Deno.env.get("CHAINRULE_BLAS") : undefined;
  const paths = options.path ? [options.path] : fromEnv ? [fromEnv] : CANDIDATES;
  let library = null, found = "";
  for (const path of paths) {
    library = open(path);
    if (library) {
      found = path;
      break;
    }
  }
  const setNumThreads = library?.symbols.openblas_set_num_threads;
  if (setNumThreads) {
    setNumThreads(requestedThreads());
    onThreadsChange((threads) => setNumThreads(threads));
  }
  const symbols = library?.symbols as unknown as Record<string, Gemm> | undefined;
  const backend = symbols ? makeBackend(symbols, setNumThreads ?? undefined) : null;
  if (backend && library) libraries.set(backend, { path: found, symbols: library.symbols });
  if (options.path === undefined) cached = backend;
  return backend;
}

// `setNumThreads`: OpenBLAS's thread count (absent from other BLAS libraries, whose threads
// the convolutions then take as one).
function makeBackend(
  symbols: Record<string, Gemm>,
  setNumThreads?: (threads: number) => void,
): Backend {
  const sgemm = symbols.cblas_sgemm;
  const dgemm = symbols.cblas_dgemm;
  // The gemm for these operands, or null when they are mixed or the product is tiny.
  const gemmFor = (a: FloatArray, b: FloatArray, c: FloatArray, mkn: number): Gemm | null => {
    if (mkn < CROSSOVER) return null;
    if (a instanceof Float32Array && b instanceof Float32Array && c instanceof Float32Array) {
      return sgemm;
    }
    if (a instanceof Float64Array && b instanceof Float64Array && c instanceof Float64Array) {
      return dgemm;
    }
    return null;
  };
  const fallback = (c: FloatArray) => (c instanceof Float32Array ? wasmBackend : jsBackend);
  const transforms = wasmBackend as Backend & WinogradTransforms;
  // OpenBLAS's threads (one for a BLAS library whose count cannot be set).
  const blasThreads = () => (setNumThreads ? requestedThreads() : 1);
  const convolution = new BlasConvolution(sgemm, dgemm, {
    count: blasThreads,
    serial(run) {
      if (!setNumThreads) return run();
      setNumThreads(1);
      try {
        run();
      } finally {
        setNumThreads(requestedThreads());
      }
    },
  });
  return {
    name: "blas",
    matmul(a, b, c, m, k, n, accumulate = false) {
      const gemm = gemmFor(a, b, c, m * k * n);
      if (!gemm) return fallback(c).matmul(a, b, c, m, k, n, accumulate);
      gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, 1, a, k, b, n, accumulate ? 1 : 0, c, n);
    },
    matmulTransA(a, b, c, m, k, n, accumulate = false) {
      const gemm = gemmFor(a, b, c, m * k * n);
      if (!gemm) return fallback(c).matmulTransA(a, b, c, m, k, n, accumulate);
      gemm(ROW_MAJOR, TRANS, NO_TRANS, k, n, m, 1, a, k, b, n, accumulate ? 1 : 0, c, n);
    },
    matmulTransB(a, b, c, m, k, n, accumulate = false) {
      const gemm = gemmFor(a, b, c, m * k * n);
      if (!gemm) return fallback(c).matmulTransB(a, b, c, m, k, n, accumulate);
      gemm(ROW_MAJOR, NO_TRANS, TRANS, m, k, n, 1, a, n, b, n, accumulate ? 1 : 0, c, k);
    },
    addBias(c, bias, m, n) {
      fallback(c).addBias(c, bias, m, n);
    },
    sumColumns(a, out, m, n, accumulate = false) {
      fallback(out).sumColumns(a, out, m, n, accumulate);
    },
    // Without these, ReLU would fall back to its own JS loop (~0.1 ms of a W2 step).
    relu(x, out) {
      fallback(out).relu!(x, out);
    },
    reluBackward(x, dvalues, out) {
      fallback(out).reluBackward!(x, dvalues, out);
    },
    adam(value, grad, momentum, cache, hyper) {
      fallback(value).adam!(value, grad, momentum, cache, hyper);
    },
    conv2dForward(x, w, bias, y, geometry) {
      return convolution.forward(x, w, bias, y, geometry);
    },
    conv2dBackward(x, w, dvalues, dw, dbias, dx, geometry) {
      return convolution.backward(x, w, dvalues, dw, dbias, dx, geometry);
    },
    // The wasm backend's own kernels, float32 only (float64 stays with the layers' loops and
    // ordinary arrays): training buffers resident in its shared memory, which OpenBLAS reads
    // and writes in place (FFI takes views of a SharedArrayBuffer), so that ReLU, max
    // pooling, Adam and Winograd's transforms need not copy them in and out.
    allocate(dtype, length) {
      return dtype === "float32" ? wasmBackend.allocate!(dtype, length) : undefined;
    },
    batchNorm(pass, batch, features, positions, arrays) {
      return (arrays.x ?? arrays.dvalues) instanceof Float32Array &&
        wasmBackend.batchNorm!(pass, batch, features, positions, arrays);
    },
    maxPool2dForward(x, y, argmax, geometry) {
      return x instanceof Float32Array && wasmBackend.maxPool2dForward!(x, y, argmax, geometry);
    },
    maxPool2dBackward(dvalues, dx, argmax, geometry) {
      return dx instanceof Float32Array &&
        wasmBackend.maxPool2dBackward!(dvalues, dx, argmax, geometry);
    },
    // Whole passes the wasm backend runs (it declines what it does not: float64, inference,
    // small inputs), as the methods themselves.
    lstmForward: wasmBackend.lstmForward,
    lstmBackward: wasmBackend.lstmBackward,
    gruForward: wasmBackend.gruForward,
    gruBackward: wasmBackend.gruBackward,
    sumRowsByGroup: wasmBackend.sumRowsByGroup,
    cubicMap: wasmBackend.cubicMap,
    layerNormForward: wasmBackend.layerNormForward,
    layerNormBackward: wasmBackend.layerNormBackward,
    attentionForward: wasmBackend.attentionForward,
    attentionBackward: wasmBackend.attentionBackward,
    winogradInputs(x, first, count, channels, height, width, top, left, tilesH, tilesW, v) {
      return x instanceof Float32Array &&
        transforms.winogradInputs(
          x,
          first,
          count,
          channels,
          height,
          width,
          top,
          left,
          tilesH,
          tilesW,
          v,
        );
    },
    winogradOutputs(m, first, count, out, outH, outW, tilesH, tilesW, y, bias) {
      return m instanceof Float32Array &&
        transforms.winogradOutputs(m, first, count, out, outH, outW, tilesH, tilesW, y, bias);
    },
    // On one OpenBLAS thread the whole convolution is declined: the layer's chunks, the wasm
    // transforms and OpenBLAS's 16 products each, in chunks that stay in the cache, beat the
    // wasm kernels' products (W4's conv2, one thread: forward 6.5 → 4.5 ms, input gradient
    // and weights' 14.7 → 12.1). On two, OpenBLAS splits products that small poorly (forward
    // 5.1 → 7.8 ms): the wasm pool's whole convolution.
    winogradConvolution(x, u, y, shape, bias) {
      return x instanceof Float32Array && blasThreads() > 1 &&
        transforms.winogradConvolution(x, u, y, shape, bias);
    },
    winogradChunkElements: BLAS_WINOGRAD_CHUNK_ELEMENTS,
    // Likewise: the layer's chunks, dU[ξ] += dM[ξ]·V[ξ]ᵀ on OpenBLAS, on one thread.
    winogradWeights(x, dvalues, du, dbias, shape) {
      return x instanceof Float32Array && blasThreads() > 1 &&
        transforms.winogradWeights(x, dvalues, du, dbias, shape);
    },
    winogradGradOutputs(dvalues, first, count, out, outH, outW, tilesH, tilesW, dm) {
      return dvalues instanceof Float32Array &&
        transforms.winogradGradOutputs!(dvalues, first, count, out, outH, outW, tilesH, tilesW, dm);
    },
  } as Backend & WinogradTransforms;
}
