// The worker pool under the wasm kernels: the same bits for any thread count, in every
// product, and in a whole training run; the public API and the reasons threads are off.
import assert from "node:assert/strict";
import { detectThreads } from "../backends/threads.ts";
import {
  contentionBackoff,
  PARALLEL_THRESHOLD,
  parallelTuning,
  resetParallelTuning,
} from "../backends/wasm.ts";
import {
  Adam,
  type Dense,
  type FloatArray,
  getThreads,
  LSTM,
  MAX_THREADS,
  RandomState,
  setThreads,
  SoftmaxCrossEntropy,
  takeRows,
  Tensor,
  threadsUnavailable,
} from "../mod.ts";
import { wasmBackend } from "../plugin.ts";
import { workloadModel, workloadW2 } from "../bench/_workload_data.ts";
import { assertSameBits, livePool, threads } from "./_threads.ts";

type Product = "matmul" | "matmulTransA" | "matmulTransB" | "matmulBias";
const PRODUCTS: Product[] = ["matmul", "matmulTransA", "matmulTransB", "matmulBias"];

// Odd shapes for every path: packed tiles with ragged edges, reductions past one cache block
// (k > 256), and the thin kernels (≤ 4 output columns, or ≤ 4 rows of aᵀ·b).
const SHAPES: [number, number, number][] = [
  [37, 53, 29],
  [61, 300, 45],
  [131, 17, 203],
  [7, 513, 97],
  [250, 41, 3],
  [99, 77, 1],
  [301, 4, 70],
  [2, 129, 301],
  [140, 260, 130], // above the default threshold
];

function operands(
  product: Product,
  dtype: "float32" | "float64",
  [m, k, n]: number[],
  seed: number,
): FloatArray[] {
  const sizes = product === "matmulTransA"
    ? [m * k, m * n, k * n]
    : product === "matmulTransB"
    ? [m * n, k * n, m * k]
    : [m * k, k * n, m * n];
  const random = new RandomState(seed);
  const make = (length: number) => {
    const values = Array.from({ length }, () => random.random() * 2 - 1);
    return dtype === "float32" ? Float32Array.from(values) : Float64Array.from(values);
  };
  return [...sizes.map(make), make(product === "matmulTransB" ? k : n)]; // a, b, c, bias
}

// One product into a copy of c; `accumulate` adds into c's values.
function run(product: Product, ops: FloatArray[], [m, k, n]: number[], accumulate: boolean) {
  const [a, b, c0, bias] = ops;
  const c = c0.slice();
  if (product === "matmulBias") wasmBackend.matmulBias!(a, b, bias, c, m, k, n);
  else wasmBackend[product](a, b, c, m, k, n, accumulate);
  return c;
}

// First: the other tests change the count.
Deno.test("setThreads and getThreads: the default, the range, and 1 thread", () => {
  assert.equal(threadsUnavailable(), null); // Deno, no permission flags
  const cores = navigator.hardwareConcurrency;
  assert.equal(getThreads(), Math.min(cores, 8));
  try {
    setThreads(3);
    assert.equal(getThreads(), 3);
    setThreads(1);
    assert.equal(getThreads(), 1);
    for (const bad of [0, -1, 1.5, NaN, MAX_THREADS + 1]) {
      assert.throws(
        () => setThreads(bad),
        (error: Error) =>
          error instanceof RangeError &&
          error.message === `setThreads: threads must be an integer from 1 to 64, got ${bad}`,
      );
    }
    assert.equal(getThreads(), 1);
  } finally {
    setThreads(1);
  }
});

Deno.test("every product gives the same bits on 1, 2, 3 and 4 threads", async () => {
  const references = new Map<string, FloatArray>();
  const cases = SHAPES.flatMap((shape) =>
    PRODUCTS.flatMap((product) =>
      (["float32", "float64"] as const).flatMap((dtype) =>
        [false, true].map((accumulate) => ({ shape, product, dtype, accumulate }))
      )
    )
  );
  try {
    // Every product to the pool, however small, in as many tasks as it has panels or rows.
    Object.assign(parallelTuning, {
      threshold: 0,
      minPackTask: 1,
      minTask: 1,
      tasksPerThread: 64,
      backoff: false, // every product on the pool, even while the machine is busy
    });
    for (const threads of [1, 2, 3, 4]) {
      const pool = threads > 1 ? await livePool(threads) : undefined;
      if (threads === 1) setThreads(1);
      const before = pool?.workerTasks ?? 0;
      for (const [i, { shape, product, dtype, accumulate }] of cases.entries()) {
        if (product === "matmulBias" && accumulate) continue;
        const got = run(product, operands(product, dtype, shape, i), shape, accumulate);
        const key = `${product} ${dtype} ${shape.join("×")} accumulate=${accumulate}`;
        if (threads === 1) references.set(key, got);
        else assertSameBits(got, references.get(key)!, `${key}, ${threads} threads`);
      }
      // The workers took part (else this test would compare one thread with itself).
      if (pool) assert.ok(pool.workerTasks > before, `${threads} threads: no task ran on a worker`);
    }
  } finally {
    resetParallelTuning();
    setThreads(1);
  }
});

