// The GRU's float32 recurrence split by batch rows across the worker pool
// (`wasmBackend.gruForward` / `gruBackward`, backends/_gru_tasks.ts): every row through all
// the steps by the same products and the layer's own cell functions, so outputs and gradients
// keep the layer's loop's bits on any thread count, and the backend declines what it cannot
// split (or could not split with those bits).
import assert from "node:assert/strict";
import { sigmoid, tanh } from "../core/_fast_math.ts";
import { jsTaskSource } from "../backends/_tasks.ts";
import { wasmBackend } from "../plugin.ts";
import { type FloatArray, GRU, setThreads, Tensor, withBackend } from "../mod.ts";
import { assertSameBits, livePool, onThreadCounts } from "./_threads.ts";

interface Case {
  what: string;
  batch: number;
  steps: number;
  inputSize: number;
  hidden: number;
  returnSequences: boolean;
}

// All large enough to split (2·T·B·H·3H ≥ 2^20) with every buffer resident (T·B·H ≥ 2^16);
// odd hidden sizes (3·H not a multiple of the 8-column panels), and batches that 2 and 3
// threads do not share evenly (nor in 6-row panels).
const CASES: Case[] = [
  { what: "B 32, H 257", batch: 32, steps: 8, inputSize: 16, hidden: 257, returnSequences: true },
  { what: "B 7, H 1023", batch: 7, steps: 10, inputSize: 8, hidden: 1023, returnSequences: false },
  { what: "B 50, H 13", batch: 50, steps: 101, inputSize: 5, hidden: 13, returnSequences: true },
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
  type Forward = Parameters<NonNullable<typeof wasmBackend.gruForward>>;
  type Backward = Parameters<NonNullable<typeof wasmBackend.gruBackward>>;
  return {
    ...wasmBackend,
    name: "wasm-gru-spy",
    gruForward(...args: Forward) {
      answers.push(!decline && wasmBackend.gruForward!(...args));
      return answers.at(-1)!;
    },
    gruBackward(...args: Backward) {
      answers.push(!decline && wasmBackend.gruBackward!(...args));
      return answers.at(-1)!;
    },
  };
}

// Two training passes (the second reuses the resident buffers): outputs, dinputs and the
// params' gradients of the second.
function pass(c: Case, answers: boolean[], decline = false): FloatArray[] {
  const gru = new GRU(c.inputSize, c.hidden, { seed: 7, returnSequences: c.returnSequences });
  const x = filled([c.batch, c.steps, c.inputSize], 11, 2);
  const outShape = c.returnSequences ? [c.batch, c.steps, c.hidden] : [c.batch, c.hidden];
  const dvalues = filled(outShape, 5, 1);
  return withBackend(spyBackend(answers, decline), () => {
    let got: FloatArray[] = [];
    for (let round = 0; round < 2; round++) {
      for (const p of gru.params()) p.grad.data.fill(0);
      const outputs = gru.forward(x, { training: true }).data.slice();
      const dinputs = gru.backward(dvalues).data.slice();
      got = [outputs, dinputs, ...gru.params().map((p) => p.grad.data.slice())];
    }
    return got;
  });
}

Deno.test("the GRU's recurrence split by rows on 1, 2 and 3 threads gives its loop's bits", () => {
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

Deno.test("the wasm backend declines GRU recurrences it cannot split", async (t) => {
  try {
    await livePool(2);
    await t.step("an inference forward's buffers are not resident", () => {
      const answers: boolean[] = [];
      const gru = new GRU(16, 256, { seed: 1 });
      const x = filled([32, 4, 16], 3, 1);
      withBackend(spyBackend(answers), () => gru.forward(x));
      assert.deepEqual(answers, [false]);
    });
    await t.step("small buffers are not resident: the layer loops itself", () => {
      const answers: boolean[] = [];
      const gru = new GRU(4, 8, { seed: 1 });
      const x = filled([3, 5, 4], 3, 1);
      withBackend(spyBackend(answers), () => {
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
      withBackend(spyBackend(answers), () => {
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
      withBackend(spyBackend(answers), () => gru.forward(x, { training: true }));
      assert.deepEqual(answers, []);
    });
  } finally {
    setThreads(1);
  }
});

Deno.test("the workers' copy of the GRU's gate functions gives core/_fast_math.ts's bits", () => {
  // The workers' whole task source (backends/_tasks.ts), which the GRU tasks' cells run in.
  const [workerSigmoid, workerTanh] = new Function(
    `${jsTaskSource()}\nreturn [sigmoid, tanh];`,
  )() as [(x: number) => number, (x: number) => number];
  let s = 12345;
  for (let k = 0; k < 20000; k++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const x = (s / 2147483648 * 2 - 1) * (k % 2 === 0 ? 12 : 800);
    assert.ok(Object.is(workerSigmoid(x), sigmoid(x)), `sigmoid(${x})`);
    assert.ok(Object.is(workerTanh(x), tanh(x)), `tanh(${x})`);
  }
  for (const x of [0, -0, 1e-300, -1e-12, Infinity, -Infinity, NaN, 354.5, -709.5]) {
    assert.ok(Object.is(workerSigmoid(x), sigmoid(x)), `sigmoid(${x})`);
    assert.ok(Object.is(workerTanh(x), tanh(x)), `tanh(${x})`);
  }
});
