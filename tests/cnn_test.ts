// Convolutional networks through the whole library: images as tensors, fit, evaluate and
// predict on [N, C, H, W], saving and loading with BatchNorm's state, early stopping, the
// PyTorch names, the IDX loader and the losses on any rank.
import assert from "node:assert/strict";
import {
  Adam,
  BatchNorm,
  bufferNames,
  Conv2D,
  decodeSafetensors,
  Dense,
  Dropout,
  EarlyStopping,
  encodeSafetensors,
  Flatten,
  GlobalAvgPool2D,
  type IdxArray,
  idxDataset,
  type Layer,
  loadTorchStateDict,
  MaxPool2D,
  MeanSquaredError,
  modelFromBytes,
  ReLU,
  SafetensorsError,
  Sequential,
  SoftmaxCrossEntropy,
  Tensor,
  toTorchStateDict,
} from "../mod.ts";
import { RandomState } from "../mod.ts";

// 8×8 one-channel images of noise with a bright 3×3 blob in one of four quadrants; the
// label is the quadrant.
function blobs(samples: number, seed: number): { x: Tensor; y: Int32Array } {
  const random = new RandomState(seed);
  const x = Tensor.zeros([samples, 1, 8, 8]);
  const y = new Int32Array(samples);
  for (let n = 0; n < samples; n++) {
    const label = random.randint(4);
    y[n] = label;
    const top = (label >> 1) * 4 + random.randint(2), left = (label & 1) * 4 + random.randint(2);
    for (let i = 0; i < 64; i++) x.data[n * 64 + i] = 0.3 * random.random();
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 3; c++) x.data[n * 64 + (top + r) * 8 + left + c] += 1;
    }
  }
  return { x, y };
}

function cnn(seed = 1): Sequential {
  return new Sequential([
    new Conv2D(1, 4, 3, { padding: 1, seed }),
    new BatchNorm(4),
    new ReLU(),
    new MaxPool2D(2),
    new Conv2D(4, 8, 3, { padding: "same", seed: seed + 1 }),
    new ReLU(),
    new MaxPool2D(2),
    new Flatten(),
    new Dropout(0.1, { seed: seed + 2 }),
    new Dense(32, 4, { seed: seed + 3 }),
  ]);
}

const loss = new SoftmaxCrossEntropy();

Deno.test("Tensor.from takes 4-D nested arrays; Dropout drops elements of 4-D tensors", () => {
  const t = Tensor.from([[[[1, 2], [3, 4]], [[5, 6], [7, 8]]]]);
  assert.deepEqual(t.shape, [1, 2, 2, 2]);
  assert.equal(t.get(0, 1, 1, 0), 7);
  assert.deepEqual(t.toArray(), [[[[1, 2], [3, 4]], [[5, 6], [7, 8]]]]);
  const dropout = new Dropout(0.5, { seed: 1 });
  const x = Tensor.filled([2, 3, 4, 4], 1, { dtype: "float64" });
  const out = dropout.forward(x, { training: true });
  assert.deepEqual(out.shape, [2, 3, 4, 4]);
  assert.ok(out.data.every((v) => v === 0 || v === 2));
  const d = dropout.backward(Tensor.filled([2, 3, 4, 4], 1, { dtype: "float64" }));
  assert.deepEqual([...d.data], [...out.data], "backward multiplies by the same mask");
  assert.equal(dropout.forward(x), x, "inference: the identity");
});

Deno.test("idxDataset gives images as [N, 1, rows, cols] with layout nchw", () => {
  const images: IdxArray = {
    type: "uint8",
    shape: [2, 2, 3],
    data: new Uint8Array(12).map((_, i) => i),
  };
  const labels: IdxArray = { type: "uint8", shape: [2], data: new Uint8Array([4, 1]) };
  const { x, y } = idxDataset(images, labels, { layout: "nchw" });
  assert.deepEqual(x.shape, [2, 1, 2, 3]);
  assert.deepEqual(x.toArray(), [[[[0, 1, 2], [3, 4, 5]]], [[[6, 7, 8], [9, 10, 11]]]]);
  assert.deepEqual([...y], [4, 1]);
  assert.deepEqual(idxDataset(images, labels).x.shape, [2, 6], "rows by default");
  assert.throws(() => idxDataset(images, labels, { layout: "nhwc" as "nchw" }), {
    name: "RangeError",
    message: 'idxDataset: layout must be "rows" or "nchw", got "nhwc"',
  });
});

