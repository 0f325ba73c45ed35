// What the pool's JavaScript tasks (backends/_tasks.ts) run against, on any thread.
import type { FloatArray } from "../core/tensor.ts";

/** The kernel exports the JavaScript tasks call (byte offsets, as in backends/wasm.ts). */
export interface TaskKernelExports {
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
  /** c[i, j] += bias[j] for i < m, j < n (with m = 1: c[0, n) += bias[0, n)). */
  addBias(c: number, bias: number, m: number, n: number): void;
  /** C[m, n] = (load ? C : 0) + A[m, k]·Btᵀ for n ≤ 4 (bt [n, k]). */
  dotRows(a: number, bt: number, c: number, m: number, k: number, n: number, load: number): void;
  /** memory[dst, dst + n) = memory[src, src + n) (bytes; the ranges may overlap). */
  copyBytes(dst: number, src: number, n: number): void;
  /** memory[dst, dst + n) = 0 (bytes). */
  zeroBytes(dst: number, n: number): void;
  /** Winograd's input transform of one plane (float32 build only; see tools/wasm/kernels.ts). */
  winogradInput?(
    origin: number,
    width: number,
    pad: number,
    rLo: number,
    rHi: number,
    qLo: number,
    qHi: number,
    padW: number,
    v: number,
    stride: number,
    tilesH: number,
    tilesW: number,
  ): void;
  /** Winograd's output transform of one plane (float32 build only; see tools/wasm/kernels.ts). */
  winogradOutput?(
    m: number,
    stride: number,
    bias: number,
    stage: number,
    stageW: number,
    tilesH: number,
    tilesW: number,
    y: number,
    outH: number,
    outW: number,
  ): void;
  /** The output transform's gradient of one plane (float32 build only; tools/wasm/kernels.ts). */
  winogradGradOutput?(
    dy: number,
    outH: number,
    outW: number,
    stage: number,
    stageW: number,
    tilesH: number,
    tilesW: number,
    dm: number,
    stride: number,
  ): void;
  /**
   * MaxPool2D's 2×2, stride-2, unpadded windows of planes [first, end) (float32 build only;
   * tools/wasm/kernels.ts); the count of windows holding a NaN goes to the i32 at `nan`.
   */
  maxPool2x2?(
    x: number,
    y: number,
    argmax: number,
    first: number,
    end: number,
    height: number,
    width: number,
    outH: number,
    outW: number,
    nan: number,
  ): void;
  /** maxPool2x2's gradient over planes [first, end), dx written whole (float32 build only). */
  maxPool2x2Backward?(
    dvalues: number,
    dx: number,
    argmax: number,
    first: number,
    end: number,
    height: number,
    width: number,
    outH: number,
    outW: number,
  ): void;
  /** Adam's update of n elements in place (see `Backend.adam`; the eight scalars as there). */
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

/** What a task runs against: the memory, and the kernels by module (0 float32, 1 float64). */
export interface TaskContext {
  memory: WebAssembly.Memory;
  exports: readonly TaskKernelExports[];
}

/** A task as the pool calls it: the context, the thread's index, then its arguments. */
export type JsTask = (context: TaskContext, thread: number, ...args: number[]) => void;

/** What a job of tasks needs of one instance of the kernels (backends/wasm.ts). */
export interface TaskHost {
  /** 0: float32, 1: float64. */
  readonly module: 0 | 1;
  /** The register tile [mr, nr]. */
  readonly tile: readonly [number, number];
  /** The memory the kernels use. */
  readonly memory: WebAssembly.Memory;
  /** The kernels' exports. */
  readonly exports: TaskKernelExports & {
    sumRows(a: number, out: number, m: number, n: number): void;
  };
  /** Grows the memory to hold `floats` elements; the whole memory as elements. */
  reserve(floats: number): FloatArray;
  /** Where this call's scratch may start (elements): above the memory's resident blocks. */
  readonly origin: number;
  /** `array`'s offset in the memory, in its own elements, when it lies there resident, else −1. */
  residentAt(array: FloatArray | Int32Array): number;
  /**
   * Runs one job of `task` over `groups` ([first, count] each) on the pool, or returns
   * false when there is no pool (then the caller runs the tasks itself).
   */
  runJob(task: JsTaskName, descriptor: number, groups: [number, number][]): boolean;
  /** Threads that will run tasks (1 without a pool). */
  readonly threads: number;
}

/** The tasks the pool runs in JavaScript, by index (task module {@linkcode JS_MODULE}). */
export const JS_TASK_NAMES = [
  "convForward",
  "convBackward",
  "maxPoolForward",
  "maxPoolBackward",
  "adam",
  "winogradInputs",
  "winogradOutputs",
  "lstmForward",
  "lstmBackward",
  "attentionForward",
  "attentionBackward",
  "gruForward",
  "gruBackward",
  "winogradConv",
  "winogradWeights",
  "batchNorm",
  "winogradGradOutputs",
] as const;

/** A JavaScript task as a job names it. */
export type JsTaskName = typeof JS_TASK_NAMES[number];

/** The task module number of the JavaScript tasks (0 and 1 are the float32 and float64 wasm). */
export const JS_MODULE = 2;
