// The LSTM's float32 recurrence split by batch rows across the worker pool
// (`wasmBackend.lstmForward` / `lstmBackward`, backends/_recurrent_tasks.ts): every row
// through all the steps by the same products and per-element code, so outputs and gradients
// keep the layer's own loop's bits on any thread count, and the backend declines what it
// cannot split.
import assert from "node:assert/strict";
import { fastMathSource } from "../core/_fast_math.ts";
import { sigmoid32, tanh32 } from "../core/_fast_math.ts";
import { wasmBackend } from "../plugin.ts";
import { type FloatArray, LSTM, setThreads, Tensor, withBackend } from "../mod.ts";
import { assertSameBits, livePool, onThreadCounts } from "./_threads.ts";

interface Case {
  what: string;
  batch: number;
  steps: number;
  inputSize: number;
  hidden: number;
  returnSequences: boolean;
}

// Both large enough to split (B·4H ≥ minTask / 8) with cells resident (T·B·H ≥ 2^16); the
// second's 9 rows do not divide evenly among the tasks.
const CASES: Case[] = [
  { what: "B 32, H 256", batch: 32, steps: 8, inputSize: 16, hidden: 256, returnSequences: true },
  { what: "B 9, H 1024", batch: 9, steps: 8, inputSize: 8, hidden: 1024, returnSequences: false },
  // Hidden sizes whose packed U ends in a partial panel (G or H not a multiple of the tile).
  { what: "B 50, H 13", batch: 50, steps: 101, inputSize: 8, hidden: 13, returnSequences: true },
  { what: "B 24, H 100", batch: 24, steps: 30, inputSize: 8, hidden: 100, returnSequences: true },
];

// A deterministic float32 tensor of `shape` in (−scale, scale).
function filled(shape: number[], seed: number, scale: number): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  let s = seed;
  const data = Float32Array.from({ length: size }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648 * 2 - 1) * scale;
  });
  return new Tensor(data, shape);
}

// Split calls (true) and declined ones (false), through a wasm backend that records them;
// with `decline`, one whose layer loops itself (the reference).
function spyBackend(answers: boolean[], decline = false) {
  type Forward = Parameters<NonNullable<typeof wasmBackend.lstmForward>>;
  type Backward = Parameters<NonNullable<typeof wasmBackend.lstmBackward>>;
  return {
    ...wasmBackend,
    name: "wasm-lstm-spy",
    lstmForward(...args: Forward) {
      answers.push(!decline && wasmBackend.lstmForward!(...args));
      return answers.at(-1)!;
    },
    lstmBackward(...args: Backward) {
      answers.push(!decline && wasmBackend.lstmBackward!(...args));
      return answers.at(-1)!;
    },
  };
}

// Two training passes (the second reuses the resident buffers): outputs, dinputs and the
// params' gradients of the second.
function pass(c: Case, answers: boolean[], decline = false): FloatArray[] {
  const lstm = new LSTM(c.inputSize, c.hidden, { seed: 7, returnSequences: c.returnSequences });
  const x = filled([c.batch, c.steps, c.inputSize], 11, 2);
  const outShape = c.returnSequences ? [c.batch, c.steps, c.hidden] : [c.batch, c.hidden];
  const dvalues = filled(outShape, 5, 1);
  return withBackend(spyBackend(answers, decline), () => {
    let got: FloatArray[] = [];
    for (let round = 0; round < 2; round++) {
      for (const p of lstm.params()) p.grad.data.fill(0);
      const outputs = lstm.forward(x, { training: true }).data.slice();
      const dinputs = lstm.backward(dvalues).data.slice();
      got = [outputs, dinputs, ...lstm.params().map((p) => p.grad.data.slice())];
    }
    return got;
  });
}

Deno.test("the LSTM's recurrence split by rows on 1, 2 and 3 threads gives its loop's bits", () => {
  const names = ["outputs", "dinputs", "dW", "dU", "dbi", "dbh"];
  return onThreadCounts(() => CASES.map((c) => pass(c, [], true)), (references, threads, pool) => {
    CASES.forEach((c, k) => {
      const answers: boolean[] = [];
      const before = pool?.workerTasks ?? 0;
      const got = pass(c, answers);
      // 2 rounds × forward and backward, every one split (on this thread when it is one)
      assert.deepEqual(answers, [true, true, true, true], `${c.what}, ${threads} threads`);
      if (pool) assert.ok(pool.workerTasks > before, `${threads} threads: no task on a worker`);
      got.forEach((array, i) =>
        assertSameBits(array, references[k][i], `${c.what} ${names[i]}, ${threads} threads`)
      );
    });
  });
});

Deno.test("the wasm backend declines recurrences it cannot split", async (t) => {
  try {
    await livePool(2);
    await t.step("an inference forward's buffers are not resident", () => {
      const answers: boolean[] = [];
      const lstm = new LSTM(16, 256, { seed: 1 });
      const x = filled([32, 4, 16], 3, 1);
      withBackend(spyBackend(answers), () => lstm.forward(x));
      assert.deepEqual(answers, [false]);
    });
    await t.step("small buffers are not resident: the layer loops itself", () => {
      const answers: boolean[] = [];
      const lstm = new LSTM(4, 8, { seed: 1 });
      const x = filled([3, 5, 4], 3, 1);
      withBackend(spyBackend(answers), () => {
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
      withBackend(spyBackend(answers), () => {
        lstm.forward(x, { training: true });
        lstm.backward(filled([64, 300, 4], 9, 1));
      });
      assert.deepEqual(answers, [true, false]);
    });
    await t.step("float64 layers loop themselves", () => {
      const answers: boolean[] = [];
      const lstm = new LSTM(16, 256, { seed: 1, dtype: "float64" });
      const x = filled([32, 8, 16], 3, 1).clone({ dtype: "float64" });
      withBackend(spyBackend(answers), () => lstm.forward(x, { training: true }));
      assert.deepEqual(answers, []);
    });
  } finally {
    setThreads(1);
  }
});

Deno.test("the workers' copy of the float32 gate functions gives core/_fast_math.ts's bits", () => {
  const [workerSigmoid, workerTanh] = new Function(
    `${fastMathSource()}\nreturn [sigmoid32, tanh32];`,
  )() as [(x: number) => number, (x: number) => number];
  let s = 12345;
  for (let k = 0; k < 20000; k++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const x = (s / 2147483648 * 2 - 1) * (k % 2 === 0 ? 12 : 800);
    assert.ok(Object.is(workerSigmoid(x), sigmoid32(x)), `sigmoid32(${x})`);
    assert.ok(Object.is(workerTanh(x), tanh32(x)), `tanh32(${x})`);
  }
  for (const x of [0, -0, 1e-300, -1e-12, Infinity, -Infinity, NaN, 354.5, -709.5]) {
    assert.ok(Object.is(workerSigmoid(x), sigmoid32(x)), `sigmoid32(${x})`);
    assert.ok(Object.is(workerTanh(x), tanh32(x)), `tanh32(${x})`);
  }
});
