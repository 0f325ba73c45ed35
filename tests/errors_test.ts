// Bad input gets an error that names the function, the argument, what was expected and what came.
import assert from "node:assert/strict";
import {
  Adam,
  createLayer,
  Dense,
  ReLU,
  Sequential,
  SoftmaxCrossEntropy,
  spiralData,
  Tensor,
} from "../mod.ts";

Deno.test("Dense.forward rejects a wrong feature count", () => {
  const dense = new Dense(3, 2, { seed: 1 });
  assert.throws(() => dense.forward(Tensor.zeros([8, 4])), {
    name: "TypeError",
    message: "Dense.forward: inputs has 4 features per sample, expected 3 (inputs shape [8, 4])",
  });
  assert.throws(() => dense.forward(Tensor.zeros([3])), {
    name: "TypeError",
    message: /Dense\.forward: inputs must be 2-D \[batch, features\], got shape \[3\]/,
  });
  assert.throws(() => dense.forward(Tensor.zeros([2, 3], { dtype: "float64" })), {
    name: "TypeError",
    message: /Dense\.forward: inputs are float64, the layer is float32/,
  });
});

Deno.test("an empty batch is refused", () => {
  assert.throws(() => new Dense(3, 2, { seed: 1 }).forward(Tensor.zeros([0, 3])), {
    name: "RangeError",
    message: "Dense.forward: inputs is an empty batch (shape [0, 3])",
  });
  assert.throws(() => new SoftmaxCrossEntropy().forward(Tensor.zeros([0, 3]), []), {
    name: "RangeError",
    message: /SoftmaxCrossEntropy\.forward: outputs is an empty batch/,
  });
});

Deno.test("SoftmaxCrossEntropy.forward rejects labels out of range and mismatched targets", () => {
  const loss = new SoftmaxCrossEntropy();
  const logits = Tensor.zeros([13, 3]);
  const labels = new Array(13).fill(0);
  labels[12] = 7;
  assert.throws(() => loss.forward(logits, labels), {
    name: "RangeError",
    message: "SoftmaxCrossEntropy.forward: label 7 at sample 12 is out of range for 3 classes",
  });
  assert.throws(() => loss.forward(logits, [0, 1]), {
    name: "TypeError",
    message:
      "SoftmaxCrossEntropy.forward: targets hold 2 samples, outputs hold 13 (outputs shape [13, 3])",
  });
  assert.throws(() => loss.forward(logits, Tensor.zeros([13, 4])), {
    name: "TypeError",
    message:
      "SoftmaxCrossEntropy.forward: the targets have 4 columns (one-hot rows, shape [13, 4]) " +
      "and the model outputs 3 (outputs shape [13, 3])",
  });
  assert.throws(() => loss.forward(logits, [0.5, ...labels.slice(1, 12), 0]), {
    name: "RangeError",
    message: /label 0\.5 at sample 0 is out of range/,
  });
});

Deno.test("x and y with different sample counts are refused by fit and trainStep", () => {
  const model = new Sequential([new Dense(2, 3, { seed: 1 })]);
  const { x } = spiralData(10, 3);
  const options = { loss: new SoftmaxCrossEntropy(), optimizer: new Adam(), epochs: 1 };
  assert.throws(() => model.fit(x, new Int32Array(29), options), {
    name: "TypeError",
    message: "Sequential.fit: x holds 30 samples, y holds 29; they must match",
  });
  assert.throws(() => model.trainStep(x, [0, 1], options), {
    name: "TypeError",
    message: "Sequential.trainStep: x holds 30 samples, y holds 2; they must match",
  });
});

Deno.test("backward before forward names the plugin", () => {
  assert.throws(() => new Dense(2, 2, { seed: 1 }).backward(Tensor.zeros([1, 2])), {
    message: "Dense.backward: call forward first",
  });
  assert.throws(() => new ReLU().backward(Tensor.zeros([1, 2])), {
    message: "ReLU.backward: call forward first",
  });
  assert.throws(() => new SoftmaxCrossEntropy().backward(), {
    message: "SoftmaxCrossEntropy.backward: call forward first",
  });
});

Deno.test("backward with dvalues of the wrong shape is refused", () => {
  const dense = new Dense(2, 3, { seed: 1 });
  dense.forward(Tensor.zeros([4, 2]));
  assert.throws(() => dense.backward(Tensor.zeros([5, 3])), {
    name: "TypeError",
    message: /Dense\.backward: dvalues is float32 \[5, 3\], expected float32 \[4, 3\]/,
  });
});