Deno.test("a CNN trains with fit on [N, 1, 8, 8] images; evaluate and predict take them too", () => {
  const train = blobs(256, 1);
  const test = blobs(64, 2);
  const model = cnn();
  const history = model.fit(train.x, train.y, {
    loss,
    optimizer: new Adam({ learningRate: 0.01 }),
    epochs: 6,
    batchSize: 32,
    validationData: test,
  });
  assert.ok(history.valAccuracy.at(-1)! > 0.9, `validation accuracy ${history.valAccuracy}`);
  const result = model.evaluate(test.x, test.y, { loss, batchSize: 10 });
  assert.equal(result.accuracy, history.valAccuracy.at(-1));
  const all = model.predict(test.x);
  assert.deepEqual(all.shape, [64, 4]);
  const batched = model.predict(test.x, { batchSize: 7 });
  for (let i = 0; i < all.size; i++) assert.ok(Math.abs(all.data[i] - batched.data[i]) < 1e-5);
  const split = cnn(5).fit(train.x, train.y, {
    loss,
    optimizer: new Adam({ learningRate: 0.01 }),
    epochs: 1,
    batchSize: 50,
    validationSplit: 0.25,
  });
  assert.equal(split.valLoss.length, 1);
});

Deno.test("a CNN's training step reuses every buffer once the batch shape was seen", () => {
  const model = cnn();
  const { x, y } = blobs(16, 3);
  const seen = (): object[] => {
    const buffers: object[] = [];
    const undo = model.layers.map((layer: Layer) => {
      const { forward, backward } = layer;
      layer.forward = (...args) => {
        const out = forward.apply(layer, args);
        buffers.push(out.data);
        return out;
      };
      layer.backward = (...args) => {
        const out = backward.apply(layer, args);
        buffers.push(out.data);
        return out;
      };
      return () => Object.assign(layer, { forward, backward });
    });
    model.trainBatch(x, y, { loss, optimizer: new Adam() });
    for (const restore of undo) restore();
    return buffers;
  };
  const first = seen();
  const second = seen();
  assert.equal(first.length, 2 * model.layers.length);
  second.forEach((data, i) => assert.equal(data, first[i], `buffer ${i} was reallocated`));
});

Deno.test("BatchNorm's running statistics are saved, loaded and restored", async (t) => {
  const { x, y } = blobs(64, 4);
  const model = cnn();
  model.fit(x, y, { loss, optimizer: new Adam({ learningRate: 0.01 }), epochs: 2, batchSize: 16 });
  const norm = model.layers[1] as BatchNorm;
  await t.step("named <index>.<kind>.<buffer> beside the params", () => {
    assert.deepEqual(bufferNames(model), [
      "1.BatchNorm.runningMean",
      "1.BatchNorm.runningVar",
      "1.BatchNorm.numBatchesTracked",
    ]);
    const tensors = decodeSafetensors(model.toBytes()).tensors;
    assert.deepEqual([...tensors.get("1.BatchNorm.runningVar")!.data], [...norm.runningVar.data]);
    assert.deepEqual([...tensors.get("1.BatchNorm.numBatchesTracked")!.data], [8]);
  });
  await t.step(
    "model.save → Sequential.load and toBytes → fromBytes keep them bit for bit",
    async () => {
      const path = `${await Deno.makeTempDir()}/cnn.safetensors`;
      await model.save(path);
      for (const copy of [await Sequential.load(path), Sequential.fromBytes(model.toBytes())]) {
        const loaded = copy.layers[1] as BatchNorm;
        assert.deepEqual(loaded.runningMean.data, norm.runningMean.data);
        assert.deepEqual(loaded.runningVar.data, norm.runningVar.data);
        assert.equal(loaded.numBatchesTracked.data[0], 8);
        assert.deepEqual(copy.predict(x).data, model.predict(x).data);
      }
      await Deno.remove(path);
    },
  );
  await t.step("a file without them does not load into a model that has them", () => {
    const bytes = model.toBytes();
    const { tensors, metadata } = decodeSafetensors(bytes);
    tensors.delete("1.BatchNorm.runningMean");
    const named = new Map(
      [...tensors].map(([k, v]) => [k, new Tensor(v.data as Float32Array, v.shape)]),
    );
    assert.throws(() => modelFromBytes(encodeSafetensors(named, metadata)), (error: unknown) => {
      assert.ok(error instanceof SafetensorsError);
      assert.match(error.message, /needs tensor "1\.BatchNorm\.runningMean"/);
      return true;
    });
  });
  await t.step(
    "EarlyStopping with restoreBestWeights puts back the best epoch's statistics",
    () => {
      const stopper = new EarlyStopping({
        monitor: "loss",
        patience: 100,
        restoreBestWeights: true,
      });
      const fresh = cnn(7);
      const states: number[][] = [];
      let best = Infinity, bestState: number[] = [];
      fresh.fit(x, y, {
        loss,
        optimizer: new Adam({ learningRate: 0.05 }),
        epochs: 6,
        batchSize: 16,
        callbacks: [stopper],
        onEpoch: (_, logs) => {
          const state = [...(fresh.layers[1] as BatchNorm).runningMean.data];
          states.push(state);
          if (logs.loss < best) [best, bestState] = [logs.loss, state];
        },
      });
      const restored = [...(fresh.layers[1] as BatchNorm).runningMean.data];
      assert.deepEqual(restored, bestState);
      assert.equal(stopper.bestEpoch, states.indexOf(bestState));
    },
  );
});

