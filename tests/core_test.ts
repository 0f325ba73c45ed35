// The core contract: tensors, the registry, the runner, the reference kernels, the optimizers.
import assert from "node:assert/strict";
import {
  accuracy,
  Adam,
  checkGradients,
  createLayer,
  Dense,
  type JsonObject,
  type Layer,
  Param,
  registerLayer,
  ReLU,
  Sequential,
  SGD,
  softmax,
  SoftmaxCrossEntropy,
  spiralData,
  takeRows,
  Tensor,
} from "../mod.ts";
import { naiveBackend } from "../plugin.ts";

const f64 = { dtype: "float64" } as const;

Deno.test("Tensor builds from nested arrays and reads back", () => {
  const t = Tensor.from([[[1, 2]], [[3, 4]]], f64);
  assert.deepEqual(t.shape, [2, 1, 2]);
  assert.equal(t.get(1, 0, 1), 4);
  assert.deepEqual(t.toArray(), [[[1, 2]], [[3, 4]]]);
  assert.equal(t.toString(), "Tensor(float64, [2, 1, 2])");
  assert.equal(Tensor.filled([2], 7).data[1], 7);
  assert.equal(Tensor.from([0.1]).data[0], Math.fround(0.1));
  assert.equal(t.clone({ dtype: "float32" }).dtype, "float32");
  assert.throws(() => t.get(2, 0, 0), {
    name: "RangeError",
    message: /index 2 is out of range for dimension 0/,
  });
});

Deno.test("the naive kernels compute the three products of backpropagation", () => {
  const a = new Float64Array([1, 2, 3, 4, 5, 6]); // [2, 3]
  const b = new Float64Array([7, 8, 9, 10, 11, 12]); // [3, 2]
  const c = new Float64Array(4);
  naiveBackend.matmul(a, b, c, 2, 3, 2);
  assert.deepEqual(Array.from(c), [58, 64, 139, 154]);
  naiveBackend.matmul(a, b, c, 2, 3, 2, true);
  assert.deepEqual(Array.from(c), [116, 128, 278, 308]);
  // aᵀ·b with a [2, 3] and b [2, 2]: c [3, 2]
  const t = new Float64Array(6);
  naiveBackend.matmulTransA(a, new Float64Array([1, 0, 0, 1]), t, 2, 3, 2);
  assert.deepEqual(Array.from(t), [1, 4, 2, 5, 3, 6]);
  // a·bᵀ with a [2, 3] and b [2, 3]: c [2, 2]
  const u = new Float64Array(4);
  naiveBackend.matmulTransB(a, a, u, 2, 2, 3);
  assert.deepEqual(Array.from(u), [14, 32, 32, 77]);
  const sums = new Float64Array(3);
  naiveBackend.sumColumns(a, sums, 2, 3);
  assert.deepEqual(Array.from(sums), [5, 7, 9]);
  naiveBackend.addBias(a, new Float64Array([1, 1, 1]), 2, 3);
  assert.deepEqual(Array.from(a), [2, 3, 4, 5, 6, 7]);
});

Deno.test("Adam follows the book's formulas for three steps", () => {
  // p = 1, lr 0.1, decay 0.1, gradients 2, −1, 0.5. Step 0 by hand: m = 0.2, v = 0.004,
  // m̂ = 2, v̂ = 4, p = 1 − 0.1·2/(2 + 1e-7) = 0.900000005.
  const p = new Param("w", Tensor.from([1], f64));
  const adam = new Adam({ learningRate: 0.1, decay: 0.1 });
  const expected = [0.9000000049999998, 0.8757875483806143, 0.8474184548417819];
  [2, -1, 0.5].forEach((g, t) => {
    p.grad.data[0] = g;
    adam.step([p]);
    assert.ok(Math.abs(p.value.data[0] - expected[t]) < 1e-15, `step ${t}: ${p.value.data[0]}`);
  });
  assert.equal(adam.iterations, 3);
  assert.equal(adam.currentLearningRate, 0.1 / 1.3);
});

Deno.test("Adam state round-trips through getState and setState", () => {
  const p = new Param("w", Tensor.from([1, 2], f64));
  const a = new Adam({ learningRate: 0.1 });
  p.grad.data.set([0.5, -0.5]);
  a.step([p]);
  const b = new Adam({ learningRate: 0.1 });
  const q = new Param("w", p.value.clone());
  b.setState([q], a.getState([p]));
  q.grad.data.set([1, 1]);
  p.grad.data.set([1, 1]);
  a.step([p]);
  b.step([q]);
  assert.deepEqual(q.value.data, p.value.data);
});

Deno.test("SGD steps against the gradient", () => {
  const p = new Param("w", Tensor.from([1, -1], f64));
  p.grad.data.set([0.5, 2]);
  new SGD({ learningRate: 0.1 }).step([p]);
  assert.deepEqual(Array.from(p.value.data), [0.95, -1.2]);
});

Deno.test("softmax is stable at large logits and SoftmaxCrossEntropy matches ln(3) at zero", () => {
  const p = softmax(Tensor.from([[1000, 1000, -1000]], f64));
  assert.deepEqual(p.toArray(), [[0.5, 0.5, 0]]);
  const loss = new SoftmaxCrossEntropy().forward(Tensor.zeros([4, 3], f64), [0, 1, 2, 0]);
  assert.ok(Math.abs(loss - Math.log(3)) < 1e-15);
  // The book clips p to 1 − 1e-7, so a perfect prediction still costs −ln(1 − 1e-7).
  const perfect = new SoftmaxCrossEntropy().forward(Tensor.from([[1000, 0]], f64), [0]);
  assert.ok(Math.abs(perfect - -Math.log(1 - 1e-7)) < 1e-18);
});

