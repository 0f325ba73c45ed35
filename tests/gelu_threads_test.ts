// GELU's float32 loops (the piecewise-cubic Φ forward, GELU′ backward) as the wasm kernel
// `cubicMap` split by element ranges across the worker pool (`wasmBackend.cubicMap`): each
// element by the same float64 operations whichever thread runs it, and the elements off the
// grid (x < −3, x ≥ 8, NaN) listed and redone by the layer, so outputs and gradients keep the
// JavaScript loops' bits on any thread count; and the backend declines what it cannot run.
import assert from "node:assert/strict";
import { parallelTuning } from "../backends/wasm.ts";
import { wasmBackend } from "../plugin.ts";
import { type FloatArray, GELU, setThreads, Tensor, withBackend } from "../mod.ts";
import { assertSameBits, livePool, onThreadCounts, resident } from "./_threads.ts";

// 72,927 elements (odd, ≥ 2^16: resident), and a larger one.
const SHAPES = [[73, 999], [4, 128, 257]];

// Values at and around the grid's edges (−3 and 8), beyond them, and the special ones.
const SPECIAL = [
  NaN,
  Infinity,
  -Infinity,
  -0,
  0,
  -3,
  Math.fround(-3 - 1e-6),
  Math.fround(-3 + 1e-6),
  8,
  Math.fround(8 - 1e-6),
  -3.5,
  -10,
  -40,
  9,
  1e30,
  -1e30,
  Math.fround(1 / 64),
  Math.fround(-1 / 128),
];

// Deterministic values in (−scale, scale), the special values at scattered places.
function values(size: number, seed: number, scale: number): Float32Array {
  let s = seed;
  const data = Float32Array.from({ length: size }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648 * 2 - 1) * scale;
  });
  SPECIAL.forEach((v, k) => {
    for (let i = k * 37; i < size; i += 4093 + k) data[i] = v;
  });
  data[size - 1] = NaN; // the last element, in the kernel's odd tail
  return data;
}

// The number of elements off the grid: x < −3, x ≥ 8 or NaN.
function offGrid(x: Float32Array): number {
  return x.filter((v) => !(v >= -3 && v < 8)).length;
}

// What each cubicMap call answered (the number of indices it returned, or null), through a
// wasm backend that records them; with `decline`, one whose layer loops itself (the
// reference).
function spyBackend(answers: (number | null)[], decline = false) {
  type Args = Parameters<NonNullable<typeof wasmBackend.cubicMap>>;
  return {
    ...wasmBackend,
    name: "wasm-gelu-spy",
    cubicMap(...args: Args) {
      const indices = decline ? null : wasmBackend.cubicMap!(...args);
      answers.push(indices === null ? null : indices.length);
      return indices;
    },
  };
}

// Two training passes of a GELU (the second reuses its resident buffers): the second's
// outputs and dinputs.
function pass(x: Tensor, dvalues: Tensor, answers: (number | null)[], decline = false) {
  const gelu = new GELU();
  return withBackend(spyBackend(answers, decline), () => {
    let got: FloatArray[] = [];
    for (let round = 0; round < 2; round++) {
      const outputs = gelu.forward(x, { training: true }).data.slice();
      const dinputs = gelu.backward(dvalues).data.slice();
      got = [outputs, dinputs];
    }
    return got;
  });
}

Deno.test("GELU's float32 loops as a wasm kernel on 1, 2 and 3 threads give the loops' bits", async (t) => {
  const cases = SHAPES.map((shape, k) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const x = values(size, 11 + k, 5);
    const dv = values(size, 5 + k, 1);
    return { shape, x: resident(shape, x), dvalues: resident(shape, dv), off: offGrid(x) };
  });
  // tasks per thread: the default, and many small tasks (lists merged from many segments)
  for (const tasksPerThread of [4, 64]) {
    await t.step(`${tasksPerThread} tasks per thread`, () =>
      onThreadCounts(() => {
        parallelTuning.tasksPerThread = tasksPerThread;
        if (tasksPerThread > 4) parallelTuning.minTask = 1 << 12;
        return cases.map((c) => {
          const answers: (number | null)[] = [];
          const got = pass(c.x, c.dvalues, answers, true);
          assert.deepEqual(answers, [null, null, null, null]);
          return got;
        });
      }, (references, threads, pool) => {
        cases.forEach((c, k) => {
          const what = `[${c.shape}], ${threads} threads`;
          const answers: (number | null)[] = [];
          const before = pool?.workerTasks ?? 0;
          const [outputs, dinputs] = pass(c.x, c.dvalues, answers);
          // 2 rounds × forward and backward, each listing every element off the grid
          assert.ok(c.off > SPECIAL.length, what);
          assert.deepEqual(answers, [c.off, c.off, c.off, c.off], what);
          if (pool) assert.ok(pool.workerTasks > before, `${what}: no worker task`);
          assertSameBits(outputs, references[k][0], `${what}: outputs`);
          assertSameBits(dinputs, references[k][1], `${what}: dinputs`);
        });
      }));
  }
});

