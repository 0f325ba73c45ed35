// Helpers for the worker-pool tests: the pool of the shared kernels, and waiting for it.
import {
  loadThreads,
  loadWasmKernels,
  parallelTuning,
  resetParallelTuning,
  type Threads,
} from "../backends/wasm.ts";
import type { WorkerPool } from "../backends/pool.ts";
import assert from "node:assert/strict";
import { type FloatArray, setThreads, Tensor } from "../mod.ts";
import { wasmBackend } from "../plugin.ts";

/** The shared kernels (threads are available under `deno test`). */
export function threads(): Threads {
  loadWasmKernels();
  const shared = loadThreads("relaxed-simd");
  if (!shared) throw new Error("tests: worker threads are unavailable in this runtime");
  return shared;
}

/** The pool for `count` threads, once all its workers have started (the pool starts lazily). */
export async function livePool(count: number): Promise<WorkerPool> {
  setThreads(count);
  // A back-off after a slow job (a busy machine) would hand out no pool for a few calls.
  const backoff = parallelTuning.backoff;
  parallelTuning.backoff = false;
  const pool = threads().pool()!;
  parallelTuning.backoff = backoff;
  pool.run("livePool"); // an empty job starts the workers
  for (let i = 0; i < 500 && pool.live < count - 1; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (pool.live < count - 1) throw new Error(`livePool: ${pool.live} of ${count - 1} started`);
  return pool;
}

/** Fails naming the first element whose bits differ (`Object.is`: −0 ≠ 0, NaN = NaN). */
export function assertSameBits(got: FloatArray, want: FloatArray, what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) {
      assert.fail(`${what}: element ${i} is ${got[i]} with threads, ${want[i]} on one`);
    }
  }
}

/**
 * `prepare` on one thread (the references), then `check` on 1, 2 and 3 threads (2 and 3 on a
 * live pool, whose `workerTasks` a check may compare), every job on the pool however busy the
 * machine (no back-off); the tuning and one thread restored after.
 */
export async function onThreadCounts<T>(
  prepare: () => T,
  check: (reference: T, threads: number, pool: WorkerPool | undefined) => void,
): Promise<void> {
  try {
    parallelTuning.backoff = false;
    setThreads(1);
    const reference = prepare();
    for (const threads of [1, 2, 3]) {
      const pool = threads > 1 ? await livePool(threads) : undefined;
      if (threads === 1) setThreads(1);
      check(reference, threads, pool);
    }
  } finally {
    resetParallelTuning();
    setThreads(1);
  }
}

/** A float32 tensor of `shape` holding `data`, resident in the wasm backend's shared memory. */
export function resident(shape: number[], data: Float32Array): Tensor {
  const array = wasmBackend.allocate!("float32", data.length);
  assert.ok(array instanceof Float32Array, "the wasm backend placed no resident buffer");
  array.set(data);
  return new Tensor(array, shape);
}