Deno.test("W2's first 50 training steps end in the same weights on 1, 2, 3 and 4 threads", async () => {
  const batch = 128, steps = 50;
  const workload = workloadW2({ samples: batch * steps });
  const train = () => {
    const model = workloadModel(workload, "float32");
    const step = { loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ learningRate: 1e-3 }) };
    const labels = new Int32Array(batch);
    for (let s = 0; s < steps; s++) {
      const rows = Int32Array.from({ length: batch }, (_, i) => s * batch + i);
      for (let i = 0; i < batch; i++) labels[i] = workload.y[rows[i]];
      model.trainBatch(takeRows(workload.x, rows), labels, step);
    }
    return model.layers.filter((l) => l.kind === "Dense").flatMap((l) => {
      const dense = l as Dense;
      return [dense.weights.value.data.slice(), dense.biases.value.data.slice()];
    });
  };
  try {
    parallelTuning.backoff = false; // every large product on the pool, even on a busy machine
    setThreads(1);
    const reference = train();
    for (const threads of [2, 3, 4]) {
      const pool = await livePool(threads);
      const before = pool.workerTasks;
      const weights = train();
      assert.ok(pool.workerTasks > before, `${threads} threads: no task ran on a worker`);
      weights.forEach((w, i) =>
        assertSameBits(w, reference[i], `parameter ${i}, ${threads} threads`)
      );
    }
  } finally {
    resetParallelTuning();
    setThreads(1);
  }
});

Deno.test("threads are unavailable, with the reason, without SharedArrayBuffer, Worker or a blocking Atomics.wait", () => {
  const full = {
    SharedArrayBuffer,
    Worker,
    Blob,
    URL,
    WebAssembly,
    Atomics,
  };
  assert.equal(detectThreads(full), null);
  assert.match(
    detectThreads({ ...full, crossOriginIsolated: false })!,
    /not cross-origin isolated .*Cross-Origin-Opener-Policy: same-origin/,
  );
  assert.match(detectThreads({ ...full, SharedArrayBuffer: undefined })!, /no SharedArrayBuffer/);
  assert.match(detectThreads({ ...full, Worker: undefined })!, /no Web Worker/);
  const mainThread = {
    wait() {
      throw new TypeError("Atomics.wait cannot be called in this context");
    },
  };
  assert.match(
    detectThreads({ ...full, Atomics: mainThread })!,
    /Atomics.wait may not block this thread \(a browser page's main thread\)/,
  );
});

Deno.test("products below the threshold stay on the calling thread", async () => {
  try {
    const pool = await livePool(2);
    const before = pool.workerTasks;
    const [m, k, n] = [300, 64, 3]; // W1's largest product: 57,600 multiply-adds
    assert.ok(m * k * n < PARALLEL_THRESHOLD);
    const a = new Float32Array(m * k).fill(0.5), b = new Float32Array(k * n).fill(0.25);
    wasmBackend.matmul(a, b, new Float32Array(m * n), m, k, n);
    assert.equal(pool.workerTasks, before);
  } finally {
    setThreads(1);
  }
});

Deno.test("a job that gained less than 1.1× backs off to one thread, 1, 2, 4 … 256 products", () => {
  const job = (callerTasks: number, work: number, wait: number) => ({
    tasks: 64,
    callerTasks,
    work,
    wait,
  });
  assert.equal(contentionBackoff(job(32, 10, 0.5), 0), 0); // shared evenly: ~1.9×
  assert.equal(contentionBackoff(job(48, 10, 0.5), 0), 0); // the worker ran a quarter: ~1.3×
  assert.equal(contentionBackoff(job(60, 10, 0.5), 0), 1); // it barely ran: ~1.02×
  assert.equal(contentionBackoff(job(32, 10, 12), 0), 1); // the caller waited longer than it worked
  assert.equal(contentionBackoff(job(32, 10, 12), 1), 2);
  assert.equal(contentionBackoff(job(32, 10, 12), 64), 128);
  assert.equal(contentionBackoff(job(32, 10, 12), 256), 256);
  assert.equal(contentionBackoff(job(32, 10, 0.5), 256), 0); // one good job resets it
  assert.equal(contentionBackoff(job(0, 0, 3), 0), 0); // the workers ran it all
  assert.equal(contentionBackoff(job(64, 0.9, 0), 4), 4); // under 1 ms: too short to judge
  assert.equal(contentionBackoff(job(64, 1, 0), 4), 8);
});

Deno.test("a back-off keeps products on the calling thread, but not a layer's whole pass", async () => {
  const pool = await livePool(2);
  const shared = threads();
  try {
    shared.backOff(4);
    assert.equal(shared.pool(), null); // a product backs off
    assert.equal(shared.pool(true), pool); // a recurrence's or attention's pass does not
    // An LSTM's training passes during a long back-off still run on the workers.
    shared.backOff(256);
    const lstm = new LSTM(16, 128, { seed: 1 });
    const x = new Tensor(new Float32Array(32 * 32 * 16).map((_, i) => Math.sin(i)), [32, 32, 16]);
    const before = pool.workerTasks;
    const outputs = lstm.forward(x, { training: true });
    lstm.backward(outputs);
    assert.ok(pool.workerTasks > before, "the recurrence ran on the calling thread alone");
  } finally {
    shared.backOff(0);
    setThreads(1);
  }
});
