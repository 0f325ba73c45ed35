// Issue 18, "Errors print values as they are": the shared describe() formatting, the probe's
// misleading messages (NaN and Infinity shown as null, strings shown as numbers, padding's
// words), and fit's last batch too small for BatchNorm (FitOptions.dropRemainder).
import assert from "node:assert/strict";
import {
  AvgPool2D,
  type BatchLogs,
  BatchNorm,
  Conv2D,
  createLayer,
  decodeSafetensors,
  Dense,
  encodeSafetensors,
  type FitOptions,
  getThreads,
  GlobalAvgPool2D,
  type Layer,
  LayerNorm,
  MaxPool2D,
  modelFromBytes,
  ReLU,
  Residual,
  Sequential,
  setThreads,
  SGD,
  SoftmaxCrossEntropy,
  Tensor,
} from "../mod.ts";
import { describe, describeKind } from "../plugin.ts";

Deno.test("describe() shows a value as it is, abbreviated", async (t) => {
  await t.step("numbers, NaN and infinities as such, never null", () => {
    assert.equal(describe(3), "3");
    assert.equal(describe(-2.5), "-2.5");
    assert.equal(describe(NaN), "NaN");
    assert.equal(describe(Infinity), "Infinity");
    assert.equal(describe(-Infinity), "-Infinity");
    assert.equal(describe(-0), "-0");
    assert.equal(describe(12n), "12n");
  });
  await t.step("strings in quotes, so that a string is never read as a number", () => {
    assert.equal(describe("2"), '"2"');
    assert.equal(describe(""), '""');
    assert.equal(describe('say "hi"'), '"say \\"hi\\""');
    assert.equal(describe("x".repeat(100)), `"${"x".repeat(40)}…"`);
  });
  await t.step("null, undefined, booleans, symbols, functions", () => {
    assert.equal(describe(null), "null");
    assert.equal(describe(undefined), "undefined");
    assert.equal(describe(false), "false");
    assert.equal(describe(Symbol("s")), "Symbol(s)");
    assert.equal(describe(function named() {}), "function named");
    assert.equal(describe(() => 1), "a function");
  });
  await t.step("arrays and typed arrays: the first items, then the count", () => {
    assert.equal(describe([]), "[]");
    assert.equal(describe([1, NaN, "3"]), '[1, NaN, "3"]');
    assert.equal(describe([1, 2, 3, 4, 5, 6, 7]), "[1, 2, 3, 4, 5, 6, … (7 items)]");
    assert.equal(describe([[1, [2, [3]]]]), "[[1, […]]]");
    assert.equal(describe(new Float32Array([1, 0.5])), "Float32Array(2) [1, 0.5]");
    assert.equal(
      describe(new Float64Array(1000)),
      "Float64Array(1000) [0, 0, 0, 0, 0, 0, … (1000 items)]",
    );
  });
  await t.step("objects: the first keys, nesting cut at two levels", () => {
    assert.equal(describe({}), "{}");
    assert.equal(describe({ padding: null, stride: NaN }), "{ padding: null, stride: NaN }");
    assert.equal(describe({ "a-b": 1 }), '{ "a-b": 1 }');
    assert.equal(describe({ a: { b: { c: 1 } } }), "{ a: { b: {…} } }");
    assert.equal(
      describe({ a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7 }),
      "{ a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, … (7 keys) }",
    );
    const cyclic: Record<string, unknown> = { name: "loop" };
    cyclic.self = cyclic;
    assert.equal(describe(cyclic), '{ name: "loop", self: { name: "loop", self: {…} } }');
  });
  await t.step("instances by their summary or class name; whatever throws, by its class", () => {
    assert.equal(describe(Tensor.zeros([2, 3])), "Tensor(float32, [2, 3])");
    assert.equal(describe(new Dense(2, 3, { seed: 1 })), "Dense(in=2, out=3)");
    assert.equal(describe(new Map([[1, 2]])), "Map(1)");
    assert.equal(describe(new RangeError("no")), "RangeError: no");
    class Plain {}
    assert.equal(describe(new Plain()), "Plain");
    const hostile = new Proxy({}, {
      ownKeys() {
        throw new Error("trap");
      },
    });
    assert.equal(describe(hostile), "an object");
  });
  await t.step("the whole text stays short", () => {
    const wide = Object.fromEntries(
      Array.from({ length: 6 }, (_, i) => [`key${i}`, "v".repeat(40)]),
    );
    const text = describe(wide);
    assert.equal(text.length, 120);
    assert.ok(text.endsWith("…"), text);
  });
  await t.step("describeKind() says what kind of value came", () => {
    assert.equal(describeKind("72"), 'a string ("72")');
    assert.equal(describeKind(NaN), "the number NaN");
    assert.equal(describeKind([1, 2]), "an array of 2");
    assert.equal(describeKind(new Int32Array(2)), "an Int32Array");
    assert.equal(describeKind({}), "an object");
    assert.equal(describeKind(null), "null");
    assert.equal(describeKind(undefined), "undefined");
    assert.equal(describeKind(true), "a boolean");
  });
});

