import assert from "node:assert/strict";
import {
  BinaryCrossEntropy,
  CategoricalCrossEntropy,
  createLoss,
  Dense,
  Huber,
  type Loss,
  MeanAbsoluteError,
  MeanSquaredError,
  Sequential,
  Sigmoid,
  SoftmaxCrossEntropy,
  Tensor,
} from "../mod.ts";
import { assertCloseTo, assertGradientsOf } from "./_assert.ts";

const f64 = { dtype: "float64" } as const;
const bookOutputs = [[0.7, 0.1, 0.2], [0.1, 0.5, 0.4], [0.02, 0.9, 0.08]];

Deno.test("CategoricalCrossEntropy", async (t) => {
  await t.step("the book's value for class indices and for one-hot rows", () => {
    // −(log 0.7 + log 0.5 + log 0.9) / 3, printed by the book as 0.38506088005216804.
    const loss = new CategoricalCrossEntropy();
    const p = Tensor.from(bookOutputs, f64);
    assert.ok(Math.abs(loss.forward(p, [0, 1, 1]) - 0.38506088005216804) < 1e-15);
    const oneHot = Tensor.from([[1, 0, 0], [0, 1, 0], [0, 1, 0]], f64);
    assert.ok(Math.abs(loss.forward(p, oneHot) - 0.38506088005216804) < 1e-15);
  });
  await t.step("backward is −y / p / batch, the book's", () => {
    const loss = new CategoricalCrossEntropy();
    loss.forward(Tensor.from(bookOutputs, f64), [0, 1, 1]);
    assertCloseTo(loss.backward(), [-1 / 0.7 / 3, 0, 0, 0, -1 / 0.5 / 3, 0, 0, -1 / 0.9 / 3, 0]);
  });
  await t.step("clipping: p = 0 costs −log(1e-7) and a clipped p passes no gradient", () => {
    const loss = new CategoricalCrossEntropy();
    const value = loss.forward(Tensor.from([[0, 1], [1, 0]], f64), [0, 0]);
    assert.ok(Math.abs(value - (-Math.log(1e-7) - Math.log(1 - 1e-7)) / 2) < 1e-12);
    // Both probabilities lie outside [1e-7, 1 − 1e-7], where the clipped value is flat.
    assert.deepEqual(Array.from(loss.backward().data, Math.abs), [0, 0, 0, 0]);
  });
  await t.step("gradients match central differences", () => {
    assertGradientsOf("CategoricalCrossEntropy");
  });
});

Deno.test("BinaryCrossEntropy", async (t) => {
  await t.step("hand-worked value and gradient for two outputs", () => {
    // Sample 0: y = [1, 0], p = [0.9, 0.2]; sample 1: y = [0, 1], p = [0.4, 0.5].
    const loss = new BinaryCrossEntropy();
    const p = Tensor.from([[0.9, 0.2], [0.4, 0.5]], f64);
    const value = loss.forward(p, Tensor.from([[1, 0], [0, 1]], f64));
    const expected = -(Math.log(0.9) + Math.log(0.8) + Math.log(0.6) + Math.log(0.5)) / 4;
    assert.ok(Math.abs(value - expected) < 1e-15);
    // −(y/p − (1−y)/(1−p)) / 2 outputs / 2 samples
    assertCloseTo(loss.backward(), [-1 / 0.9 / 4, 1 / 0.8 / 4, 1 / 0.6 / 4, -1 / 0.5 / 4], 1e-15);
  });
  await t.step("the book's binary targets: a [batch, 1] column or a flat [batch] array", () => {
    const p = Tensor.from([[0.9], [0.2], [0.7]], f64);
    const column = new BinaryCrossEntropy().forward(p, Tensor.from([[1], [0], [1]], f64));
    const flat = new BinaryCrossEntropy().forward(p, [1, 0, 1]);
    const indices = new BinaryCrossEntropy().forward(p, Int32Array.from([1, 0, 1]));
    assert.equal(flat, column);
    assert.equal(indices, column);
    assert.ok(Math.abs(column - -(Math.log(0.9) + Math.log(0.8) + Math.log(0.7)) / 3) < 1e-15);
  });
  await t.step("clipping: p = 0 and p = 1 give finite values and zero gradients", () => {
    const loss = new BinaryCrossEntropy();
    const value = loss.forward(Tensor.from([[0], [1]], f64), [1, 0]);
    assert.ok(Math.abs(value - -Math.log(1e-7)) < 1e-9, `${value}`);
    assert.deepEqual(Array.from(loss.backward().data, Math.abs), [0, 0]);
  });
  await t.step("targets outside [0, 1] are rejected", () => {
    assert.throws(() => new BinaryCrossEntropy().forward(Tensor.from([[0.5], [0.5]]), [1, 2]), {
      name: "RangeError",
      message: "BinaryCrossEntropy.forward: target 2 at sample 1, output 0 must be in [0, 1]",
    });
  });
  await t.step(
    "gradients match central differences",
    () => assertGradientsOf("BinaryCrossEntropy"),
  );
});

