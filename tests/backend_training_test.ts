import assert from "node:assert/strict";
import {
  Adam,
  type Backend,
  checkGradients,
  Dense,
  ReLU,
  Sequential,
  SoftmaxCrossEntropy,
  spiralData,
  Tensor,
  withBackend,
} from "../mod.ts";
import { jsBackend, naiveBackend, wasmBackend } from "../plugin.ts";

const BACKENDS: Backend[] = [naiveBackend, jsBackend, wasmBackend];

for (const backend of BACKENDS) {
  Deno.test(`gradient checks pass under the ${backend.name} backend`, () => {
    withBackend(backend, () => {
      const net = new Sequential([
        new Dense(4, 5, { dtype: "float64", seed: 1 }),
        new ReLU(),
        new Dense(5, 3, { dtype: "float64", seed: 2 }),
      ]);
      const x = Tensor.from([[1, -2, 0.5, 3], [0.2, 0.1, -1, 2], [-0.5, 1, 1, -1]], {
        dtype: "float64",
      });
      const report = checkGradients(net, x, {
        loss: new SoftmaxCrossEntropy(),
        targets: [0, 2, 1],
      });
      assert.ok(report.maxRelativeError < 1e-6, report.toString());
      const lone = checkGradients(
        new Dense(6, 7, { dtype: "float64", seed: 3 }),
        Tensor.from(
          Array.from(
            { length: 5 },
            (_, i) => Array.from({ length: 6 }, (_, j) => Math.sin(i + 2 * j)),
          ),
          { dtype: "float64" },
        ),
      );
      assert.ok(lone.maxRelativeError < 1e-6, lone.toString());
    });
  });
}

function train(backend: Backend, dtype: "float32" | "float64"): number[] {
  return withBackend(backend, () => {
    const { x, y } = spiralData(50, 3, { dtype });
    const net = new Sequential([
      new Dense(2, 32, { dtype, seed: 1 }),
      new ReLU(),
      new Dense(32, 3, { dtype, seed: 2 }),
    ]);
    return net.fit(x, y, {
      loss: new SoftmaxCrossEntropy(),
      optimizer: new Adam({ learningRate: 0.02 }),
      epochs: 30,
    }).loss;
  });
}

Deno.test("training results do not depend on the backend beyond rounding", () => {
  const reference64 = train(naiveBackend, "float64");
  const reference32 = train(naiveBackend, "float32");
  for (const backend of BACKENDS) {
    const losses64 = train(backend, "float64");
    const losses32 = train(backend, "float32");
    losses64.forEach((loss, i) =>
      assert.ok(Math.abs(loss - reference64[i]) <= 1e-12 * reference64[i], `${backend.name} f64`)
    );
    losses32.forEach((loss, i) =>
      assert.ok(
        Math.abs(loss - reference32[i]) <= 1e-5 * reference32[i],
        `${backend.name} float32 epoch ${i}: ${loss} vs naive ${reference32[i]}`,
      )
    );
    assert.ok(losses32.at(-1)! < losses32[0]);
  }
});