const SIZES = "a positive integer or [height, width] of positive integers";
const PADS = "a non-negative integer or [height, width] of non-negative integers";
const CONV_PADS = `"same", "valid", ${PADS}`;

function throwsRange(make: () => unknown, message: string): void {
  assert.throws(make, { name: "RangeError", message });
}

Deno.test("NaN and Infinity print as such, not as null (Conv2D, MaxPool2D, AvgPool2D)", () => {
  throwsRange(() => new Conv2D(1, 1, NaN), `new Conv2D: kernelSize must be ${SIZES}, got NaN`);
  throwsRange(
    () => new Conv2D(1, 1, 3, { stride: Infinity }),
    `new Conv2D: stride must be ${SIZES}, got Infinity`,
  );
  throwsRange(
    () => new Conv2D(1, 1, 3, { padding: NaN }),
    `new Conv2D: padding must be ${CONV_PADS}, got NaN`,
  );
  throwsRange(
    () => new Conv2D(1, 1, 3, { dilation: -Infinity }),
    `new Conv2D: dilation must be ${SIZES}, got -Infinity`,
  );
  throwsRange(
    () => new Conv2D(1, 1, [3, NaN]),
    `new Conv2D: kernelSize must be ${SIZES}, got [3, NaN]`,
  );
  throwsRange(() => new MaxPool2D(NaN), `new MaxPool2D: kernelSize must be ${SIZES}, got NaN`);
  throwsRange(
    () => new MaxPool2D(2, { stride: Infinity }),
    `new MaxPool2D: stride must be ${SIZES}, got Infinity`,
  );
  throwsRange(
    () => new AvgPool2D(2, { padding: NaN }),
    `new AvgPool2D: padding must be ${PADS}, got NaN`,
  );
});

Deno.test("strings are refused where numbers are expected, shown as strings", async (t) => {
  await t.step('setThreads("2")', () => {
    const before = getThreads();
    throwsRange(
      () => setThreads("2" as unknown as number),
      'setThreads: threads must be an integer from 1 to 64, got "2"',
    );
    assert.equal(getThreads(), before);
  });
  await t.step('new Conv2D("3", …)', () => {
    throwsRange(
      () => new Conv2D("3" as unknown as number, 4, 3),
      'new Conv2D: inChannels must be a positive integer, got "3"',
    );
    throwsRange(
      () => new Conv2D(3, 4, "3" as unknown as number),
      `new Conv2D: kernelSize must be ${SIZES}, got "3"`,
    );
  });
  await t.step('a config\'s inFeatures: "72"', () => {
    throwsRange(
      () => createLayer("Dense", { inFeatures: "72", outFeatures: 2 }),
      'new Dense: inFeatures must be a positive integer, got "72"',
    );
  });
  await t.step('a file\'s inFeatures: "72"', () => {
    const bytes = new Sequential([new Dense(72, 2, { seed: 1 })]).toBytes();
    const file = decodeSafetensors(bytes);
    const tensors = new Map(
      [...file.tensors].map(([name, e]) => [name, new Tensor(e.data as Float32Array, e.shape)]),
    );
    const model = JSON.parse(file.metadata["chainrule.model"]);
    model.config.layers[0].config.inFeatures = "72";
    file.metadata["chainrule.model"] = JSON.stringify(model);
    assert.throws(() => modelFromBytes(encodeSafetensors(tensors, file.metadata)), {
      name: "RangeError",
      message:
        /^modelFromBytes: cannot rebuild the model.*new Dense: inFeatures must be a positive integer, got "72"/,
    });
  });
  await t.step('validationSplit: "0.2" (which JavaScript would compare as a number)', () => {
    const model = new Sequential([new Dense(1, 1, { seed: 1 })]);
    assert.throws(
      () =>
        model.fit([[1], [2], [3], [4], [5]], [[1], [2], [3], [4], [5]], {
          loss: new SoftmaxCrossEntropy(),
          optimizer: new SGD(),
          epochs: 1,
          validationSplit: "0.2" as unknown as number,
        }),
      {
        name: "RangeError",
        message: 'Sequential.fit: validationSplit must be in (0, 1), got "0.2"',
      },
    );
  });
});

