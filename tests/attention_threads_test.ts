// MultiHeadAttention's per-head loop split by (sample, head) pairs across the worker pool
// (`wasmBackend.attentionForward/Backward`, backends/_attention_tasks.ts): each pair by the
// same products and softmax whichever thread runs it, so outputs and gradients keep their
// bits on any thread count, equal to the layer's own loop; and the backend declines what it
// cannot split.
import assert from "node:assert/strict";
import { wasmBackend } from "../plugin.ts";
import { type FloatArray, MultiHeadAttention, setThreads, Tensor, withBackend } from "../mod.ts";
import { assertSameBits, livePool, onThreadCounts } from "./_threads.ts";

interface Case {
  what: string;
  batch: number;
  steps: number;
  dim: number;
  heads: number;
  causal: boolean;
}

// Large enough that the heads, probabilities and attended values lie resident (≥ 2^16
// elements each); the second's T = 50 and E = 12 leave partial register tiles. Causal heads
// skip the masked half of each product by blocks of rows (backends/_attention_tasks.ts): the
// third's blocks, tiles and right panels end partial, the fourth's reductions (T > 256) span
// two of the kernel's depth blocks, which the blocks that skip leading terms start elsewhere.
const CASES: Case[] = [
  {
    what: "B 16, T 64, 4 heads of 16, causal",
    batch: 16,
    steps: 64,
    dim: 64,
    heads: 4,
    causal: true,
  },
  { what: "B 24, T 50, 5 heads of 12", batch: 24, steps: 50, dim: 60, heads: 5, causal: false },
  {
    what: "B 24, T 50, 5 heads of 12, causal",
    batch: 24,
    steps: 50,
    dim: 60,
    heads: 5,
    causal: true,
  },
  {
    what: "B 2, T 263, 4 heads of 33, causal",
    batch: 2,
    steps: 263,
    dim: 132,
    heads: 4,
    causal: true,
  },
];

// A deterministic tensor of `shape` in (−scale, scale).
function filled(shape: number[], seed: number, scale: number, dtype = "float32"): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  let s = seed;
  const data = Float64Array.from({ length: size }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648 * 2 - 1) * scale;
  });
  return new Tensor(data, shape).clone({ dtype: dtype as "float32" | "float64" });
}

// Split calls (true) and declined ones (false), through a wasm backend that records them;
// with `decline`, one whose layer loops itself (the reference).
function spyBackend(answers: boolean[], decline = false) {
  type Forward = Parameters<NonNullable<typeof wasmBackend.attentionForward>>;
  type Backward = Parameters<NonNullable<typeof wasmBackend.attentionBackward>>;
  return {
    ...wasmBackend,
    name: "wasm-attention-spy",
    attentionForward(...args: Forward) {
      answers.push(!decline && wasmBackend.attentionForward!(...args));
      return answers.at(-1)!;
    },
    attentionBackward(...args: Backward) {
      answers.push(!decline && wasmBackend.attentionBackward!(...args));
      return answers.at(-1)!;
    },
  };
}

// Two training passes (the second reuses the resident buffers): outputs, dinputs and the
// params' gradients of the second.
function pass(c: Case, answers: boolean[], dtype = "float32", decline = false): FloatArray[] {
  const layer = new MultiHeadAttention(c.dim, c.heads, {
    causal: c.causal,
    seed: 7,
    dtype: dtype as "float32",
  });
  const x = filled([c.batch, c.steps, c.dim], 11, 2, dtype);
  const dvalues = filled([c.batch, c.steps, c.dim], 5, 1, dtype);
  return withBackend(spyBackend(answers, decline), () => {
    let got: FloatArray[] = [];
    for (let round = 0; round < 2; round++) {
      for (const p of layer.params()) p.grad.data.fill(0);
      const outputs = layer.forward(x, { training: true }).data.slice();
      const dinputs = layer.backward(dvalues).data.slice();
      got = [outputs, dinputs, ...layer.params().map((p) => p.grad.data.slice())];
    }
    return got;
  });
}

const NAMES = ["outputs", "dinputs", "dWin", "dbin", "dWout", "dbout"];

for (const dtype of ["float32", "float64"]) {
  Deno.test(
    `attention's heads (${dtype}) split on 1, 2 and 3 threads give the layer's own loop's bits`,
    () =>
      onThreadCounts(
        () => CASES.map((c) => pass(c, [], dtype, true)),
        (references, threads, pool) => {
          CASES.forEach((c, k) => {
            const answers: boolean[] = [];
            const before = pool?.workerTasks ?? 0;
            const got = pass(c, answers, dtype);
            // 2 rounds × forward and backward, every one split (on this thread when it is one)
            assert.deepEqual(answers, [true, true, true, true], `${c.what}, ${threads} threads`);
            if (pool) assert.ok(pool.workerTasks > before, `${threads} threads: no worker task`);
            got.forEach((array, i) =>
              assertSameBits(array, references[k][i], `${c.what} ${NAMES[i]}, ${threads} threads`)
            );
          });
        },
      ),
  );
}

Deno.test("the wasm backend declines attention it cannot split", async (t) => {
  try {
    await livePool(2);
    const c = CASES[0];
    await t.step("an inference forward's buffers are not resident", () => {
      const answers: boolean[] = [];
      const layer = new MultiHeadAttention(c.dim, c.heads, { seed: 1 });
      withBackend(
        spyBackend(answers),
        () => layer.forward(filled([c.batch, c.steps, c.dim], 3, 1)),
      );
      assert.deepEqual(answers, [false]);
    });
    await t.step("with attention dropout the layer loops itself", () => {
      const answers: boolean[] = [];
      const layer = new MultiHeadAttention(c.dim, c.heads, { seed: 1, dropout: 0.1 });
      const x = filled([c.batch, c.steps, c.dim], 3, 1);
      withBackend(spyBackend(answers), () => {
        layer.forward(x, { training: true });
        layer.backward(filled([c.batch, c.steps, c.dim], 9, 1));
      });
      assert.deepEqual(answers, []);
    });
    await t.step("small heads stay resident-free and loop on the calling thread", () => {
      const answers: boolean[] = [];
      const layer = new MultiHeadAttention(8, 2, { seed: 1 });
      withBackend(spyBackend(answers), () => {
        layer.forward(filled([2, 5, 8], 3, 1), { training: true });
        layer.backward(filled([2, 5, 8], 9, 1));
      });
      assert.deepEqual(answers, [false, false]);
    });
    await t.step("heads the layer's loop multiplies by other loops are declined", () => {
      // Heads of 4: the layer's products with 4 output columns go to the thin loops, whose
      // sums run in another order than the tasks' gemm (half the outputs' bits differed).
      const answers: boolean[] = [];
      const layer = new MultiHeadAttention(8, 2, { seed: 1, causal: true });
      withBackend(spyBackend(answers), () => {
        layer.forward(filled([128, 64, 8], 3, 1), { training: true });
        layer.backward(filled([128, 64, 8], 9, 1));
      });
      assert.deepEqual(answers, [false, false]);
    });
  } finally {
    setThreads(1);
  }
});