Deno.test("toTorchStateDict and loadTorchStateDict name a CNN as PyTorch's Sequential", async (t) => {
  const model = new Sequential([
    new Conv2D(1, 2, 3, { seed: 1 }),
    new BatchNorm(2),
    new ReLU(),
    new GlobalAvgPool2D(),
    new Dense(2, 3, { seed: 2 }),
  ]);
  model.fit(blobs(8, 5).x, [0, 1, 2, 0, 1, 2, 0, 1], {
    loss,
    optimizer: new Adam(),
    epochs: 1,
  });
  const state = toTorchStateDict(model);
  await t.step("names and shapes; Conv2D weights unchanged, Dense transposed", () => {
    assert.deepEqual([...state].map(([name, v]) => `${name} [${v.shape}]`), [
      "0.weight [2,1,3,3]",
      "0.bias [2]",
      "1.weight [2]",
      "1.bias [2]",
      "1.running_mean [2]",
      "1.running_var [2]",
      "1.num_batches_tracked []",
      "4.weight [3,2]",
      "4.bias [3]",
    ]);
    const conv = model.layers[0] as Conv2D;
    assert.deepEqual([...state.get("0.weight")!.data], [...conv.weights.value.data]);
    const norm = model.layers[1] as BatchNorm;
    assert.deepEqual([...state.get("1.running_var")!.data], [...norm.runningVar.data]);
    assert.deepEqual([...state.get("1.num_batches_tracked")!.data], [1]);
  });
  await t.step("back into a fresh model, with num_batches_tracked as PyTorch's int64", () => {
    const bytes = encodeSafetensors(state);
    const tensors = decodeSafetensors(bytes).tensors;
    const entries = new Map<
      string,
      { shape: readonly number[]; data: ArrayLike<number | bigint>; dtype?: string }
    >(tensors);
    entries.set("1.num_batches_tracked", {
      shape: [],
      data: new BigInt64Array([1n]),
      dtype: "I64",
    });
    const copy = new Sequential([
      new Conv2D(1, 2, 3, { seed: 9 }),
      new BatchNorm(2),
      new ReLU(),
      new GlobalAvgPool2D(),
      new Dense(2, 3, { seed: 9 }),
    ]);
    loadTorchStateDict(copy, entries);
    const x = blobs(4, 6).x;
    assert.deepEqual(copy.predict(x).data, model.predict(x).data);
    assert.equal((copy.layers[1] as BatchNorm).numBatchesTracked.data[0], 1);
  });
  await t.step("strict: a missing running_var is an error that changes nothing", () => {
    const partial = new Map(state);
    partial.delete("1.running_var");
    const copy = new Sequential([
      new Conv2D(1, 2, 3, { seed: 9 }),
      new BatchNorm(2),
      new ReLU(),
      new GlobalAvgPool2D(),
      new Dense(2, 3, { seed: 9 }),
    ]);
    const before = [...copy.params()[0].value.data];
    assert.throws(() => loadTorchStateDict(copy, partial), {
      name: "SafetensorsError",
      message: /needs tensor "1\.running_var" \(shape \[2\]\)/,
    });
    assert.deepEqual([...copy.params()[0].value.data], before);
  });
});

Deno.test("per-output losses take outputs of any rank with targets of their shape", () => {
  const mse = new MeanSquaredError();
  const outputs = Tensor.from([[[[1, 2], [3, 4]]], [[[0, 0], [0, 2]]]], { dtype: "float64" });
  const targets = Tensor.zeros([2, 1, 2, 2], { dtype: "float64" });
  assert.equal(mse.forward(outputs, targets), (1 + 4 + 9 + 16 + 4) / 8);
  assert.deepEqual(mse.backward().shape, [2, 1, 2, 2]);
  assert.throws(() => mse.forward(outputs, Tensor.zeros([2, 4])), {
    name: "TypeError",
    message:
      "MeanSquaredError.forward: targets have shape [2, 4], expected [2, 1, 2, 2] like the outputs (outputs shape [2, 1, 2, 2])",
  });
});