Deno.test("constructors and helpers validate their arguments", () => {
  assert.throws(() => new Dense(0, 3), {
    name: "RangeError",
    message: /inFeatures must be a positive integer, got 0/,
  });
  assert.throws(() => new Dense(2, 3, { init: "zeros" }), {
    name: "RangeError",
    message: /new Dense: unknown init "zeros", expected one of .*\bhe\b/,
  });
  assert.throws(() => new Dense(2, 2, { weights: [[1, 2, 3]] }), {
    name: "TypeError",
    message: "new Dense: weights has shape [1, 3], expected [2, 2]",
  });
  assert.throws(() => new Adam({ learningRate: -1 }), {
    name: "RangeError",
    message: /new Adam: learningRate must be a finite number ≥ 0, got -1/,
  });
  assert.throws(() => Tensor.from([[1, 2], [3]]), { name: "TypeError", message: /ragged nesting/ });
  assert.throws(() => new Tensor(new Float32Array(3), [2, 2]), {
    message: "new Tensor: data has 3 elements, shape [2, 2] needs 4",
  });
  assert.throws(
    () =>
      new Sequential([new Dense(2, 2, { seed: 1 })]).fit([[1, 2]], [0], {
        loss: new SoftmaxCrossEntropy(),
        optimizer: new Adam(),
        epochs: 0,
      }),
    { name: "RangeError", message: "Sequential.fit: epochs must be a positive integer, got 0" },
  );
  assert.throws(() => createLayer("Conv9D", {}), {
    name: "RangeError",
    message:
      /createLayer: unknown layer kind "Conv9D"; known kinds: .*Dense.*registerLayer\("Conv9D"/,
  });
});

// What a new user hit when trying the library, each with the message it now prints.
Deno.test("new users' mistakes get errors that say what to do", async (t) => {
  const model = new Sequential([new Dense(2, 4, { seed: 1 }), new ReLU(), new Dense(4, 2)]);
  const options = { loss: new SoftmaxCrossEntropy(), optimizer: new Adam(), epochs: 1 };

  await t.step("predict on a string is a TypeError naming predict", () => {
    assert.throws(() => model.predict("hello" as unknown as number[][]), {
      name: "TypeError",
      message:
        'Sequential.predict: x must be a Tensor or nested arrays of numbers, got a string ("hello")',
    });
    assert.throws(() => model.predict([[1, 2], [3, "4"]] as unknown as number[][]), {
      name: "TypeError",
      message:
        'Sequential.predict: ragged nesting, expected a number at depth 2, got a string ("4")',
    });
  });

  await t.step("one-hot targets wider than the outputs name both widths", () => {
    assert.throws(() => model.fit([[0, 1], [1, 0]], [[0, 0, 1], [0, 1, 0]], options), {
      name: "TypeError",
      message:
        "SoftmaxCrossEntropy.forward: the targets have 3 columns (one-hot rows, shape [2, 3]) " +
        "and the model outputs 2 (outputs shape [2, 2])",
    });
    // Passed straight to a loss, nested rows are not mistaken for labels.
    assert.throws(
      () => options.loss.forward(Tensor.zeros([1, 2]), [[0, 1]] as unknown as number[]),
      {
        name: "TypeError",
        message: "SoftmaxCrossEntropy.forward: targets[0] is a row of 2, expected a class index; " +
          "pass one-hot rows as a Tensor (Tensor.from(y))",
      },
    );
  });

  await t.step("NaN or Infinity in the data is named before training starts", () => {
    const before = model.params()[0].value.data.slice();
    assert.throws(() => model.fit([[0, 1], [1, NaN]], [0, 1], options), {
      name: "RangeError",
      message: "Sequential.fit: x holds NaN at sample 1, feature 1 (x shape [2, 2]); " +
        "remove or impute non-finite values first",
    });
    assert.deepEqual(model.params()[0].value.data, before);
    assert.throws(
      () => model.evaluate([[0, 1], [-Infinity, 0]], [0, 1], { loss: options.loss }),
      {
        name: "RangeError",
        message:
          "Sequential.evaluate: x holds -Infinity at sample 1, feature 0 (x shape [2, 2]); " +
          "remove or impute non-finite values first",
      },
    );
    assert.throws(
      () => model.fit([[0, 1]], [0], { ...options, validationData: [[[NaN, 0]], [1]] }),
      /^RangeError: Sequential.fit \(validationData\): x holds NaN at sample 0, feature 0/,
    );
    const images = Tensor.zeros([2, 1, 3, 3]);
    images.data[9 + 5] = Infinity;
    const flat = new Sequential([]);
    assert.throws(
      () => flat.evaluate(images, Tensor.zeros([2, 1, 3, 3]), { loss: options.loss }),
      /x holds Infinity at sample 1, feature \[0, 1, 2\] \(x shape \[2, 1, 3, 3\]\)/,
    );
  });

  await t.step("validationData as [x, y], the way Keras users write it", () => {
    const x = [[0, 1], [1, 0]];
    const pair = model.fit(x, [0, 1], { ...options, validationData: [x, [0, 1]] });
    const object = model.fit(x, [0, 1], { ...options, validationData: { x, y: [0, 1] } });
    assert.equal(pair.valLoss.length, 1);
    assert.equal(object.valLoss.length, 1);
    assert.throws(
      () => model.fit(x, [0, 1], { ...options, validationData: [x] as never }),
      {
        name: "TypeError",
        message: "Sequential.fit: validationData must be { x, y } or [x, y], got an array of 1",
      },
    );
  });
});
