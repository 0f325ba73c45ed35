// Training on sequences: cross-entropy over [batch, T, classes] against PyTorch, and token
// ids through fit / evaluate / predict with a third-party lookup-table layer.
import assert from "node:assert/strict";
import {
  Adam,
  CategoricalAccuracy,
  CategoricalCrossEntropy,
  checkGradients,
  CosineDecay,
  createLoss,
  type JsonObject,
  type Layer,
  type Loss,
  Param,
  RandomState,
  Sequential,
  SoftmaxCrossEntropy,
  Tensor,
} from "../mod.ts";

const f64 = { dtype: "float64" } as const;

interface LossCase {
  outputs: number[][][] | number[][];
  targets: number[][] | number[][][] | number[];
  loss: number;
  dinputs: number[][][] | number[][];
  ignore_index?: number;
}

const fixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/torch_losses.json", import.meta.url)),
) as { losses: Record<string, LossCase> };

// |a − b| ≤ tolerance·max(|a|, |b|, 1e-3) for every element (relative above 1e-3).
function assertRelative(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const scale = Math.max(Math.abs(actual[i]), Math.abs(expected[i]), 1e-3);
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= 1e-9 * scale,
      `${what}[${i}]: got ${actual[i]}, PyTorch ${expected[i]}`,
    );
  }
}

// The loss on a fixture case: class-index targets as a float64 tensor of their shape.
function runCase(loss: Loss, c: LossCase): { value: number; dinputs: Tensor } {
  const outputs = Tensor.from(c.outputs, f64);
  const value = loss.forward(outputs, Tensor.from(c.targets, f64));
  return { value, dinputs: loss.backward() };
}

Deno.test("sequence cross-entropy equals PyTorch in float64 (values and gradients, 1e-9)", async (t) => {
  const cases: [string, (c: LossCase) => Loss][] = [
    ["sequence", () => new SoftmaxCrossEntropy()],
    ["sequenceIgnore0", (c) => new SoftmaxCrossEntropy({ ignoreIndex: c.ignore_index })],
    ["sequenceIgnore3", (c) => new SoftmaxCrossEntropy({ ignoreIndex: c.ignore_index })],
    ["sequenceProbabilities", () => new SoftmaxCrossEntropy()],
    ["rank2Ignore2", (c) => new SoftmaxCrossEntropy({ ignoreIndex: c.ignore_index })],
    ["categorical", () => new CategoricalCrossEntropy()],
    ["categoricalIgnore1", (c) => new CategoricalCrossEntropy({ ignoreIndex: c.ignore_index })],
  ];
  for (const [name, make] of cases) {
    const c = fixture.losses[name];
    await t.step(`${name}: ${make(c)}`, () => {
      const { value, dinputs } = runCase(make(c), c);
      assertRelative([value], [c.loss], `${name} value`);
      assertRelative(dinputs.data, Tensor.from(c.dinputs, f64).data, `${name} dinputs`);
      assert.deepEqual(dinputs.shape, Tensor.from(c.outputs).shape);
    });
  }
  await t.step("ignoring a class changes the value (the fixtures are not all alike)", () => {
    const { sequence, sequenceIgnore0 } = fixture.losses;
    assert.ok(Math.abs(sequence.loss - sequenceIgnore0.loss) > 0.1);
  });
});

