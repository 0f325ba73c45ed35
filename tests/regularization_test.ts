import assert from "node:assert/strict";
import { createLayer, Dense, ReLU, Sequential, SGD, SoftmaxCrossEntropy, Tensor } from "../mod.ts";
import { assertCloseTo, assertGradientsOf } from "./_assert.ts";

const f64 = { dtype: "float64" } as const;
const penalized = () =>
  new Dense(2, 2, {
    ...f64,
    weights: [[1, -2], [3, 0.5]],
    biases: [0.5, -1],
    weightRegularizerL1: 0.1,
    weightRegularizerL2: 0.01,
    biasRegularizerL1: 0.2,
    biasRegularizerL2: 0.3,
  });

Deno.test("L1 and L2 penalties of Dense", async (t) => {
  await t.step("hand-worked penalty", () => {
    // weights: 0.1·(1 + 2 + 3 + 0.5) + 0.01·(1 + 4 + 9 + 0.25) = 0.65 + 0.1425
    // biases:  0.2·(0.5 + 1) + 0.3·(0.25 + 1) = 0.3 + 0.375
    assert.ok(Math.abs(penalized().regularizationLoss() - 1.4675) < 1e-15);
  });
  await t.step("hand-worked penalty gradient: l1·sign(p) + 2·l2·p, added in backward", () => {
    const dense = penalized();
    dense.forward(Tensor.from([[0, 0]], f64));
    dense.backward(Tensor.zeros([1, 2], f64)); // no data gradient: only the penalties remain
    assertCloseTo(dense.weights.grad, [0.12, -0.14, 0.16, 0.11], 1e-15);
    assertCloseTo(dense.biases.grad, [0.5, -0.8], 1e-15);
  });
  await t.step("gradients with the penalties included match central differences", () => {
    assertGradientsOf("Dense (L1 + L2)");
  });
  await t.step("the runner reports the penalty beside the data loss", () => {
    const first = penalized();
    const model = new Sequential([first, new ReLU(), new Dense(2, 2, { ...f64, seed: 1 })]);
    const before = model.regularizationLoss();
    assert.ok(Math.abs(before - 1.4675) < 1e-15);
    const x = Tensor.from([[1, 2], [-1, 0.5]], f64);
    const options = { loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ learningRate: 0.1 }) };
    const step = model.trainBatch(x, [0, 1], options);
    assert.equal(step.regularizationLoss, before); // measured before the update
    assert.ok(model.regularizationLoss() < before, "the update shrinks the penalized weights");
    const history = model.fit(x, [0, 1], { ...options, epochs: 2 });
    assert.equal(history.regularizationLoss.length, 2);
    assert.ok(history.regularizationLoss[1] < history.regularizationLoss[0]);
  });
  await t.step("the penalties survive config() and reject negative values", () => {
    const copy = createLayer("Dense", JSON.parse(JSON.stringify(penalized().config()))) as Dense;
    assert.equal(copy.weightRegularizerL1, 0.1);
    assert.equal(copy.biasRegularizerL2, 0.3);
    assert.throws(() => new Dense(2, 2, { weightRegularizerL2: -1 }), {
      name: "RangeError",
      message: "new Dense: weightRegularizerL2 must be a finite number ≥ 0, got -1",
    });
  });
});
