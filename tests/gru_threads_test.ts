// The GRU's float32 recurrence split by batch rows across the worker pool
// (`wasmBackend.gruForward` / `gruBackward`, backends/_gru_tasks.ts): every row through all
// the steps by the same products and the layer's own cell functions, so outputs and gradients
// keep the layer's loop's bits on any thread count, and the backend declines what it cannot
// split (or could not split with those bits).
import assert from "node:assert/strict";
import { sigmoid, tanh } from "../core/_fast_math.ts";
import { jsTaskSource } from "../backends/_tasks.ts";
import { GRU, setThreads, withBackend } from "../mod.ts";
import { livePool } from "./_threads.ts";
import {
  assertWorkerCopies,
  filled,
  type RecurrentCase,
  splitGivesLoopBits,
  spyBackend,
} from "./_recurrent_threads.ts";

// All large enough to split (2·T·B·H·3H ≥ 2^20) with every buffer resident (T·B·H ≥ 2^16);
// odd hidden sizes (3·H not a multiple of the 8-column panels), and batches that 2 and 3
// threads do not share evenly (nor in 6-row panels).
const CASES: RecurrentCase[] = [
  { what: "B 32, H 257", batch: 32, steps: 8, inputSize: 16, hidden: 257, returnSequences: true },
  { what: "B 7, H 1023", batch: 7, steps: 10, inputSize: 8, hidden: 1023, returnSequences: false },
  { what: "B 50, H 13", batch: 50, steps: 101, inputSize: 5, hidden: 13, returnSequences: true },
];

Deno.test("the GRU's recurrence split by rows on 1, 2 and 3 threads gives its loop's bits", () =>
  splitGivesLoopBits("gru", CASES));

Deno.test("the wasm backend declines GRU recurrences it cannot split", async (t) => {
  try {
    await livePool(2);
    await t.step("an inference forward's buffers are not resident", () => {
      const answers: boolean[] = [];
      const gru = new GRU(16, 256, { seed: 1 });
      const x = filled([32, 4, 16], 3, 1);
      withBackend(spyBackend("gru", answers), () => gru.forward(x));
      assert.deepEqual(answers, [false]);
    });
    await t.step("small buffers are not resident: the layer loops itself", () => {
      const answers: boolean[] = [];
      const gru = new GRU(4, 8, { seed: 1 });
      const x = filled([3, 5, 4], 3, 1);
      withBackend(spyBackend("gru", answers), () => {
        gru.forward(x, { training: true });
        gru.backward(filled([3, 5, 8], 9, 1));
      });
      assert.deepEqual(answers, [false, false]);
    });
    await t.step("products the layer's loop leaves to jsBackend are not split", () => {
      // Resident (T·B·H ≥ 2^16) and large enough, but prepareRight computes a product of at
      // most 4 columns (dh·Uᵀ at hidden 4) or under 512 multiply-adds (B·H·3H at B 6, H 5)
      // with jsBackend's loop, not the kernels' gemm: split, they would not keep its bits.
      const answers: boolean[] = [];
      const thin = new GRU(4, 4, { seed: 1 });
      const small = new GRU(2, 5, { seed: 1 });
      withBackend(spyBackend("gru", answers), () => {
        thin.forward(filled([128, 128, 4], 3, 1), { training: true });
        thin.backward(filled([128, 128, 4], 9, 1));
        small.forward(filled([6, 2185, 2], 3, 1), { training: true });
        small.backward(filled([6, 2185, 5], 9, 1));
      });
      // h·U at hidden 4 has 12 columns: forward splits.
      assert.deepEqual(answers, [true, false, false, false]);
    });
    await t.step("float64 layers loop themselves", () => {
      const answers: boolean[] = [];
      const gru = new GRU(16, 256, { seed: 1, dtype: "float64" });
      const x = filled([32, 8, 16], 3, 1).clone({ dtype: "float64" });
      withBackend(spyBackend("gru", answers), () => gru.forward(x, { training: true }));
      assert.deepEqual(answers, []);
    });
  } finally {
    setThreads(1);
  }
});

Deno.test("the workers' copy of the GRU's gate functions gives core/_fast_math.ts's bits", () => {
  assertWorkerCopies(jsTaskSource(), ["sigmoid", "tanh"], [sigmoid, tanh]);
});