Deno.test("sequence cross-entropy: target forms, all-ignored batches, gradients", async (t) => {
  const c = fixture.losses.sequenceIgnore0;
  const outputs = Tensor.from(c.outputs, f64); // [3, 4, 5]
  const ids = (c.targets as number[][]).flat();

  await t.step("flat arrays (number[], Int32Array) and float32 id tensors give the same", () => {
    const reference = new SoftmaxCrossEntropy({ ignoreIndex: 0 });
    const value = reference.forward(outputs, Tensor.from(c.targets, f64));
    const gradient = reference.backward().data.slice();
    for (const targets of [ids, Int32Array.from(ids), Tensor.from(c.targets)]) {
      const loss = new SoftmaxCrossEntropy({ ignoreIndex: 0 });
      assert.equal(loss.forward(outputs, targets), value);
      assert.deepEqual(loss.backward().data, gradient);
    }
  });

  await t.step("the rank of the outputs decides: [batch, T] targets are indices, not rows", () => {
    // [3, 4] targets with [3, 4] outputs would be one-hot rows; with [3, 4, 5], indices.
    const loss = new SoftmaxCrossEntropy();
    const asSequence = loss.forward(outputs, Tensor.from(c.targets, f64));
    const rows = outputs.reshape([12, 5]);
    assert.equal(new SoftmaxCrossEntropy().forward(rows, ids), asSequence);
  });

  await t.step("every position ignored: 0 and a zero gradient, not PyTorch's NaN", () => {
    for (
      const loss of [
        new SoftmaxCrossEntropy({ ignoreIndex: 2 }),
        new CategoricalCrossEntropy({ ignoreIndex: 2 }),
      ]
    ) {
      const p = Tensor.filled([2, 3, 4], 0.25, f64);
      assert.equal(loss.forward(p, Tensor.filled([2, 3], 2, f64)), 0);
      assert.deepEqual(Array.from(loss.backward().data, Math.abs), new Array(24).fill(0));
    }
  });

  await t.step("ignored positions pass no gradient and count out of the mean", () => {
    const loss = new SoftmaxCrossEntropy({ ignoreIndex: -100 });
    const x = Tensor.from([[[1, 2, 3], [3, 1, 0]]], f64);
    const value = loss.forward(x, Tensor.from([[2, -100]], f64));
    const p2 = Math.exp(3) / (Math.exp(1) + Math.exp(2) + Math.exp(3));
    assert.ok(Math.abs(value + Math.log(p2)) < 1e-15);
    const d = loss.backward().toArray<number[][][]>();
    assert.deepEqual(d[0][1], [0, 0, 0]);
    assert.ok(Math.abs(d[0][0][2] - (p2 - 1)) < 1e-15); // divided by 1 counted position
  });

  await t.step("gradients match central differences, with and without ignoreIndex", () => {
    const random = new RandomState(5);
    const x = Tensor.zeros([2, 3, 4], f64);
    for (let i = 0; i < x.size; i++) x.data[i] = 4 * random.random() - 2;
    const targets = Tensor.from([[1, 0, 3], [0, 2, 2]], f64);
    const probabilities = Tensor.zeros([2, 3, 4], f64);
    for (let i = 0; i < x.size; i += 4) {
      let sum = 0;
      for (let j = 0; j < 4; j++) sum += probabilities.data[i + j] = Math.exp(x.data[i + j]);
      for (let j = 0; j < 4; j++) probabilities.data[i + j] /= sum;
    }
    const subjects: [Loss, Tensor][] = [
      [new SoftmaxCrossEntropy(), x],
      [new SoftmaxCrossEntropy({ ignoreIndex: 0 }), x],
      [new CategoricalCrossEntropy(), probabilities],
      [new CategoricalCrossEntropy({ ignoreIndex: 2 }), probabilities],
    ];
    for (const [loss, inputs] of subjects) {
      const report = checkGradients(loss, inputs, { targets });
      assert.ok(report.maxRelativeError <= 1e-6, `${loss}\n${report}`);
    }
  });
});

