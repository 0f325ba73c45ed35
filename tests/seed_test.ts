// Every number printed in the book's backpropagation chapter (shared/seed/backpropagation.md),
// computed by chainrule's own Dense and ReLU.
import assert from "node:assert/strict";
import { Dense, ReLU, Tensor } from "../mod.ts";

const f64 = { dtype: "float64" } as const;

function assertClose(actual: Tensor, expected: number[][], tolerance = 1e-12): void {
  assert.deepEqual(actual.shape, [expected.length, expected[0].length]);
  const got = actual.toArray<number[][]>();
  expected.forEach((row, i) =>
    row.forEach((value, j) => {
      assert.ok(
        Math.abs(got[i][j] - value) <= tolerance,
        `element [${i}, ${j}]: got ${got[i][j]}, the book prints ${value}`,
      );
    })
  );
}

// The book's layer: three neurons' weights, stored transposed as [4 inputs, 3 neurons].
const bookWeights = [[0.2, 0.8, -0.5, 1], [0.5, -0.91, 0.26, -0.5], [-0.26, -0.27, 0.17, 0.87]];
const transposed = bookWeights[0].map((_, j) => bookWeights.map((row) => row[j]));
const bookInputs = [[1, 2, 3, 2.5], [2, 5, -1, 2], [-1.5, 2.7, 3.3, -0.8]];

Deno.test("the single neuron of In [158]-[161]", async (t) => {
  const neuron = new Dense(3, 1, { weights: [[-3], [-1], [2]], biases: [1], ...f64 });
  const relu = new ReLU();
  const y = relu.forward(neuron.forward(Tensor.from([[1, -2, 3]], f64)));

  await t.step("forward prints 6.0", () => assert.equal(y.get(0, 0), 6));

  const drelu = relu.backward(Tensor.from([[1]], f64));
  const dinputs = neuron.backward(drelu);
  await t.step("drelu_dz and drelu_db print 1.0", () => {
    assert.equal(drelu.get(0, 0), 1);
    assert.equal(neuron.biases.grad.get(0), 1);
  });
  await t.step("drelu_dx0 prints -3.0", () => assert.equal(dinputs.get(0, 0), -3));
  await t.step("dx0, dw0, dx1, dw1, dx2, dw2 print -3.0 1.0 -1.0 -2.0 2.0 3.0", () => {
    const dw = neuron.weights.grad;
    assert.deepEqual(
      [
        dinputs.get(0, 0),
        dw.get(0, 0),
        dinputs.get(0, 1),
        dw.get(1, 0),
        dinputs.get(0, 2),
        dw.get(2, 0),
      ],
      [-3, 1, -1, -2, 2, 3],
    );
  });
});

Deno.test("a ReLU at z ≤ 0 passes no gradient, as the chapter says", () => {
  const neuron = new Dense(3, 1, { weights: [[-3], [-1], [2]], biases: [-7], ...f64 });
  const relu = new ReLU();
  relu.forward(neuron.forward(Tensor.from([[1, -2, 3]], f64))); // z = -1
  const dinputs = neuron.backward(relu.backward(Tensor.from([[1]], f64)));
  assert.deepEqual(dinputs.toArray(), [[0, 0, 0]]);
});

Deno.test("In [162]: dinputs for dvalues [[1, 1, 1]] prints [0.44 -0.38 -0.07 1.37]", () => {
  const layer = new Dense(4, 3, { weights: transposed, ...f64 });
  layer.forward(Tensor.from([bookInputs[0]], f64));
  assertClose(layer.backward(Tensor.from([[1, 1, 1]], f64)), [[0.44, -0.38, -0.07, 1.37]]);
});

Deno.test("In [163]: batched dinputs = dvalues·Wᵀ", () => {
  const layer = new Dense(4, 3, { weights: transposed, ...f64 });
  layer.forward(Tensor.from(bookInputs, f64));
  const dinputs = layer.backward(Tensor.from([[1, 1, 1], [2, 2, 2], [3, 3, 3]], f64));
  assertClose(dinputs, [
    [0.44, -0.38, -0.07, 1.37],
    [0.88, -0.76, -0.14, 2.74],
    [1.32, -1.14, -0.21, 4.11],
  ]);
});

Deno.test("In [164]: dweights = inputsᵀ·dvalues", () => {
  const layer = new Dense(4, 3, { weights: transposed, ...f64 });
  layer.forward(Tensor.from(bookInputs, f64));
  layer.backward(Tensor.from([[1, 1, 1], [2, 2, 2], [3, 3, 3]], f64));
  assertClose(layer.weights.grad, [
    [0.5, 0.5, 0.5],
    [20.1, 20.1, 20.1],
    [10.9, 10.9, 10.9],
    [4.1, 4.1, 4.1],
  ]);
  assert.deepEqual(layer.biases.grad.toArray(), [6, 6, 6]);
});

Deno.test("the same numbers come out in float32, to float32 precision", () => {
  const layer = new Dense(4, 3, { weights: transposed });
  layer.forward(Tensor.from(bookInputs));
  layer.backward(Tensor.from([[1, 1, 1], [2, 2, 2], [3, 3, 3]]));
  assertClose(layer.weights.grad, [
    [0.5, 0.5, 0.5],
    [20.1, 20.1, 20.1],
    [10.9, 10.9, 10.9],
    [4.1, 4.1, 4.1],
  ], 1e-5);
});
