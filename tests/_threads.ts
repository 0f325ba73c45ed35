// Helpers for the worker-pool tests: the pool of the shared kernels, and waiting for it.
import { loadThreads, loadWasmKernels, type Threads } from "../backends/wasm.ts";
import type { WorkerPool } from "../backends/pool.ts";
import assert from "node:assert/strict";
import { type FloatArray, setThreads } from "../mod.ts";

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
  const pool = threads().pool()!;
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