Deno.test("sequence cross-entropy: errors name the shapes, the label and its position", async (t) => {
  const outputs = Tensor.zeros([2, 3, 4], f64);
  for (const make of [() => new SoftmaxCrossEntropy(), () => new CategoricalCrossEntropy()]) {
    const kind = make().kind;
    await t.step(`${kind}: targets of another shape`, () => {
      assert.throws(() => make().forward(outputs, Tensor.zeros([2, 4], f64)), {
        name: "TypeError",
        message: `${kind}.forward: targets have shape [2, 4], expected class indices [2, 3] ` +
          "or one-hot rows [2, 3, 4] (outputs shape [2, 3, 4])",
      });
      assert.throws(() => make().forward(outputs, [0, 1, 2]), {
        name: "TypeError",
        message: `${kind}.forward: targets hold 3 class indices, outputs of shape [2, 3, 4] ` +
          "need 6 ([2, 3] flattened)",
      });
    });
    await t.step(`${kind}: an index out of range, or not an integer`, () => {
      assert.throws(() => make().forward(outputs, Tensor.from([[0, 1, 2], [3, 4, 0]])), {
        name: "RangeError",
        message: `${kind}.forward: label 4 at position [1, 1] is out of range for 4 classes`,
      });
      assert.throws(() => make().forward(outputs, Tensor.from([[0, 1.5, 2], [3, 0, 0]])), {
        name: "RangeError",
        message: `${kind}.forward: label 1.5 at position [0, 1] is out of range for 4 classes ` +
          "(not an integer class index)",
      });
      // The ignored id is accepted out of range; other negative ids are not.
      const ignoring = createLoss(kind, { ignoreIndex: -1 });
      ignoring.forward(outputs, Tensor.from([[0, -1, 2], [3, -1, 0]]));
      assert.throws(() => ignoring.forward(outputs, Tensor.from([[0, -2, 2], [3, 0, 0]])), {
        message: /label -2 at position \[0, 1\] is out of range for 4 classes/,
      });
    });
    await t.step(`${kind}: nested arrays straight to the loss are pointed at Tensor.from`, () => {
      assert.throws(() => make().forward(outputs, [[0, 1, 2], [3, 0, 0]] as unknown as number[]), {
        name: "TypeError",
        message: `${kind}.forward: targets are nested arrays; pass class indices [2, 3] as a ` +
          "Tensor (Tensor.from(y)) or flattened (outputs shape [2, 3, 4])",
      });
    });
    await t.step(`${kind}: ignoreIndex is checked, saved, restored and shown`, () => {
      const loss = createLoss(kind, { ignoreIndex: 0 });
      assert.equal(loss.toString(), `${kind}(ignoreIndex=0)`);
      const copy = createLoss(kind, JSON.parse(JSON.stringify(loss.config())));
      assert.deepEqual(copy.config(), { ignoreIndex: 0 });
      assert.equal(copy.toString(), `${kind}(ignoreIndex=0)`);
      assert.deepEqual(make().config(), {});
      assert.throws(() => createLoss(kind, { ignoreIndex: 0.5 }), {
        name: "RangeError",
        message: `new ${kind}: ignoreIndex must be an integer (a class index, or e.g. -100), ` +
          "got 0.5",
      });
    });
  }
});

// A third-party layer: a lookup table [vocab, classes] from token ids [batch, T] to logits
// [batch, T, classes], as a bigram language model is.
class Bigram implements Layer {
  readonly kind = "Bigram";
  readonly table: Param; // [vocab, classes]
  #ids?: Tensor; // [batch, T]

  constructor(readonly vocab: number, readonly classes: number, seed = 1) {
    this.table = new Param("table", Tensor.randn([vocab, classes], { seed, scale: 0.1 }));
  }

  forward(inputs: Tensor): Tensor {
    const [batch, steps] = inputs.shape;
    const classes = this.classes;
    const out = Tensor.zeros([batch, steps, classes]);
    const w = this.table.value.data;
    for (let i = 0; i < batch * steps; i++) {
      const row = inputs.data[i] * classes;
      for (let j = 0; j < classes; j++) out.data[i * classes + j] = w[row + j];
    }
    this.#ids = inputs;
    return out;
  }

  // dtable[id] += dvalues[b, t]; token ids get no gradient
  backward(dvalues: Tensor): Tensor {
    const ids = this.#ids!;
    const classes = this.classes;
    const dw = this.table.grad.data;
    for (let i = 0; i < ids.size; i++) {
      const row = ids.data[i] * classes;
      for (let j = 0; j < classes; j++) dw[row + j] += dvalues.data[i * classes + j];
    }
    return Tensor.zeros(ids.shape, { dtype: ids.dtype });
  }

  params(): Param[] {
    return [this.table];
  }

  config(): JsonObject {
    return { vocab: this.vocab, classes: this.classes };
  }

  toString(): string {
    return `Bigram(vocab=${this.vocab}, classes=${this.classes})`;
  }
}

// Sequences of ids 1…7 whose next token is id % 7 + 1, padded at the end with 0 (the
// padding id, targets 0 too): x and y [samples, T] as nested arrays.
function sequences(samples: number, steps: number, seed: number): [number[][], number[][]] {
  const random = new RandomState(seed);
  const x: number[][] = [];
  const y: number[][] = [];
  for (let s = 0; s < samples; s++) {
    const length = 3 + Math.floor(random.random() * (steps - 2)); // 3 … steps
    const xs: number[] = [];
    const ys: number[] = [];
    for (let t = 0; t < steps; t++) {
      const id = t < length ? 1 + Math.floor(random.random() * 7) : 0;
      xs.push(id);
      ys.push(id === 0 ? 0 : id % 7 + 1);
    }
    x.push(xs);
    y.push(ys);
  }
  return [x, y];
}