Deno.test("MeanSquaredError", async (t) => {
  await t.step("hand-worked value and gradient", () => {
    // Residuals [[0.5, −1], [2, 0]]: (0.25 + 1 + 4 + 0) / 4 = 1.3125.
    const loss = new MeanSquaredError();
    const value = loss.forward(
      Tensor.from([[1.5, 0], [3, -1]], f64),
      Tensor.from([[1, 1], [1, -1]], f64),
    );
    assert.equal(value, 1.3125);
    // 2·r / 2 outputs / 2 samples = r / 2
    assert.deepEqual(loss.backward().toArray(), [[0.25, -0.5], [1, 0]]);
  });
  await t.step("gradients match central differences", () => assertGradientsOf("MeanSquaredError"));
});

Deno.test("MeanAbsoluteError", async (t) => {
  await t.step("hand-worked value and gradient, 0 at an exact hit", () => {
    const loss = new MeanAbsoluteError();
    const value = loss.forward(
      Tensor.from([[1.5, 0], [3, -1]], f64),
      Tensor.from([[1, 1], [1, -1]], f64),
    );
    assert.equal(value, 0.875); // (0.5 + 1 + 2 + 0) / 4
    assert.deepEqual(loss.backward().toArray(), [[0.25, -0.25], [0.25, 0]]);
  });
  await t.step("gradients match central differences", () => assertGradientsOf("MeanAbsoluteError"));
});

Deno.test("Huber", async (t) => {
  await t.step("hand-worked value and gradient on both sides of delta", () => {
    // delta 2, residuals [1, −3, 2, 0.5]: 0.5, 2·(3 − 1) = 4, 2 (|r| = delta: quadratic), 0.125.
    const loss = new Huber({ delta: 2 });
    const value = loss.forward(Tensor.from([[1, -3], [2, 0.5]], f64), Tensor.zeros([2, 2], f64));
    assert.equal(value, (0.5 + 4 + 2 + 0.125) / 4);
    // r or ±delta, / 2 outputs / 2 samples
    assert.deepEqual(loss.backward().toArray(), [[0.25, -0.5], [0.5, 0.125]]);
  });
  await t.step("delta must be positive", () => {
    assert.throws(() => new Huber({ delta: 0 }), {
      name: "RangeError",
      message: "new Huber: delta must be a finite number > 0, got 0",
    });
  });
  await t.step("gradients match central differences", () => assertGradientsOf("Huber"));
});

const valueLosses: [string, () => Loss][] = [
  ["BinaryCrossEntropy()", () => new BinaryCrossEntropy()],
  ["MeanSquaredError()", () => new MeanSquaredError()],
  ["MeanAbsoluteError()", () => new MeanAbsoluteError()],
  ["Huber(delta=0.5)", () => new Huber({ delta: 0.5 })],
];
const classLosses: [string, () => Loss][] = [
  ["CategoricalCrossEntropy()", () => new CategoricalCrossEntropy()],
  ["SoftmaxCrossEntropy()", () => new SoftmaxCrossEntropy()],
];