Deno.test("accuracy counts argmax hits for indices and one-hot rows", () => {
  const outputs = Tensor.from([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]);
  assert.equal(accuracy(outputs, [1, 1, 1]), 2 / 3);
  assert.equal(accuracy(outputs, Tensor.from([[0, 1], [1, 0], [0, 1]])), 1);
});

Deno.test("takeRows gathers rows in order, into a new tensor or the given one", () => {
  const x = Tensor.from([[1, 2], [3, 4], [5, 6]]);
  const rows = new Int32Array([2, 0]);
  assert.deepEqual(takeRows(x, rows).toArray(), [[5, 6], [1, 2]]);
  const out = Tensor.zeros([2, 2]);
  assert.equal(takeRows(x, rows, out), out);
  assert.deepEqual(out.toArray(), [[5, 6], [1, 2]]);
  assert.throws(
    () => takeRows(x, rows, Tensor.zeros([3, 2])),
    { name: "TypeError", message: "takeRows: out is float32 [3, 2], expected float32 [2, 2]" },
  );
  assert.throws(() => takeRows(x, rows, Tensor.zeros([2, 2], f64)), TypeError);
});

// A third-party layer written only against the Layer interface.
class Scale implements Layer {
  readonly kind = "Scale";
  readonly factor: Param;
  #inputs?: Tensor;
  constructor(config: JsonObject = {}) {
    this.factor = new Param("factor", Tensor.from([Number(config.initial ?? 1)], f64));
  }
  forward(inputs: Tensor): Tensor {
    this.#inputs = inputs;
    const s = this.factor.value.data[0];
    return new Tensor(inputs.data.map((v) => v * s), inputs.shape);
  }
  // dinputs = dvalues·s   dfactor += Σ dvalues·inputs
  backward(dvalues: Tensor): Tensor {
    const x = this.#inputs!.data;
    const s = this.factor.value.data[0];
    let sum = 0;
    for (let i = 0; i < x.length; i++) sum += dvalues.data[i] * x[i];
    this.factor.grad.data[0] += sum;
    return new Tensor(dvalues.data.map((d) => d * s), dvalues.shape);
  }
  params(): Param[] {
    return [this.factor];
  }
  config(): JsonObject {
    return { initial: this.factor.value.data[0] };
  }
  toString(): string {
    return `Scale(${this.factor.value.data[0]})`;
  }
}

Deno.test("a registered third-party layer works in Sequential like a built-in", () => {
  registerLayer("Scale", (config) => new Scale(config));
  const model = new Sequential([
    new Dense(2, 8, { ...f64, seed: 1 }),
    new Scale({ initial: 0.5 }),
    new ReLU(),
    new Dense(8, 2, { ...f64, seed: 2 }),
  ]);
  assert.equal(model.params().length, 5);
  const report = checkGradients(model, Tensor.from([[0.3, -0.2], [1, 0.5]], f64), {
    loss: new SoftmaxCrossEntropy(),
    targets: [0, 1],
  });
  assert.ok(report.maxRelativeError < 1e-6, report.toString());
  assert.equal(report.tensors[3].name, "1.Scale.factor");
  const x = [[0, 0], [0, 1], [1, 0], [1, 1]];
  const history = model.fit(x, [0, 1, 1, 0], {
    loss: new SoftmaxCrossEntropy(),
    optimizer: new Adam({ learningRate: 0.05 }),
    epochs: 400,
  });
  assert.ok(
    history.loss.at(-1)! < 0.5 * history.loss[0],
    `loss ${history.loss[0]} → ${history.loss.at(-1)}`,
  );
  assert.notEqual((model.layers[1] as Scale).factor.value.data[0], 0.5, "the factor was trained");

  const rebuilt = Sequential.fromConfig(JSON.parse(JSON.stringify(model.config())));
  assert.equal(
    rebuilt.toString(),
    model.toString().replace(
      /Scale\([^)]*\)/,
      `Scale(${(model.layers[1] as Scale).factor.value.data[0]})`,
    ),
  );
  assert.equal(createLayer("Scale", { initial: 2 }).toString(), "Scale(2)");
});

Deno.test("Sequential rebuilds from its config and summarizes itself", () => {
  const model = new Sequential([
    new Dense(2, 64, { seed: 1, weightRegularizerL2: 5e-4 }),
    new ReLU(),
    new Dense(64, 3, { seed: 2 }),
  ]);
  const rebuilt = Sequential.fromConfig(JSON.parse(JSON.stringify(model.config())));
  assert.equal(rebuilt.toString(), model.toString());
  assert.equal(
    model.toString(),
    "Sequential(Dense(in=2, out=64, weightRegularizerL2=0.0005) → ReLU() → Dense(in=64, out=3))",
  );
  assert.match(model.summary(), /total: 387 params \(float32\)/);
});

Deno.test("predict in batches equals predict at once, and fit reports the penalty", () => {
  const { x, y } = spiralData(20, 3);
  const model = new Sequential([
    new Dense(2, 8, { seed: 1, weightRegularizerL2: 1e-3 }),
    new ReLU(),
    new Dense(8, 3, { seed: 2 }),
  ]);
  // Equal up to float32 rounding: small batches may run on another kernel than the whole.
  const batched = model.predict(x, { batchSize: 7 }).data;
  const whole = model.predict(x).data;
  assert.equal(batched.length, whole.length);
  batched.forEach((v, i) =>
    assert.ok(Math.abs(v - whole[i]) < 1e-6, `element ${i}: ${v} vs ${whole[i]}`)
  );
  const history = model.fit(x, y, {
    loss: new SoftmaxCrossEntropy(),
    optimizer: new Adam(),
    epochs: 2,
    batchSize: 16,
  });
  assert.equal(history.loss.length, 2);
  assert.ok(history.regularizationLoss[0] > 0);
});
