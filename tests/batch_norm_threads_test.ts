// BatchNorm's passes on the wasm backend's pool (backends/_batch_norm_tasks.ts): the layer's
// own loops' bits on 1, 2 and 3 threads, float32 and float64, training and inference.
import assert from "node:assert/strict";
import { parallelTuning, resetParallelTuning, wasmBackend } from "../backends/wasm.ts";
import {
  type Backend,
  BatchNorm,
  type DType,
  type FloatArray,
  setThreads,
  Tensor,
  withBackend,
} from "../mod.ts";
import { assertSameBits, livePool } from "./_threads.ts";

// x, dvalues (placed in the backend's memory where `resident`), the layer's outputs, input
// gradient and parameter gradients after a training step and an inference backward.
function run(backend: Backend | string, dtype: DType, resident: boolean): FloatArray[] {
  return withBackend(backend, () => {
    const shape = [12, 6, 33, 31]; // 73,656 elements: resident
    const place = (values: Tensor) => {
      if (!resident) return values;
      const data = wasmBackend.allocate!(dtype, values.size)!;
      data.set(values.data);
      return new Tensor(data, values.shape);
    };
    const norm = new BatchNorm(6, { dtype });
    norm.gamma.value.data.set([0.5, 1.5, -1, 2, 0.25, 1]);
    norm.beta.value.data.set([0.1, -0.2, 0.3, 0, 1, -1]);
    const x = place(Tensor.randn(shape, { dtype, seed: 3 }));
    const d = place(Tensor.randn(shape, { dtype, seed: 4 }));
    const y = norm.forward(x, { training: true }).data.slice();
    const dx = norm.backward(d).data.slice();
    const grads = [norm.gamma.grad.data.slice(), norm.beta.grad.data.slice()];
    const running = [norm.runningMean.data.slice(), norm.runningVar.data.slice()];
    norm.forward(x); // inference: the running statistics
    const dxInference = norm.backward(d).data.slice();
    return [y, dx, ...grads, ...running, dxInference];
  });
}

Deno.test("BatchNorm on the wasm backend's pool gives its loops' bits on 1, 2 and 3 threads", async () => {
  try {
    Object.assign(parallelTuning, { minTask: 64, backoff: false });
    for (const count of [1, 2, 3]) {
      const pool = count > 1 ? await livePool(count) : undefined;
      if (count === 1) setThreads(1);
      const before = pool?.workerTasks ?? 0;
      for (const dtype of ["float32", "float64"] as const) {
        const want = run("js", dtype, false);
        const passes: string[] = [];
        const spy: Backend = {
          ...wasmBackend,
          name: "spy",
          batchNorm: (pass, ...rest) => {
            const ran = wasmBackend.batchNorm!(pass, ...rest);
            if (ran) passes.push(pass);
            return ran;
          },
        };
        const got = run(spy, dtype, true);
        // The training step's passes, then the inference backward's sums; its input gradient
        // is a fresh array, not placed, so the layer loops for that one.
        const training = ["sums", "squares", "normalize", "gradientSums", "gradient"];
        assert.deepEqual(passes, [...training, "gradientSums"]);
        got.forEach((array, i) =>
          assertSameBits(array, want[i], `${count} threads, ${dtype} [${i}]`)
        );
      }
      if (pool) assert.ok(pool.workerTasks > before, `${count} threads: no task ran on a worker`);
    }
  } finally {
    resetParallelTuning();
    setThreads(navigator.hardwareConcurrency);
  }
});
