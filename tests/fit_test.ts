import assert from "node:assert/strict";
import {
  Adam,
  BinaryAccuracy,
  type Callback,
  Dense,
  type EpochLogs,
  RandomState,
  ReLU,
  Sequential,
  SGD,
  SoftmaxCrossEntropy,
  spiralData,
  Tensor,
} from "../mod.ts";
import { indexRows, Recorder, SquaredError } from "./_fit_helpers.ts";

const loss = new SoftmaxCrossEntropy();

function spiralModel(dtype: "float32" | "float64" = "float64"): Sequential {
  return new Sequential([
    new Dense(2, 16, { seed: 1, dtype }),
    new ReLU(),
    new Dense(16, 3, { seed: 2, dtype }),
  ]);
}

function recorderModel(): [Sequential, Recorder] {
  const recorder = new Recorder();
  return [new Sequential([recorder, new Dense(1, 2, { seed: 3, dtype: "float64" })]), recorder];
}

Deno.test("fit: mini-batches", async (t) => {
  await t.step("the last batch holds the samples left over", () => {
    const [model, recorder] = recorderModel();
    const sizes: number[] = [];
    let steps = 0;
    model.fit(indexRows(10), new Int32Array(10), {
      loss,
      optimizer: new SGD(),
      epochs: 1,
      batchSize: 4,
      shuffle: false,
      callbacks: [{
        onBatchEnd: (_b, logs, state) => (sizes.push(logs.size), steps = state.steps),
      }],
    });
    assert.deepEqual(sizes, [4, 4, 2]);
    assert.equal(steps, 3);
    assert.deepEqual(recorder.seen, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  });

  await t.step("epoch e is shuffled by RandomState(seed + e), also when resuming", () => {
    const [model, recorder] = recorderModel();
    model.fit(indexRows(7), new Int32Array(7), {
      loss,
      optimizer: new SGD(),
      epochs: 5,
      initialEpoch: 3,
      batchSize: 3,
      seed: 11,
    });
    for (const epoch of [3, 4]) {
      const order = [...new RandomState(11 + epoch).permutation(7)];
      const seen = recorder.seen.splice(0, 3).flat();
      assert.deepEqual(seen, order, `epoch ${epoch}`);
    }
  });

  await t.step("shuffled batches are gathered into one reused buffer per batch size", () => {
    const buffers = new Set<ArrayBufferLike>();
    const labels = new Set<unknown>();
    const spy = new class extends Recorder {
      override forward(inputs: Tensor, options: { training?: boolean } = {}): Tensor {
        if (options.training) buffers.add(inputs.data.buffer);
        return super.forward(inputs, options);
      }
    }();
    const model = new Sequential([spy, new Dense(1, 2, { seed: 3, dtype: "float64" })]);
    model.fit(indexRows(7), new Int32Array([0, 1, 0, 1, 0, 1, 0]), {
      loss,
      optimizer: new SGD(),
      epochs: 3,
      batchSize: 3,
      seed: 2,
      metrics: [{ name: "seen", measure: (_o, y) => (labels.add(y), 0) }],
    });
    assert.equal(buffers.size, 2, "batches of 3 and the last one of 1");
    assert.equal(labels.size, 2);
    for (const epoch of [0, 1, 2]) {
      const order = [...new RandomState(2 + epoch).permutation(7)];
      assert.deepEqual(spy.seen.splice(0, 3).flat(), order, `epoch ${epoch}`);
    }
  });

  await t.step("full batch does not shuffle (the book's order)", () => {
    const [model, recorder] = recorderModel();
    model.fit(indexRows(5), new Int32Array(5), { loss, optimizer: new SGD(), epochs: 2 });
    assert.deepEqual(recorder.seen, [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]);
  });

  await t.step("the epoch's loss and accuracy are means over samples, not batches", () => {
    const { x, y } = spiralData(20, 3);
    const batches: { size: number; batchLoss: number }[] = [];
    const history = spiralModel().fit(x, y, {
      loss,
      optimizer: new Adam({ learningRate: 0.01 }),
      epochs: 1,
      batchSize: 25,
      callbacks: [{ onBatchEnd: (_b, logs) => batches.push({ ...logs }) }],
    });
    assert.deepEqual(batches.map((b) => b.size), [25, 25, 10]);
    const expected = batches.reduce((sum, b) => sum + b.batchLoss * b.size, 0) / 60;
    assert.ok(Math.abs(history.loss[0] - expected) < 1e-12);
    const accuracy = history.accuracy[0] * 60;
    assert.ok(Math.abs(accuracy - Math.round(accuracy)) < 1e-9, "a whole number of samples right");
  });

  await t.step("split runs resume exactly: 2 + 2 epochs equal 4 at once", () => {
    const { x, y } = spiralData(20, 3);
    const options = { loss, epochs: 4, batchSize: 16, seed: 5 };
    const once = spiralModel();
    once.fit(x, y, { ...options, optimizer: new Adam({ learningRate: 0.01 }) });
    const twice = spiralModel();
    const optimizer = new Adam({ learningRate: 0.01 });
    twice.fit(x, y, { ...options, optimizer, epochs: 2 });
    twice.fit(x, y, { ...options, optimizer, initialEpoch: 2 });
    once.params().forEach((p, i) => assert.deepEqual(p.value.data, twice.params()[i].value.data));
  });
});

Deno.test("fit: validation", async (t) => {
  const { x, y } = spiralData(30, 3);
  const validationData = spiralData(20, 3, { seed: 7 });

  await t.step("validationData is evaluated after every epoch", () => {
    const model = spiralModel();
    const history = model.fit(x, y, {
      loss,
      optimizer: new Adam({ learningRate: 0.02 }),
      epochs: 3,
      validationData,
    });
    assert.deepEqual(history.names(), [
      "loss",
      "regularizationLoss",
      "accuracy",
      "valLoss",
      "valRegularizationLoss",
      "valAccuracy",
    ]);
    assert.equal(history.valLoss.length, 3);
    // The last epoch's figures are those of the final weights.
    const evaluated = model.evaluate(validationData.x, validationData.y, { loss });
    assert.equal(history.valLoss[2], evaluated.loss);
    assert.equal(history.valAccuracy[2], evaluated.accuracy);
  });

  await t.step("validationSplit holds out the last samples, before shuffling", () => {
    const [model, recorder] = recorderModel();
    const history = model.fit(indexRows(10), new Int32Array(10), {
      loss,
      optimizer: new SGD(),
      epochs: 2,
      batchSize: 3,
      validationSplit: 0.25,
    });
    // floor(10 · 0.75) = 7 train, 3 validation (samples 7, 8, 9 never trained on).
    const seen = recorder.seen.flat();
    assert.equal(seen.length, 14);
    assert.deepEqual([...new Set(seen)].sort(), [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(history.valLoss.length, 2);
  });

  await t.step("bad validation options are named", () => {
    const fit = (extra: object) =>
      spiralModel().fit(x, y, { loss, optimizer: new SGD(), epochs: 1, ...extra });
    assert.throws(
      () => fit({ validationData, validationSplit: 0.2 }),
      /Sequential\.fit: give validationData or validationSplit, not both/,
    );
    assert.throws(() => fit({ validationSplit: 1 }), /validationSplit must be in \(0, 1\), got 1/);
    assert.throws(
      () =>
        spiralModel().fit([[0, 0]], [0], {
          loss,
          optimizer: new SGD(),
          epochs: 1,
          validationSplit: 0.5,
        }),
      /validationSplit 0\.5 of 1 samples leaves 0 for training and 1 for validation/,
    );
    assert.throws(
      () => fit({ validationData: { x: [[1, 2]], y: [0, 1] } }),
      /Sequential\.fit \(validationData\): x holds 1 samples, y holds 2/,
    );
  });
});

Deno.test("fit: metrics", async (t) => {
  await t.step("categorical accuracy is inferred from class targets only", () => {
    const { x, y } = spiralData(10, 3);
    const opts = { loss, optimizer: new SGD(), epochs: 1 };
    assert.equal(spiralModel().fit(x, y, opts).accuracy.length, 1);
    const regression = new Sequential([new Dense(2, 1, { seed: 1, dtype: "float64" })]);
    const targets = Tensor.from(Array.from({ length: 30 }, (_, i) => [i / 30]));
    const history = regression.fit(x, targets, { ...opts, loss: new SquaredError() });
    assert.deepEqual(history.names(), ["loss", "regularizationLoss"]);
  });

  await t.step("explicit metrics are logged by name, for validation too", () => {
    const model = new Sequential([new Dense(1, 1, { weights: [[1]], dtype: "float64" })]);
    const x = [[0.9], [0.2], [0.7], [0.4]];
    const y = Tensor.from([[1], [0], [0], [0]]);
    const history = model.fit(x, y, {
      loss: new SquaredError(),
      optimizer: new SGD({ learningRate: 0 }),
      epochs: 1,
      metrics: [new BinaryAccuracy(), new BinaryAccuracy({ name: "strict", threshold: 0.8 })],
      validationData: { x, y },
    });
    assert.deepEqual(history.accuracy, [0.75]);
    assert.deepEqual(history.get("strict"), [1]);
    assert.deepEqual(history.get("valStrict"), [1]);
    assert.deepEqual(history.valAccuracy, [0.75]);
    // metrics: [] turns the inferred accuracy off.
    const { x: sx, y: sy } = spiralData(5, 3);
    const none = spiralModel().fit(sx, sy, { loss, optimizer: new SGD(), epochs: 1, metrics: [] });
    assert.deepEqual(none.accuracy, []);
  });

  await t.step("metric names must be unique and not reserved", () => {
    const fit = (metrics: BinaryAccuracy[]) =>
      spiralModel().fit([[0, 0]], [0], { loss, optimizer: new SGD(), epochs: 1, metrics });
    assert.throws(
      () => fit([new BinaryAccuracy(), new BinaryAccuracy()]),
      /metrics\[1\] is named "accuracy", which is already taken/,
    );
    assert.throws(() => fit([new BinaryAccuracy({ name: "loss" })]), /"loss", which is reserved/);
  });
});

Deno.test("evaluate and predict batch, with the same figures as one pass", () => {
  const { x, y } = spiralData(33, 3);
  const model = spiralModel();
  model.fit(x, y, { loss, optimizer: new Adam({ learningRate: 0.02 }), epochs: 20 });
  const whole = model.evaluate(x, y, { loss });
  const batched = model.evaluate(x, y, { loss, batchSize: 8 });
  assert.ok(Math.abs(whole.loss - batched.loss) < 1e-12);
  assert.equal(whole.accuracy, batched.accuracy);
  assert.equal(whole.regularizationLoss, 0);
  // Equal up to rounding: a batch's size can pick another kernel, summing in another order.
  const parts = model.predict(x, { batchSize: 10 }).data;
  const once = model.predict(x).data;
  assert.equal(parts.length, once.length);
  parts.forEach((v, i) => assert.ok(Math.abs(v - once[i]) < 1e-12, `${i}: ${v} vs ${once[i]}`));
  assert.throws(
    () => model.predict(x, { batchSize: 0 }),
    /Sequential\.predict: batchSize must be a positive integer, got 0/,
  );
  assert.throws(
    () => model.evaluate(x, y, { loss, batchSize: 1.5 }),
    /Sequential\.evaluate: batchSize must be a positive integer/,
  );
  assert.throws(
    () => model.evaluate(x, [1], { loss }),
    /Sequential\.evaluate: x holds 99 samples, y holds 1/,
  );
});

Deno.test("fit: callbacks see every hook in order and can stop training", async (t) => {
  await t.step("hook order, epochs numbered from initialEpoch", () => {
    const calls: string[] = [];
    const spy: Callback = {
      onTrainBegin: () => calls.push("train"),
      onEpochBegin: (e) => calls.push(`epoch ${e}`),
      onBatchEnd: (b) => calls.push(`batch ${b}`),
      onEpochEnd: (e, _logs, state) => calls.push(`end ${e} (${state.history.epochs.at(-1)})`),
      onTrainEnd: () => calls.push("done"),
    };
    spiralModel().fit(spiralData(2, 3).x, spiralData(2, 3).y, {
      loss,
      optimizer: new SGD(),
      epochs: 3,
      initialEpoch: 1,
      batchSize: 4,
      callbacks: [spy],
    });
    assert.deepEqual(calls, [
      "train",
      "epoch 1",
      "batch 0",
      "batch 1",
      "end 1 (1)",
      "epoch 2",
      "batch 0",
      "batch 1",
      "end 2 (2)",
      "done",
    ]);
  });

  await t.step("stopTraining after a batch ends the epoch there and logs it", () => {
    const [model, recorder] = recorderModel();
    const logged: EpochLogs[] = [];
    const history = model.fit(indexRows(10), new Int32Array(10), {
      loss,
      optimizer: new SGD(),
      epochs: 5,
      batchSize: 2,
      shuffle: false,
      onEpoch: (_e, logs) => logged.push(logs),
      callbacks: [{ onBatchEnd: (b, _l, state) => state.stopTraining = b === 1 }],
    });
    assert.deepEqual(recorder.seen, [[0, 1], [2, 3]]);
    assert.equal(history.epochs.length, 1);
    assert.equal(logged.length, 1);
  });
});

Deno.test("fit: verbose output", async (t) => {
  const { x, y } = spiralData(5, 3);
  const capture = (run: () => void): string => {
    const text: string[] = [];
    const write = Deno.stdout.writeSync;
    const log = console.log;
    Deno.stdout.writeSync = (
      bytes: Uint8Array,
    ) => (text.push(new TextDecoder().decode(bytes)), bytes.length);
    console.log = (...args: unknown[]) => text.push(args.join(" ") + "\n");
    try {
      run();
    } finally {
      Deno.stdout.writeSync = write;
      console.log = log;
    }
    return text.join("");
  };
  const fit = (verbose?: 0 | 1 | 2) =>
    spiralModel().fit(x, y, { loss, optimizer: new SGD(), epochs: 3, batchSize: 4, verbose });

  await t.step("silent by default and with verbose 0", () => {
    assert.equal(capture(() => fit()), "");
    assert.equal(capture(() => fit(0)), "");
  });

  await t.step("verbose 2 prints one plain line per epoch", () => {
    const lines = capture(() => fit(2)).split("\n");
    assert.equal(lines.length, 4);
    assert.equal(lines[3], "");
    lines.slice(0, 3).forEach((line, i) => {
      assert.match(
        line,
        new RegExp(
          `^Epoch ${i + 1}/3 - 4/4 steps - .*s - .* samples/s - loss: \\d\\.\\d{4} - accuracy: `,
        ),
      );
    });
    assert.ok(!lines.join("").includes("\r"));
  });

  await t.step("verbose out of range", () => {
    assert.throws(() => fit(3 as 2), /Sequential\.fit: verbose must be 0, 1 or 2, got 3/);
  });
});

Deno.test("fit: bad arguments are named", () => {
  const model = spiralModel();
  const { x, y } = spiralData(3, 3);
  const fit = (extra: object) =>
    model.fit(x, y, { loss, optimizer: new SGD(), epochs: 1, ...extra });
  assert.throws(
    () => fit({ epochs: 0 }),
    /Sequential\.fit: epochs must be a positive integer, got 0/,
  );
  assert.throws(() => fit({ batchSize: -1 }), /batchSize must be a positive integer, got -1/);
  assert.throws(() => fit({ initialEpoch: -1 }), /initialEpoch must be an integer ≥ 0, got -1/);
  assert.throws(
    () => fit({ optimizer: undefined }),
    /Sequential\.fit: options\.optimizer must be an Optimizer/,
  );
  assert.throws(() => fit({ loss: {} }), /Sequential\.fit: options\.loss must be a Loss/);
  assert.throws(
    () => fit({ callbacks: [() => {}] }),
    /callbacks\[0\] must be an object with hook methods/,
  );
  assert.throws(() => model.fit([], [], { loss, optimizer: new SGD(), epochs: 1 }), RangeError);
});
