// Backend.prepareRight: products by one right operand packed once give the bits of matmul
// and matmulTransB, on 1 and 2 threads, also when other calls use the kernels' scratch
// between them (the packed operand is then packed again).
import assert from "node:assert/strict";
import { parallelTuning, resetParallelTuning } from "../backends/wasm.ts";
import { type FloatArray, RandomState, setThreads } from "../mod.ts";
import { jsBackend, wasmBackend } from "../plugin.ts";
import { assertSameBits, livePool } from "./_threads.ts";

// [m, k, n]: packed tiles with ragged edges, a reduction past one cache block, a thin one
// (≤ 4 columns), one below the wasm crossover, and the LSTM's recurrent product.
const SHAPES: [number, number, number][] = [
  [37, 53, 29],
  [7, 300, 45],
  [5, 6, 3],
  [2, 3, 4],
  [32, 256, 1024],
];

function random(dtype: "float32" | "float64", length: number, seed: number): FloatArray {
  const r = new RandomState(seed);
  const values = Array.from({ length }, () => r.random() * 2 - 1);
  return dtype === "float32" ? Float32Array.from(values) : Float64Array.from(values);
}

// Four products by one prepared b in a row (the packed b reused), then the same after
// another product and after a resident allocation (each moves it or writes over it); each
// result next to the one matmul (matmulTransB) gives.
function compare(dtype: "float32" | "float64", [m, k, n]: number[], transposed: boolean): void {
  const what = `${dtype} ${m}×${k}×${n}${transposed ? " transposed" : ""}`;
  const b = random(dtype, k * n, 1);
  const product = wasmBackend.prepareRight!(b, k, n, transposed);
  for (let round = 0; round < 3; round++) {
    const eight = random(dtype, 64, 2);
    if (round === 1) wasmBackend.matmul(eight, eight, eight.slice(), 8, 8, 8); // scratch used
    if (round === 2) wasmBackend.allocate!(dtype, 1 << 16); // moves the scratch's origin
    const cases = [0, 1, 2, 3].map((i) => ({
      a: random(dtype, m * k, 10 * round + i),
      c: random(dtype, m * n, 100 + 10 * round + i),
      accumulate: i % 2 === 1,
    }));
    const got = cases.map(({ a, c, accumulate }) => {
      const out = c.slice();
      product(a, out, m, accumulate);
      return out;
    });
    cases.forEach(({ a, c, accumulate }, i) => {
      const want = c.slice();
      if (transposed) wasmBackend.matmulTransB(a, b, want, m, n, k, accumulate);
      else wasmBackend.matmul(a, b, want, m, k, n, accumulate);
      assertSameBits(got[i], want, `${what} round ${round} product ${i}`);
    });
  }
}

Deno.test("prepareRight gives matmul's and matmulTransB's bits on 1 and 2 threads", async () => {
  try {
    for (const threads of [1, 2]) {
      if (threads === 2) {
        await livePool(2);
        // Every product to the pool, in many tasks.
        Object.assign(parallelTuning, {
          threshold: 0,
          minTask: 1,
          tasksPerThread: 16,
          backoff: false,
        });
      } else setThreads(1);
      for (const shape of SHAPES) {
        for (const dtype of ["float32", "float64"] as const) {
          for (const transposed of [false, true]) compare(dtype, shape, transposed);
        }
      }
    }
  } finally {
    resetParallelTuning();
    setThreads(1);
  }
});

Deno.test("prepareRight packs b once: products in a row use b as it was first", () => {
  for (const dtype of ["float32", "float64"] as const) {
    const k = 3, n = 64;
    const b = random(dtype, k * n, 5);
    const first = b.slice();
    const product = wasmBackend.prepareRight!(b, k, n);
    const identity = random(dtype, k * k, 6).fill(0);
    for (let i = 0; i < k; i++) identity[i * k + i] = 1;
    const c = random(dtype, k * n, 7);
    product(identity, c, k);
    assert.deepEqual(c, first);
    b.fill(0); // not prepared again: the next product still sees the packed values
    product(identity, c, k);
    assert.deepEqual(c, first);
    const again = wasmBackend.prepareRight!(b, k, n);
    again(identity, c, k);
    assert.deepEqual(c, b);
  }
});

Deno.test("jsBackend has no prepareRight; the wasm one computes a·bᵀ for float32 and float64", () => {
  assert.equal(jsBackend.prepareRight, undefined);
  for (const dtype of ["float32", "float64"] as const) {
    const a = random(dtype, 9 * 40, 3), b = random(dtype, 30 * 40, 4);
    const got = new (dtype === "float32" ? Float32Array : Float64Array)(9 * 30);
    const want = got.slice();
    wasmBackend.prepareRight!(b, 40, 30, true)(a, got, 9);
    jsBackend.matmulTransB(a, b, want, 9, 30, 40);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-5);
  }
});
