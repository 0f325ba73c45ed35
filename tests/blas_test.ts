// Run with `deno task test:blas` (--allow-ffi, needs `apt-get install libopenblas0`). Without
// the library or the permission these tests are ignored, and say so.
import assert from "node:assert/strict";
import { blasBackend } from "../blas.ts";
import {
  checkGradients,
  Dense,
  RandomState,
  ReLU,
  Sequential,
  SoftmaxCrossEntropy,
  Tensor,
  withBackend,
} from "../mod.ts";
import { naiveBackend } from "../plugin.ts";

const blas = blasBackend();
if (!blas) {
  console.log(
    "blas tests skipped: OpenBLAS not found or --allow-ffi not granted " +
      "(apt-get install libopenblas0; deno task test:blas)",
  );
}

const KINDS = ["matmul", "matmulTransA", "matmulTransB"] as const;

Deno.test({
  name: "blas backend agrees with the naive reference in float32 and float64",
  ignore: !blas,
  fn() {
    const random = new RandomState(9);
    for (const [m, k, n] of [[1, 1, 1], [3, 7, 17], [129, 17, 33], [64, 300, 9], [40, 40, 40]]) {
      for (const kind of KINDS) {
        for (const accumulate of [false, true]) {
          const size = kind === "matmul"
            ? [m * k, k * n, m * n]
            : kind === "matmulTransA"
            ? [m * k, m * n, k * n]
            : [m * n, k * n, m * k];
          const [a, b, c] = size.map((s) =>
            Float64Array.from({ length: s }, () => random.random() - 0.5)
          );
          const want = c.slice();
          naiveBackend[kind](a, b, want, m, k, n, accumulate);
          const got64 = c.slice();
          blas![kind](a, b, got64, m, k, n, accumulate);
          const got32 = Float32Array.from(c);
          blas![kind](Float32Array.from(a), Float32Array.from(b), got32, m, k, n, accumulate);
          const depth = kind === "matmul" ? k : kind === "matmulTransA" ? m : n;
          for (let i = 0; i < want.length; i++) {
            assert.ok(
              Math.abs(got64[i] - want[i]) < 1e-12 * (depth + 2),
              `${kind} f64 ${m}×${k}×${n}`,
            );
            assert.ok(
              Math.abs(got32[i] - want[i]) < 4e-7 * (depth + 2),
              `${kind} f32 ${m}×${k}×${n}`,
            );
          }
        }
      }
    }
  },
});

Deno.test({
  name: "gradient checks pass under the blas backend",
  ignore: !blas,
  fn() {
    withBackend(blas!, () => {
      const net = new Sequential([
        new Dense(20, 30, { dtype: "float64", seed: 1 }),
        new ReLU(),
        new Dense(30, 10, { dtype: "float64", seed: 2 }),
      ]);
      const random = new RandomState(4);
      const x = new Tensor(Float64Array.from({ length: 16 * 20 }, () => random.random() - 0.5), [
        16,
        20,
      ]);
      const targets = Array.from({ length: 16 }, (_, i) => i % 10);
      const report = checkGradients(net, x, { loss: new SoftmaxCrossEntropy(), targets });
      assert.ok(report.maxRelativeError < 1e-6, report.toString());
    });
  },
});
