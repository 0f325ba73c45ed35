// Issue 18, "Non-finite values are caught where they enter": explicit weights (NaN, ±Infinity,
// float32 overflow, ragged or string nesting), predict's inputs, BatchNorm's and LayerNorm's
// epsilon, and trainStep's loss. Loaders are tested with the files (tests/model_io_test.ts).
import assert from "node:assert/strict";
import {
  Adam,
  BatchNorm,
  Conv2D,
  Dense,
  Embedding,
  GRU,
  type Layer,
  LayerNorm,
  LSTM,
  MeanSquaredError,
  MultiHeadAttention,
  NonFiniteLossError,
  PositionalEmbedding,
  ReLU,
  Sequential,
  SGD,
  SoftmaxCrossEntropy,
  Tensor,
} from "../mod.ts";

const f64 = { dtype: "float64" } as const;

// Every value of every parameter, copied.
function snapshot(model: Sequential): number[][] {
  return model.params().map((p) => [...p.value.data]);
}

Deno.test("explicit weights: NaN and ±Infinity are refused by every constructor", async (t) => {
  // [what, a constructor given a bad value at a known place, the message]
  const cases: [string, () => Layer, string][] = [
    [
      "Dense weights (nested)",
      () => new Dense(2, 2, { weights: [[1, 2], [NaN, 3]] }),
      "new Dense: weights[1][0] is NaN; weights must be finite numbers",
    ],
    [
      "Dense biases",
      () => new Dense(2, 2, { biases: [0, Infinity] }),
      "new Dense: biases[1] is Infinity; biases must be finite numbers",
    ],
    [
      "Dense weights (a flat Float64Array)",
      () => new Dense(2, 2, { weights: new Float64Array([1, 2, 3, -Infinity]) }),
      "new Dense: weights[3] is -Infinity; weights must be finite numbers",
    ],
    [
      "Conv2D weights",
      () => new Conv2D(1, 1, 2, { weights: [[[[1, 2], [3, NaN]]]] }),
      "new Conv2D: weights[0][0][1][1] is NaN; weights must be finite numbers",
    ],
    [
      "Conv2D biases",
      () => new Conv2D(1, 2, 1, { biases: [NaN, 0] }),
      "new Conv2D: biases[0] is NaN; biases must be finite numbers",
    ],
    [
      "Embedding weights",
      () => new Embedding(2, 2, { weights: [[0, 0], [0, NaN]] }),
      "new Embedding: weights[1][1] is NaN; weights must be finite numbers",
    ],
    [
      "PositionalEmbedding weights",
      () => new PositionalEmbedding(2, 1, { weights: [[Infinity], [0]] }),
      "new PositionalEmbedding: weights[0][0] is Infinity; weights must be finite numbers",
    ],
    [
      "LSTM inputBiases",
      () => new LSTM(1, 1, { inputBiases: [0, 0, NaN, 0] }),
      "new LSTM: inputBiases[2] is NaN; inputBiases must be finite numbers",
    ],
    [
      "GRU recurrentWeights",
      () => new GRU(1, 1, { recurrentWeights: [[0, NaN, 0]] }),
      "new GRU: recurrentWeights[0][1] is NaN; recurrentWeights must be finite numbers",
    ],
    [
      "MultiHeadAttention outProjWeights",
      () => new MultiHeadAttention(2, 1, { outProjWeights: [[1, 0], [0, NaN]] }),
      "new MultiHeadAttention: outProjWeights[1][1] is NaN; outProjWeights must be finite numbers",
    ],
    [
      "LayerNorm gamma",
      () => new LayerNorm(2, { gamma: [1, NaN] }),
      "new LayerNorm: gamma[1] is NaN; gamma must be finite numbers",
    ],
    [
      "BatchNorm beta",
      () => new BatchNorm(2, { beta: [-Infinity, 0] }),
      "new BatchNorm: beta[0] is -Infinity; beta must be finite numbers",
    ],
  ];
  for (const [what, build, message] of cases) {
    await t.step(what, () => {
      assert.throws(build, { name: "RangeError", message });
    });
  }
  await t.step("finite weights are copied exactly, nested or flat", () => {
    const nested = new Dense(2, 3, { ...f64, weights: [[1, 2, 3], [4, 5, 6]], biases: [7, 8, 9] });
    assert.deepEqual([...nested.weights.value.data], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual([...nested.biases.value.data], [7, 8, 9]);
    const flat = new Dense(2, 3, { ...f64, weights: new Float32Array([1, 2, 3, 4, 5, 6]) });
    assert.deepEqual([...flat.weights.value.data], [1, 2, 3, 4, 5, 6]);
    const conv = new Conv2D(1, 2, 1, { weights: [1, 2] });
    assert.deepEqual([...conv.weights.value.data], [1, 2]);
  });
});

Deno.test("explicit weights: a float64 value that overflows float32 is an error", async (t) => {
  await t.step("1e300 in a float32 layer's weights (nested, or a Float64Array)", () => {
    const message = "new Dense: weights[1][1] is 1e+300, which overflows float32 (largest " +
      '3.4028234663852886e+38); scale weights down, or build the layer with dtype "float64"';
    assert.throws(() => new Dense(2, 2, { weights: [[1, 2], [3, 1e300]] }), {
      name: "RangeError",
      message,
    });
    assert.throws(() => new Dense(2, 2, { weights: new Float64Array([1, 2, 3, -1e300]) }), {
      name: "RangeError",
      message: message.replace("weights[1][1] is 1e+300", "weights[3] is -1e+300"),
    });
  });
  await t.step("a float64 layer keeps 1e300 as it is", () => {
    const dense = new Dense(2, 2, { ...f64, weights: [[1, 2], [3, 1e300]] });
    assert.deepEqual([...dense.weights.value.data], [1, 2, 3, 1e300]);
  });
  await t.step("the float32 boundary: what rounds to the largest float32 passes, no more", () => {
    const max = 3.4028234663852886e38;
    const rounds = new Dense(1, 2, { weights: [[3.4028235e38, -max]] }); // rounds down to max
    assert.deepEqual([...rounds.weights.value.data], [max, -max]);
    assert.throws(() => new Dense(1, 2, { weights: [[0, 3.41e38]] }), {
      name: "RangeError",
      message: /new Dense: weights\[0\]\[1\] is 3\.41e\+38, which overflows float32/,
    });
    // The smallest values round to 0 (underflow is rounding, not an error).
    assert.deepEqual([...new Dense(1, 1, { weights: [[1e-60]] }).weights.value.data], [0]);
  });
  await t.step("LayerNorm's and Conv2D's float32 params too", () => {
    assert.throws(() => new LayerNorm(1, { beta: [1e39] }), {
      name: "RangeError",
      message: /^new LayerNorm: beta\[0\] is 1e\+39, which overflows float32/,
    });
    assert.throws(() => new Conv2D(1, 1, 1, { biases: [-1e39] }), {
      name: "RangeError",
      message: /^new Conv2D: biases\[0\] is -1e\+39, which overflows float32/,
    });
  });
});

Deno.test("explicit weights: ragged or string nesting is blamed on the constructor", async (t) => {
  await t.step("ragged Conv2D weights name the layer and the short row", () => {
    assert.throws(
      () => new Conv2D(1, 2, 2, { weights: [[[[1, 2], [3, 4]]], [[[1, 2], [3]]]] }),
      {
        name: "TypeError",
        message:
          "new Conv2D: weights is ragged: weights[1][0][1] has length 1, while weights[0][0][0] has 2",
      },
    );
    assert.throws(() => new Dense(2, 2, { weights: [[1, 2], 3] as unknown as number[][] }), {
      name: "TypeError",
      message:
        "new Dense: weights is ragged: weights[1] is the number 3, while weights[0] is an array of 2",
    });
  });
  await t.step("strings (first or later) are shown as strings, at their indices", () => {
    const strings = [[[["0.5"]]]] as unknown as number[][][][];
    assert.throws(() => new Conv2D(1, 1, 1, { weights: strings }), {
      name: "TypeError",
      message:
        'new Conv2D: weights[0][0][0][0] must be a number or an array of numbers, got a string ("0.5")',
    });
    const later = [[1, "2"], [3, 4]] as unknown as number[][];
    assert.throws(() => new Dense(2, 2, { weights: later }), {
      name: "TypeError",
      message:
        'new Dense: weights[0][1] must be a number, got a string ("2") (weights must be nested ' +
        "arrays of numbers, or a flat array)",
    });
    assert.throws(() => new Dense(2, 2, { biases: null as unknown as number[] }), {
      name: "TypeError",
      message: "new Dense: biases must be a number or an array of numbers, got null",
    });
  });
  await t.step("a nested shape must be the param's shape, not just its size", () => {
    assert.throws(() => new Dense(2, 3, { weights: [[1, 2], [3, 4], [5, 6]] }), {
      name: "TypeError",
      message: "new Dense: weights has shape [3, 2], expected [2, 3]",
    });
  });
});

Deno.test("BatchNorm and LayerNorm require epsilon > 0", async (t) => {
  await t.step("epsilon 0, negative, NaN or Infinity is refused", () => {
    for (const epsilon of [0, -1e-5, NaN, Infinity]) {
      assert.throws(() => new BatchNorm(2, { epsilon }), {
        name: "RangeError",
        message: `new BatchNorm: epsilon must be a finite number > 0 (with 0, a constant ` +
          `feature gives 0/0 = NaN), got ${epsilon}`,
      });
      assert.throws(() => new LayerNorm(2, { epsilon }), {
        name: "RangeError",
        message: `new LayerNorm: epsilon must be a finite number > 0 (with 0, a row of equal ` +
          `values gives 0/0 = NaN), got ${epsilon}`,
      });
    }
  });
  await t.step("a constant input gives finite outputs, in training and at inference", () => {
    // The case: with epsilon 0 this was NaN, and the running variance went to 0.
    for (const dtype of ["float32", "float64"] as const) {
      const norm = new BatchNorm(2, { dtype, epsilon: 1e-300 });
      const x = Tensor.filled([4, 2], 3, { dtype });
      for (let i = 0; i < 200; i++) {
        assert.deepEqual([...norm.forward(x, { training: true }).data], new Array(8).fill(0));
      }
      assert.ok(norm.runningVar.data[0] < 1e-8, `running variance ${norm.runningVar.data[0]}`);
      assert.ok(norm.forward(x).data.every(Number.isFinite));
      const layer = new LayerNorm(2, { dtype, epsilon: Number.MIN_VALUE });
      assert.deepEqual([...layer.forward(Tensor.filled([3, 2], 5, { dtype })).data], [
        0,
        0,
        0,
        0,
        0,
        0,
      ]);
    }
  });
});

Deno.test("predict checks its inputs as fit does", async (t) => {
  const model = () => new Sequential([new Dense(2, 3, { seed: 1 }), new ReLU()]);
  await t.step("NaN and ±Infinity are refused, named by sample and feature", () => {
    assert.throws(() => model().predict([[1, 2], [NaN, 1]]), {
      name: "RangeError",
      message:
        "Sequential.predict: x holds NaN at sample 1, feature 0 (x shape [2, 2]); remove or " +
        "impute non-finite values first, or pass { allowNonFinite: true } to predict anyway",
    });
    assert.throws(() => model().predict(Tensor.from([[1, -Infinity]]), { batchSize: 1 }), {
      name: "RangeError",
      message:
        /^Sequential\.predict: x holds -Infinity at sample 0, feature 1 \(x shape \[1, 2\]\)/,
    });
    // As fit names the same value.
    assert.throws(
      () =>
        model().fit([[1, 2], [NaN, 1]], [0, 1], {
          loss: new SoftmaxCrossEntropy(),
          optimizer: new SGD(),
          epochs: 1,
        }),
      { name: "RangeError", message: /x holds NaN at sample 1, feature 0 \(x shape \[2, 2\]\)/ },
    );
  });
  await t.step("images name the position: sample, [channel, row, column]", () => {
    const conv = new Sequential([new Conv2D(1, 1, 1, { seed: 1 })]);
    const x = Tensor.zeros([2, 1, 2, 3]);
    x.set(NaN, 1, 0, 1, 2);
    assert.throws(() => conv.predict(x), {
      name: "RangeError",
      message: /^Sequential\.predict: x holds NaN at sample 1, feature \[0, 1, 2\]/,
    });
  });
  await t.step("{ allowNonFinite: true } lets them through, whole or in batches", () => {
    const m = model();
    const out = m.predict([[1, 2], [NaN, 1]], { allowNonFinite: true });
    assert.deepEqual(out.shape, [2, 3]);
    assert.ok(out.data.slice(0, 3).every(Number.isFinite));
    assert.ok(out.data.slice(3).every(Number.isNaN));
    const batched = m.predict([[1, 2], [NaN, 1]], { allowNonFinite: true, batchSize: 1 });
    assert.deepEqual([...batched.data.slice(0, 3)], [...out.data.slice(0, 3)]);
    assert.throws(() => m.predict([[1, 2]], { allowNonFinite: "yes" as unknown as boolean }), {
      name: "TypeError",
      message: 'Sequential.predict: allowNonFinite must be a boolean, got a string ("yes")',
    });
  });
  await t.step("finite inputs predict as before", () => {
    const m = model();
    const x = [[1, 2], [3, -4]];
    assert.deepEqual([...m.predict(x).data], [...m.forward(Tensor.from(x)).data]);
  });
  await t.step("a float64 value too large for a float32 model is named as an overflow", () => {
    assert.throws(() => model().predict(Tensor.from([[1, 2], [3, 1e300]], f64)), {
      name: "RangeError",
      message:
        "Sequential.predict: x holds 1e+300 at sample 1, feature 1 (x shape [2, 2]), which " +
        "overflows float32 (largest 3.4028234663852886e+38); scale the inputs down, or use a " +
        "float64 model",
    });
    assert.throws(() => model().predict([[-1e40, 2]]), {
      name: "RangeError",
      message: /^Sequential\.predict: x holds -1e\+40 at sample 0, feature 0 .* overflows float32/,
    });
    // A float64 model takes it.
    const wide = new Sequential([new Dense(2, 1, { ...f64, weights: [[0], [1e-300]] })]);
    assert.deepEqual([...wide.predict([[1, 1e300]]).data], [1]);
  });
});

Deno.test("trainStep throws NonFiniteLossError before updating the weights", async (t) => {
  await t.step("SGD at 1e30: the first step returns a loss, the next refuses", () => {
    // The case: it returned 1.08, NaN, NaN, NaN, and every weight became NaN.
    const model = new Sequential([new Dense(2, 3, { seed: 1 }), new Dense(3, 2, { seed: 2 })]);
    const step = { loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ learningRate: 1e30 }) };
    const x = [[1, 2], [3, -1]];
    const first = model.trainStep(x, [0, 1], step);
    assert.ok(Number.isFinite(first), `first loss ${first}`);
    const before = snapshot(model);
    for (let i = 0; i < 3; i++) {
      assert.throws(() => model.trainStep(x, [0, 1], step), (error: unknown) => {
        assert.ok(error instanceof NonFiniteLossError);
        assert.equal(
          error.message,
          "Sequential.trainStep: the loss is NaN at step 1 (this model's trainStep calls, " +
            "from 0); the weights were not updated (a lower learning rate or scaled inputs " +
            "usually cure this)",
        );
        assert.equal(error.batch, 1);
        assert.ok(Number.isNaN(error.value));
        return true;
      });
      assert.deepEqual(snapshot(model), before, "the weights are those after step 0");
    }
    assert.ok(before.flat().every((v) => !Number.isNaN(v)), "no weight became NaN");
  });
  await t.step("a parameter already non-finite is named; the optimizer is not stepped", () => {
    const model = new Sequential([new Dense(1, 1, { ...f64, weights: [[1]], biases: [0] })]);
    const optimizer = new Adam({ learningRate: 0.1 });
    const step = { loss: new MeanSquaredError(), optimizer };
    model.trainStep([[1]], [[2]], step);
    const state = () => {
      const { scalars, slots } = optimizer.getState(model.params());
      return { scalars, slots: Object.values(slots).flat().map((t) => [...t.data]) };
    };
    const moments = state();
    model.params()[0].value.data[0] = Infinity; // as a diverged step would leave it
    const before = snapshot(model);
    assert.throws(() => model.trainStep([[1]], [[2]], step), {
      name: "NonFiniteLossError",
      message: "Sequential.trainStep: the loss is Infinity at step 1 (this model's trainStep " +
        "calls, from 0); the weights were not updated, but layer 0 (Dense(in=1, out=1)) " +
        "already holds Infinity in its weights: an earlier step diverged (a lower learning " +
        "rate or scaled inputs usually cure this)",
    });
    assert.deepEqual(snapshot(model), before);
    assert.deepEqual(state(), moments, "Adam's moments and step count are unchanged");
  });
  await t.step("a non-finite penalty is refused too, the loss being finite", () => {
    // w² = 1e310 overflows float64; x = 0 keeps the outputs (the biases) finite.
    const dense = new Dense(1, 2, { ...f64, weights: [[1e155, 0]], weightRegularizerL2: 1 });
    const model = new Sequential([dense]);
    const before = snapshot(model);
    assert.throws(
      () =>
        model.trainStep([[0]], [0], {
          loss: new SoftmaxCrossEntropy(),
          optimizer: new SGD({ learningRate: 0.1 }),
        }),
      {
        name: "NonFiniteLossError",
        message: /^Sequential\.trainStep: the regularization loss is Infinity at step 0 /,
      },
    );
    assert.deepEqual(snapshot(model), before);
  });
  await t.step("finite steps count and train as before", () => {
    const model = new Sequential([new Dense(2, 2, { seed: 3 })]);
    const step = { loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ learningRate: 0.5 }) };
    const x = [[0, 1], [1, 0]];
    const first = model.trainStep(x, [0, 1], step);
    let last = first;
    for (let i = 0; i < 20; i++) last = model.trainStep(x, [0, 1], step);
    assert.ok(last < first, `${last} < ${first}`);
  });
});

Deno.test("fit stops at a non-finite loss before that step updates the weights", () => {
  // SGD at 1e30 sends the weights far out on the first step; the second step's loss is NaN.
  const model = new Sequential([new Dense(2, 3, { seed: 1 }), new Dense(3, 2, { seed: 2 })]);
  const snapshots: number[][][] = [];
  const x = [[1, 2], [3, -1], [0.5, 0.5], [-2, 1]], y = [0, 1, 1, 0];
  assert.throws(
    () =>
      model.fit(x, y, {
        loss: new SoftmaxCrossEntropy(),
        optimizer: new SGD({ learningRate: 1e30 }),
        epochs: 3,
        batchSize: 2,
        shuffle: false,
        callbacks: [{ onBatchEnd: () => snapshots.push(snapshot(model)) }],
      }),
    (error: unknown) => {
      assert.ok(error instanceof NonFiniteLossError, String(error));
      assert.ok(Number.isNaN(error.value) || !Number.isFinite(error.value));
      return true;
    },
  );
  // The weights are those of the last step that ran: nothing non-finite was applied.
  assert.deepEqual(snapshot(model), snapshots.at(-1));
  assert.ok(snapshot(model).flat().every((v) => !Number.isNaN(v)), "no weight became NaN");
});
