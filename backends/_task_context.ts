// What the pool's JavaScript tasks (backends/_tasks.ts) run against, on any thread.

/** The kernel exports a convolution task calls (byte offsets, as in backends/wasm.ts). */
export interface ConvKernelExports {
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
}

/** What a task runs against: the memory, and the kernels by module (0 float32, 1 float64). */
export interface TaskContext {
  memory: WebAssembly.Memory;
  exports: readonly ConvKernelExports[];
}

/** A task as the pool calls it: the context, the thread's index, then its arguments. */
export type JsTask = (context: TaskContext, thread: number, ...args: number[]) => void;