Deno.test("token ids [batch, T] through fit, evaluate and predict", async (t) => {
  const [x, y] = sequences(40, 6, 3);
  const [vx, vy] = sequences(12, 6, 4);

  await t.step(
    "loss falls and per-position accuracy rises, with validationSplit and shuffle",
    () => {
      const bigram = new Bigram(8, 8);
      const padRow = bigram.table.value.data.slice(0, 8);
      const model = new Sequential([bigram]);
      const loss = new SoftmaxCrossEntropy({ ignoreIndex: 0 });
      const before = model.evaluate(x, y, { loss });
      assert.ok(before.accuracy < 0.4, `accuracy before training ${before.accuracy}`);
      const history = model.fit(x, y, {
        loss,
        optimizer: new Adam({
          learningRate: 0.1,
          globalClipNorm: 1,
          schedule: new CosineDecay({ steps: 80, warmupSteps: 5, minFactor: 0.1 }),
        }),
        epochs: 15,
        batchSize: 8,
        validationSplit: 0.25,
        seed: 2,
      });
      assert.ok(history.loss.at(-1)! < history.loss[0] / 4, `loss ${history.loss}`);
      assert.ok(history.accuracy[0] < 0.75, `first epoch's accuracy ${history.accuracy[0]}`);
      assert.equal(history.accuracy.at(-1), 1);
      assert.equal(history.valAccuracy.at(-1), 1);
      assert.ok(history.valLoss.at(-1)! < history.valLoss[0]);
      // Id 0 appears only at ignored positions, so its row never got a gradient.
      assert.deepEqual(bigram.table.value.data.slice(0, 8), padRow);
    },
  );

  await t.step("inferred accuracy counts the positions that are not padding", () => {
    const bigram = new Bigram(8, 8, 7);
    const model = new Sequential([bigram]);
    const loss = new SoftmaxCrossEntropy({ ignoreIndex: 0 });
    const logs = model.evaluate(vx, vy, { loss, batchSize: 5 });
    // By hand: argmax of each predicted row against the targets, padding left out, each
    // batch's fraction weighted by its sample count (as fit's Meter does).
    const predicted = model.predict(vx, { batchSize: 5 });
    assert.deepEqual(predicted.shape, [12, 6, 8]);
    let expected = 0;
    for (let start = 0; start < 12; start += 5) {
      let right = 0, counted = 0;
      for (let s = start; s < Math.min(start + 5, 12); s++) {
        for (let t = 0; t < 6; t++) {
          if (vy[s][t] === 0) continue;
          counted++;
          const row = Array.from(predicted.data.subarray((s * 6 + t) * 8, (s * 6 + t + 1) * 8));
          if (row.indexOf(Math.max(...row)) === vy[s][t]) right++;
        }
      }
      expected += (right / counted) * Math.min(5, 12 - start);
    }
    assert.ok(Math.abs(logs.accuracy - expected / 12) < 1e-12, `${logs.accuracy}`);
    // The same metric given explicitly agrees; without ignoreIndex it counts padding too.
    const explicit = model.evaluate(vx, vy, {
      loss,
      batchSize: 5,
      metrics: [new CategoricalAccuracy({ ignoreIndex: 0 })],
    });
    assert.equal(explicit.accuracy, logs.accuracy);
    const plain = model.evaluate(vx, vy, { loss: new SoftmaxCrossEntropy(), batchSize: 12 });
    assert.equal(typeof plain.accuracy, "number");
    assert.notEqual(plain.loss, logs.loss);
  });

  await t.step("evaluate's loss is the loss of predict's outputs", () => {
    const model = new Sequential([new Bigram(8, 8, 9)]);
    const loss = new SoftmaxCrossEntropy({ ignoreIndex: 0 });
    const whole = model.evaluate(vx, vy, { loss });
    const direct = loss.forward(model.predict(vx), Tensor.from(vy));
    assert.ok(Math.abs(whole.loss - direct) < 1e-6);
  });

  await t.step("trained on one split, it predicts unseen sequences", () => {
    const model = new Sequential([new Bigram(8, 8, 11)]);
    model.fit(x, y, {
      loss: new SoftmaxCrossEntropy({ ignoreIndex: 0 }),
      optimizer: new Adam({ learningRate: 0.1 }),
      epochs: 20,
      batchSize: 16,
      validationData: [vx, vy],
    });
    const logs = model.evaluate(vx, vy, { loss: new SoftmaxCrossEntropy({ ignoreIndex: 0 }) });
    assert.equal(logs.accuracy, 1);
  });
});