Deno.test("every loss", async (t) => {
  const outputs = Tensor.from([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], f64);
  for (const [summary, make] of [...valueLosses, ...classLosses]) {
    const kind = summary.split("(")[0];
    await t.step(`${summary}: backward before forward is an error`, () => {
      assert.throws(() => make().backward(), { message: `${kind}.backward: call forward first` });
    });
    await t.step(`${summary}: rebuilds from its config through the registry`, () => {
      const loss = make();
      assert.equal(
        createLoss(loss.kind, JSON.parse(JSON.stringify(loss.config()))).toString(),
        summary,
      );
    });
    await t.step(`${summary}: targets of the wrong shape are rejected, naming both shapes`, () => {
      assert.throws(() => make().forward(outputs, Tensor.zeros([2, 2], f64)), {
        name: "TypeError",
        message: new RegExp(`^${kind}\\.forward: .*shape \\[2, 2\\].*\\[2, 3\\]`),
      });
    });
    await t.step(`${summary}: 1-D outputs are rejected`, () => {
      // The class losses take [batch, …, classes] of any rank ≥ 2.
      const expected = classLosses.some(([name]) => name === summary)
        ? "outputs must be [batch, classes] or [batch, …, classes], got shape [2]"
        : "outputs must be 2-D [batch, features], got shape [2]";
      assert.throws(() => make().forward(Tensor.from([0.5, 0.5]), [1, 0]), {
        name: "TypeError",
        message: `${kind}.forward: ${expected}`,
      });
    });
  }
  for (const [summary, make] of valueLosses) {
    await t.step(`${summary}: a flat [batch] target needs a single output`, () => {
      assert.throws(() => make().forward(outputs, [1, 0]), {
        name: "TypeError",
        message: `${summary.split("(")[0]}.forward: targets have shape [2], expected [2, 3] ` +
          "like the outputs (outputs shape [2, 3])",
      });
      const single = Tensor.from([[0.25], [0.75]], f64);
      assert.throws(() => make().forward(single, [1, 0, 1]), {
        message: /targets have shape \[3\], expected \[2, 1\] or \[2\] like the outputs/,
      });
    });
  }
});

Deno.test("fit trains with per-output targets given as a plain array, mini-batched", () => {
  // takeTargets keeps a plain array's values as numbers, so 0.25 is not cut to 0.
  const x = Tensor.from([[0], [1], [2], [3]], f64);
  const model = new Sequential([new Dense(1, 1, { weights: [[1]], ...f64 }), new Sigmoid()]);
  const loss = new MeanSquaredError();
  const history = model.fit(x, [0.25, 0.5, 0.75, 1], {
    loss,
    optimizer: { kind: "none", step() {}, config: () => ({}), toString: () => "none" },
    epochs: 1,
    batchSize: 2,
    shuffle: false,
  });
  const p = [0, 1, 2, 3].map((v) => 1 / (1 + Math.exp(-v)));
  const expected = p.reduce((sum, v, i) => sum + (v - [0.25, 0.5, 0.75, 1][i]) ** 2, 0) / 4;
  assert.ok(Math.abs(history.loss[0] - expected) < 1e-15);
});

Deno.test("class losses on sequences [batch, T, classes]", async (t) => {
  for (const [summary, make] of classLosses) {
    const kind = summary.split("(")[0];
    await t.step(`${kind}: the mean over batch·T positions, as rows [batch·T, classes]`, () => {
      // Two sequences of two positions, probabilities that a softmax could give.
      const rows = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.2, 0.5, 0.3]];
      const flat = Tensor.from(rows, f64);
      const sequence = flat.reshape([2, 2, 3]);
      const labels = [0, 1, 2, 1];
      const reference = make();
      const value = reference.forward(flat, labels);
      const gradient = reference.backward().data.slice();
      for (const targets of [Tensor.from([[0, 1], [2, 1]]), labels]) {
        const loss = make();
        assert.equal(loss.forward(sequence, targets), value);
        const d = loss.backward();
        assert.deepEqual(d.shape, [2, 2, 3]);
        assert.deepEqual(d.data, gradient);
      }
      // One-hot rows shaped like the outputs are rows, not indices.
      const oneHot = Tensor.from([[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [0, 1, 0]]], f64);
      assert.equal(make().forward(sequence, oneHot), value);
    });
    await t.step(`${kind}: ignoreIndex leaves rank-2 samples out of the mean`, () => {
      const p = Tensor.from(bookOutputs, f64);
      const loss = createLoss(kind, { ignoreIndex: 1 });
      const all = make().forward(p, [0, 1, 1]);
      const kept = make().forward(Tensor.from([bookOutputs[0]], f64), [0]);
      assert.ok(Math.abs(all - kept) > 0.005);
      assert.equal(loss.forward(p, [0, 1, 1]), kept);
      const d = loss.backward().toArray<number[][]>();
      assert.deepEqual([...d[1], ...d[2]].map(Math.abs), [0, 0, 0, 0, 0, 0]);
      // Without ignored labels the value is the plain one, bit for bit.
      assert.equal(loss.forward(p, [0, 2, 0]), make().forward(p, [0, 2, 0]));
      // ignoreIndex does not apply to one-hot rows.
      const oneHot = Tensor.from([[1, 0, 0], [0, 1, 0], [0, 1, 0]], f64);
      assert.equal(loss.forward(p, oneHot), all);
    });
  }
});