Deno.test("padding lists the words it accepts, and null is refused, not read as 0", async (t) => {
  await t.step('padding: "full"', () => {
    throwsRange(
      () => new Conv2D(1, 1, 3, { padding: "full" as "same" }),
      `new Conv2D: padding must be ${CONV_PADS}, got "full"`,
    );
  });
  await t.step("null padding, stride or dilation", () => {
    const none = null as unknown as number;
    throwsRange(
      () => new Conv2D(1, 1, 3, { padding: none }),
      `new Conv2D: padding must be ${CONV_PADS}, got null`,
    );
    throwsRange(
      () => new Conv2D(1, 1, 3, { stride: none }),
      `new Conv2D: stride must be ${SIZES}, got null`,
    );
    throwsRange(
      () => new Conv2D(1, 1, 3, { dilation: none }),
      `new Conv2D: dilation must be ${SIZES}, got null`,
    );
    throwsRange(
      () => new MaxPool2D(2, { padding: none }),
      `new MaxPool2D: padding must be ${PADS}, got null`,
    );
    throwsRange(
      () => new AvgPool2D(2, { stride: none }),
      `new AvgPool2D: stride must be ${SIZES}, got null`,
    );
  });
  await t.step("the accepted forms still work, and absent options take their defaults", () => {
    assert.deepEqual(new Conv2D(1, 1, 3, { padding: "same" }).config().padding, "same");
    assert.equal(
      new Conv2D(1, 1, 3, { padding: "valid" }).toString(),
      "Conv2D(in=1, out=1, kernel=3×3)",
    );
    assert.deepEqual(new Conv2D(1, 1, 3, { padding: [1, 0] }).padding, [1, 0]);
    assert.deepEqual(new Conv2D(1, 1, 3, { padding: undefined }).padding, [0, 0]);
    assert.deepEqual(new MaxPool2D(2, { padding: undefined, stride: undefined }).stride, [2, 2]);
  });
});

// 33 samples of 3 features, 2 classes: the probe's case, one sample left for a last batch.
function data(samples: number): [Tensor, number[]] {
  const x = Tensor.from(
    Array.from({ length: samples }, (_, i) => [Math.sin(i), Math.cos(i), i / samples]),
    { dtype: "float64" },
  );
  return [x, Array.from({ length: samples }, (_, i) => i % 2)];
}

function model(wrap = false): Sequential {
  const layers: Layer[] = [
    new Dense(3, 4, { seed: 1, dtype: "float64" }),
    new BatchNorm(4, { dtype: "float64" }),
    new ReLU(),
    new Dense(4, 2, { seed: 2, dtype: "float64" }),
  ];
  // The BatchNorm inside a Residual inside a nested Sequential: found all the same.
  if (wrap) {
    return new Sequential([
      layers[0],
      new Sequential([new Residual([layers[1], layers[2]])]),
      layers[3],
    ]);
  }
  return new Sequential(layers);
}

// Fits and returns the batch sizes of every step.
function fitSizes(
  net: Sequential,
  samples: number,
  options: Partial<FitOptions> = {},
): number[] {
  const [x, y] = data(samples);
  const sizes: number[] = [];
  net.fit(x, y, {
    loss: new SoftmaxCrossEntropy(),
    optimizer: new SGD({ learningRate: 0.1 }),
    epochs: 2,
    batchSize: 32,
    callbacks: [{ onBatchEnd: (_: number, logs: BatchLogs) => void sizes.push(logs.size) }],
    ...options,
  });
  return sizes;
}

function weightsOf(net: Sequential): number[] {
  return net.params().flatMap((param) => Array.from(param.value.data));
}

