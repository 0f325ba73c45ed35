import assert from "node:assert/strict";
import {
  Adam,
  BatchNorm,
  createLayer,
  Dense,
  Sequential,
  SoftmaxCrossEntropy,
  Tensor,
} from "../mod.ts";
import { assertCloseTo, assertGradientsOf } from "./_assert.ts";

const f64 = { dtype: "float64" } as const;
// epsilon must be > 0; 1e-300 vanishes next to the variances below, so values come out exact.
const TINY = 1e-300;

Deno.test("BatchNorm", async (t) => {
  await t.step("training: per-channel batch statistics, worked by hand", () => {
    const norm = new BatchNorm(2, { ...f64, epsilon: TINY });
    // [2, 2, 1, 2]: channel 0 holds 1, 3, 1, 3 (mean 2, variance 1); channel 1 holds 0, 4,
    // 4, 0 (mean 2, variance 4).
    const x = Tensor.from([[[[1, 3]], [[0, 4]]], [[[1, 3]], [[4, 0]]]], f64);
    assert.deepEqual(norm.forward(x, { training: true }).toArray(), [
      [[[-1, 1]], [[-1, 1]]],
      [[[-1, 1]], [[1, -1]]],
    ]);
    // running = 0.9·running + 0.1·batch, with the unbiased variance (·4/3) as PyTorch.
    assertCloseTo(norm.runningMean, [0.2, 0.2]);
    assertCloseTo(norm.runningVar, [0.9 + 0.1 * 4 / 3, 0.9 + 0.1 * 16 / 3]);
    assert.equal(norm.numBatchesTracked.data[0], 1);
    norm.forward(x, { training: true });
    assertCloseTo(norm.runningMean, [0.38, 0.38]);
    assert.equal(norm.numBatchesTracked.data[0], 2);
  });
  await t.step("gamma scales and beta shifts; [batch, features] works per feature", () => {
    const norm = new BatchNorm(2, { ...f64, epsilon: TINY, gamma: [2, 3], beta: [1, -1] });
    const out = norm.forward(Tensor.from([[0, 10], [2, 30]], f64), { training: true });
    assertCloseTo(out, [-1, -4, 3, 2]);
  });
  await t.step("inference normalizes with the running statistics", () => {
    const norm = new BatchNorm(1, { ...f64, epsilon: TINY, gamma: [2], beta: [1] });
    norm.runningMean.data[0] = 1;
    norm.runningVar.data[0] = 4;
    assert.deepEqual(norm.forward(Tensor.from([[5], [1], [-3]], f64)).toArray(), [[5], [1], [
      -3,
    ]]);
    assert.equal(norm.numBatchesTracked.data[0], 0, "inference updates nothing");
    assert.deepEqual([...norm.runningMean.data], [1]);
  });
  await t.step("momentum 0 keeps the running statistics; momentum 1 takes the batch's", () => {
    const x = Tensor.from([[1], [3]], f64);
    const still = new BatchNorm(1, { ...f64, momentum: 0 });
    still.forward(x, { training: true });
    assert.deepEqual([...still.runningMean.data, ...still.runningVar.data], [0, 1]);
    const follows = new BatchNorm(1, { ...f64, momentum: 1 });
    follows.forward(x, { training: true });
    assert.deepEqual([...follows.runningMean.data, ...follows.runningVar.data], [2, 2]);
  });
  await t.step("gradients match central differences, through the mean and the variance", () => {
    assertGradientsOf("BatchNorm");
  });
  await t.step("params are [gamma, beta]; the running statistics are buffers", () => {
    const norm = new BatchNorm(3);
    assert.deepEqual(norm.params().map((p) => p.name), ["gamma", "beta"]);
    assert.deepEqual(norm.buffers().map((b) => `${b.name} [${b.value.shape}]`), [
      "runningMean [3]",
      "runningVar [3]",
      "numBatchesTracked []",
    ]);
    assert.deepEqual([...norm.gamma.value.data, ...norm.beta.value.data], [1, 1, 1, 0, 0, 0]);
  });
  await t.step("an optimizer never touches the running statistics", () => {
    const norm = new BatchNorm(4, { momentum: 0 });
    const model = new Sequential([
      new Dense(3, 4, { seed: 1 }),
      norm,
      new Dense(4, 2, { seed: 2 }),
    ]);
    const x = Tensor.randn([8, 3], { seed: 3 });
    model.fit(x, [0, 1, 0, 1, 1, 0, 1, 0], {
      loss: new SoftmaxCrossEntropy(),
      optimizer: new Adam({ learningRate: 0.1 }),
      epochs: 5,
    });
    assert.deepEqual([...norm.runningMean.data], [0, 0, 0, 0]);
    assert.deepEqual([...norm.runningVar.data], [1, 1, 1, 1]);
    assert.equal(norm.numBatchesTracked.data[0], 5);
    assert.notDeepEqual([...norm.gamma.value.data], [1, 1, 1, 1], "gamma is trained");
  });
  await t.step("config rebuilds it; toString shows what is not default", () => {
    const norm = new BatchNorm(16, { momentum: 0.01, epsilon: 1e-3 });
    assert.deepEqual(norm.config(), {
      features: 16,
      momentum: 0.01,
      epsilon: 1e-3,
      dtype: "float32",
    });
    assert.equal(createLayer("BatchNorm", norm.config()).toString(), norm.toString());
    assert.equal(norm.toString(), "BatchNorm(features=16, momentum=0.01, epsilon=0.001)");
    assert.equal(new BatchNorm(8).toString(), "BatchNorm(features=8)");
  });
  await t.step("a batch of one image still has a variance per channel, as in PyTorch", () => {
    const norm = new BatchNorm(2);
    const out = norm.forward(Tensor.randn([1, 2, 3, 3], { seed: 4 }), { training: true });
    assert.deepEqual(out.shape, [1, 2, 3, 3]);
    assert.deepEqual(norm.forward(Tensor.zeros([1, 2])).shape, [1, 2], "inference: any batch");
  });
  await t.step("bad options and backward before forward are errors", () => {
    assert.throws(() => new BatchNorm(0), {
      name: "RangeError",
      message: "new BatchNorm: features must be a positive integer, got 0",
    });
    assert.throws(() => new BatchNorm(2, { momentum: 1.5 }), {
      name: "RangeError",
      message: "new BatchNorm: momentum must be a number in [0, 1], got 1.5",
    });
    assert.throws(() => new BatchNorm(2).backward(Tensor.zeros([2, 2])), {
      message: "BatchNorm.backward: call forward first",
    });
    const norm = new BatchNorm(2);
    norm.forward(Tensor.zeros([3, 2]), { training: true });
    assert.throws(() => norm.backward(Tensor.zeros([3, 3])), {
      name: "TypeError",
      message:
        "BatchNorm.backward: dvalues is float32 [3, 3], expected float32 [3, 2] like the last forward's outputs",
    });
  });
});