Deno.test("wasmBackend.cubicMap computes the cubics and lists the elements off the grid", async (t) => {
  await livePool(2);
  try {
    // f(x) = 1 + 2t + 3t² + 4t³ on [0, 1), 10·t on [1, 2) (low 0, one interval per unit)
    const table = Float64Array.of(1, 2, 3, 4, 0, 10, 0, 0);
    const size = 1 << 16;
    const x = resident([size], new Float32Array(size).fill(0.5));
    x.data[3] = 1.25;
    x.data[7] = -0.5; // below the grid
    x.data[size - 2] = 2; // past it
    x.data[size - 1] = NaN;
    const out = resident([size], new Float32Array(size)).data;
    const indices = wasmBackend.cubicMap!(x.data, table, 0, 1, out);
    assert.deepEqual(indices, Int32Array.of(7, size - 2, size - 1));
    await t.step("y = x·f(x) on the grid", () => {
      assert.equal(out[0], 0.5 * (1 + 0.5 * (2 + 0.5 * (3 + 0.5 * 4))));
      assert.equal(out[3], 1.25 * (0.25 * 10));
      assert.equal(out[7], -0.5 * 1); // interval 0 at t = 0, for the caller to redo
    });
    await t.step("dx = dvalues·f(x) with dvalues", () => {
      const dvalues = resident([size], new Float32Array(size).fill(-2));
      assert.deepEqual(wasmBackend.cubicMap!(x.data, table, 0, 1, out, dvalues.data), indices);
      assert.equal(out[0], -2 * (1 + 0.5 * (2 + 0.5 * (3 + 0.5 * 4))));
      assert.equal(out[3], -2 * 2.5);
    });
    await t.step("low and steps need not be integers", () => {
      // position = (x − 0.25)·2: x = 0.5 is at t = 0.5 of interval 0, x = 1.25 at 2, past
      // the two intervals
      const listed = wasmBackend.cubicMap!(x.data, table, 0.25, 2, out);
      assert.deepEqual(listed, Int32Array.of(3, 7, size - 2, size - 1));
      assert.equal(out[0], 0.5 * (1 + 0.5 * (2 + 0.5 * (3 + 0.5 * 4))));
      assert.equal(out[3], 1.25 * 1); // interval 0 at t = 0
    });
    await t.step("mismatched lengths are an error", () => {
      assert.throws(
        () => wasmBackend.cubicMap!(x.data, table, 0, 1, out.subarray(1)),
        /wasmBackend\.cubicMap: x, out and dvalues must have one length/,
      );
    });
  } finally {
    setThreads(1);
  }
});

Deno.test("the wasm backend declines GELU's loops it cannot run", async (t) => {
  try {
    await livePool(2);
    const shape = SHAPES[0], size = shape[0] * shape[1];
    const x = resident(shape, values(size, 3, 5));
    await t.step("an inference forward's outputs are not resident", () => {
      const answers: (number | null)[] = [];
      const gelu = new GELU();
      withBackend(spyBackend(answers), () => {
        gelu.forward(x);
        gelu.backward(resident(shape, values(size, 9, 1)));
      });
      assert.deepEqual(answers, [null, null]);
    });
    await t.step("tiny inputs are not resident", () => {
      const answers: (number | null)[] = [];
      const gelu = new GELU();
      const small = new Tensor(values(15, 3, 5), [3, 5]);
      withBackend(spyBackend(answers), () => {
        gelu.forward(small, { training: true });
        gelu.backward(new Tensor(values(15, 9, 1), [3, 5]));
      });
      assert.deepEqual(answers, [null, null]);
    });
    await t.step("float64 arrays", () => {
      const x64 = wasmBackend.allocate!("float64", 1 << 16)!;
      const out64 = wasmBackend.allocate!("float64", 1 << 16)!;
      assert.equal(wasmBackend.cubicMap!(x64, new Float64Array(8), 0, 1, out64), null);
    });
    await t.step("the tanh form and float64 GELU do not call it", () => {
      const answers: (number | null)[] = [];
      withBackend(spyBackend(answers), () => {
        new GELU({ approximate: "tanh" }).forward(x, { training: true });
        new GELU().forward(x.clone({ dtype: "float64" }), { training: true });
      });
      assert.deepEqual(answers, []);
    });
  } finally {
    setThreads(1);
  }
});