Deno.test("fit: a last batch too small for BatchNorm (dropRemainder)", async (t) => {
  await t.step("by default it is merged into the batch before, and fit trains", () => {
    assert.deepEqual(fitSizes(model(), 33), [33, 33]);
    // Unshuffled, the merged step is the full batch of 33: the same weights, bit for bit.
    const merged = model(), full = model();
    fitSizes(merged, 33, { shuffle: false });
    fitSizes(full, 33, { shuffle: false, batchSize: 33 });
    assert.deepEqual(weightsOf(merged), weightsOf(full));
  });
  await t.step("the same inside nested models", () => {
    assert.deepEqual(fitSizes(model(true), 33), [33, 33]);
  });
  await t.step("a last batch large enough, or a model without BatchNorm, is kept as it is", () => {
    assert.deepEqual(fitSizes(model(), 34), [32, 2, 32, 2]);
    const plain = new Sequential([new Dense(3, 2, { seed: 1, dtype: "float64" })]);
    assert.deepEqual(fitSizes(plain, 33), [32, 1, 32, 1]);
  });
  await t.step("dropRemainder: true drops it", () => {
    const net = model();
    const [x, y] = data(33);
    const history = net.fit(x, y, {
      loss: new SoftmaxCrossEntropy(),
      optimizer: new SGD({ learningRate: 0.1 }),
      epochs: 2,
      batchSize: 32,
      dropRemainder: true,
    });
    assert.equal(history.epochs.length, 2);
    assert.deepEqual(fitSizes(model(), 33, { dropRemainder: true }), [32, 32]);
    assert.deepEqual(fitSizes(model(), 64, { dropRemainder: true }), [32, 32, 32, 32]);
  });
  await t.step("dropRemainder: false fails before the first step, weights untouched", () => {
    const net = model();
    const before = weightsOf(net);
    assert.throws(() => fitSizes(net, 33, { dropRemainder: false }), {
      name: "RangeError",
      message: "Sequential.fit: the last batch of each epoch holds 1 of the 33 samples " +
        "(batchSize 32), and BatchNorm(features=4) needs at least 2 samples in a training " +
        "batch; leave dropRemainder out to merge it into the batch before, give " +
        "dropRemainder: true to drop it, or choose another batchSize",
    });
    assert.deepEqual(weightsOf(net), before);
  });
  await t.step("batches that can never train fail before the first step", () => {
    const net = model();
    const before = weightsOf(net);
    throwsRange(
      () => fitSizes(net, 33, { batchSize: 1 }),
      "Sequential.fit: batchSize is 1, and BatchNorm(features=4) needs at least 2 samples in " +
        "a training batch; use a larger one",
    );
    throwsRange(
      () => fitSizes(net, 1),
      "Sequential.fit: the last batch of each epoch holds 1 of the 1 samples (batchSize 32), " +
        "and BatchNorm(features=4) needs at least 2 samples in a training batch; give more samples",
    );
    throwsRange(
      () => fitSizes(net, 20, { dropRemainder: true }),
      "Sequential.fit: dropRemainder true drops every sample: 20 samples make no full batch " +
        "of 32; use a smaller batchSize",
    );
    assert.deepEqual(weightsOf(net), before);
  });
  await t.step("dropRemainder must be a boolean", () => {
    assert.throws(() => fitSizes(model(), 33, { dropRemainder: "yes" as unknown as boolean }), {
      name: "TypeError",
      message: 'Sequential.fit: dropRemainder must be true or false (or left out), got "yes"',
    });
  });
  await t.step("the training state counts the steps fit takes", () => {
    const steps: number[] = [];
    const [x, y] = data(33);
    model().fit(x, y, {
      loss: new SoftmaxCrossEntropy(),
      optimizer: new SGD(),
      epochs: 1,
      batchSize: 16,
      callbacks: [{ onTrainBegin: (state) => void steps.push(state.steps) }],
    });
    assert.deepEqual(steps, [2]); // 16 + (16 + 1)
  });
});

Deno.test("a backward given something other than a tensor says what it was", () => {
  const x = Tensor.randn([2, 3, 4], { seed: 1 });
  const cases: [Layer, Tensor][] = [
    [new LayerNorm(4), x],
    [new GlobalAvgPool2D(), Tensor.randn([2, 3, 4, 4], { seed: 2 })],
    [new Residual([new LayerNorm(4)]), x],
  ];
  for (const [layer, inputs] of cases) {
    layer.forward(inputs);
    assert.throws(() => layer.backward("grad" as unknown as Tensor), {
      name: "TypeError",
      message: new RegExp(
        `^${layer.kind}\\.backward: dvalues (is|has shape) a string \\("grad"\\)`,
      ),
    });
  }
});
