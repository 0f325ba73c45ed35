// The LSTM's float32 recurrence split by batch rows across the worker pool
// (`wasmBackend.lstmForward` / `lstmBackward`, backends/_recurrent_tasks.ts): every row
// through all the steps by the same products and per-element code, so outputs and gradients
// keep the layer's own loop's bits on any thread count, and the backend declines what it
// cannot split.
import assert from "node:assert/strict";
import { fastMathSource, sigmoid32, tanh32 } from "../core/_fast_math.ts";
import { LSTM, setThreads, withBackend } from "../mod.ts";
import { livePool } from "./_threads.ts";
import {
  assertWorkerCopies,
  filled,
  type RecurrentCase,
  splitGivesLoopBits,
  spyBackend,
} from "./_recurrent_threads.ts";

// Both large enough to split (B·4H ≥ minTask / 8) with cells resident (T·B·H ≥ 2^16); the
// second's 9 rows do not divide evenly among the tasks.
const CASES: RecurrentCase[] = [
  { what: "B 32, H 256", batch: 32, steps: 8, inputSize: 16, hidden: 256, returnSequences: true },
  { what: "B 9, H 1024", batch: 9, steps: 8, inputSize: 8, hidden: 1024, returnSequences: false },
  // Hidden sizes whose packed U ends in a partial panel (G or H not a multiple of the tile).
  { what: "B 50, H 13", batch: 50, steps: 101, inputSize: 8, hidden: 13, returnSequences: true },
  { what: "B 24, H 100", batch: 24, steps: 30, inputSize: 8, hidden: 100, returnSequences: true },
];

Deno.test("the LSTM's recurrence split by rows on 1, 2 and 3 threads gives its loop's bits", () =>
  splitGivesLoopBits("lstm", CASES));

Deno.test("the wasm backend declines recurrences it cannot split", async (t) => {
  try {
    await livePool(2);
    await t.step("an inference forward's buffers are not resident", () => {
      const answers: boolean[] = [];
      const lstm = new LSTM(16, 256, { seed: 1 });
      const x = filled([32, 4, 16], 3, 1);
      withBackend(spyBackend("lstm", answers), () => lstm.forward(x));
      assert.deepEqual(answers, [false]);
    });
    await t.step("small buffers are not resident: the layer loops itself", () => {
      const answers: boolean[] = [];
      const lstm = new LSTM(4, 8, { seed: 1 });
      const x = filled([3, 5, 4], 3, 1);
      withBackend(spyBackend("lstm", answers), () => {
        lstm.forward(x, { training: true });
        lstm.backward(filled([3, 5, 8], 9, 1));
      });
      assert.deepEqual(answers, [false, false]);
    });
    await t.step("products the layer's loop leaves to JavaScript are declined", () => {
      // Hidden 4: backward's dgates·Uᵀ has 4 columns, which prepareRight computes in
      // JavaScript loops (other bits than the kernels'); forward's h·U has 16, a kernel's.
      const answers: boolean[] = [];
      const lstm = new LSTM(8, 4, { seed: 1 });
      const x = filled([64, 300, 8], 3, 1);
      withBackend(spyBackend("lstm", answers), () => {
        lstm.forward(x, { training: true });
        lstm.backward(filled([64, 300, 4], 9, 1));
      });
      assert.deepEqual(answers, [true, false]);
    });
    await t.step("float64 layers loop themselves", () => {
      const answers: boolean[] = [];
      const lstm = new LSTM(16, 256, { seed: 1, dtype: "float64" });
      const x = filled([32, 8, 16], 3, 1).clone({ dtype: "float64" });
      withBackend(spyBackend("lstm", answers), () => lstm.forward(x, { training: true }));
      assert.deepEqual(answers, []);
    });
  } finally {
    setThreads(1);
  }
});

Deno.test("the workers' copy of the float32 gate functions gives core/_fast_math.ts's bits", () => {
  assertWorkerCopies(fastMathSource(), ["sigmoid32", "tanh32"], [sigmoid32, tanh32]);
});
