import assert from "node:assert/strict";
import {
  checkGradients,
  createLayer,
  Dense,
  modelToBytes,
  RandomState,
  ReLU,
  Residual,
  Sequential,
  Tanh,
  Tensor,
  toTorchStateDict,
} from "../mod.ts";
import { assertGradientsOf } from "./_assert.ts";

function randomTensor(shape: number[], seed: number): Tensor {
  return Tensor.randn(shape, { seed, dtype: "float64" });
}

Deno.test("Dense on rank-3 inputs applies to the last axis", async (t) => {
  const dense = new Dense(4, 3, { dtype: "float64", seed: 1 });
  const x = randomTensor([2, 5, 4], 2);

  await t.step("equals the same rows through a 2-D Dense, with the leading axes kept", () => {
    const out = dense.forward(x);
    assert.deepEqual(out.shape, [2, 5, 3]);
    const flat = dense.forward(new Tensor(x.data, [10, 4]));
    assert.deepEqual([...out.data], [...flat.data]);
  });

  await t.step("gradients match central differences in float64", () => {
    const report = checkGradients(dense, x);
    assert.ok(report.maxRelativeError < 1e-6, report.toString());
  });

  await t.step("a wrong last axis and a wrong dvalues shape are clear errors", () => {
    assert.throws(() => dense.forward(randomTensor([2, 5, 3], 3)), {
      name: "TypeError",
      message:
        "Dense.forward: inputs has 3 features in its last axis, expected 4 (inputs shape [2, 5, 3])",
    });
    assert.throws(() => dense.forward(randomTensor([2, 1, 5, 3], 3)), /need a Flatten\(\)/);
    dense.forward(x);
    assert.throws(() => dense.backward(randomTensor([10, 3], 4)), {
      name: "TypeError",
      message:
        "Dense.backward: dvalues is float64 [10, 3], expected float64 [2, 5, 3] like the last forward's outputs",
    });
  });
});

Deno.test("Residual adds its inputs to its layers' outputs", async (t) => {
  const inner = () => [
    new Dense(3, 6, { dtype: "float64", seed: 1 }),
    new Tanh(),
    new Dense(6, 3, { dtype: "float64", seed: 2 }),
  ];
  const x = randomTensor([2, 4, 3], 5);

  await t.step("outputs = inputs + layers(inputs)", () => {
    const block = new Residual(inner());
    const plain = new Sequential(inner());
    const out = block.forward(x);
    const f = plain.forward(x);
    for (let i = 0; i < out.size; i++) assert.equal(out.data[i], x.data[i] + f.data[i]);
  });

  await t.step("gradients match central differences in float64, nested too", () => {
    const report = checkGradients(new Residual(inner()), x);
    assert.ok(report.maxRelativeError < 1e-6, report.toString());
    const nested = new Sequential([
      new Residual([new Residual(inner()), new Dense(3, 3, { dtype: "float64", seed: 7 })]),
      new Tanh(),
    ]);
    const deep = checkGradients(nested, x);
    assert.ok(deep.maxRelativeError < 1e-6, deep.toString());
  });

  await t.step("training reuses buffers and inference gives fresh tensors", () => {
    const block = new Residual(inner());
    const a = block.forward(x, { training: true });
    const b = block.forward(x, { training: true });
    assert.equal(a, b);
    assert.notEqual(block.forward(x), block.forward(x));
  });

  await t.step("a shape-changing inner stack and a wrong dvalues are clear errors", () => {
    const block = new Residual([new Dense(3, 2, { dtype: "float64" })]);
    assert.throws(() => block.forward(x), {
      name: "TypeError",
      message:
        "Residual.forward: the inner layers turned float64 [2, 4, 3] into float64 [2, 4, 2]; a residual block must keep the shape and dtype to add its input back",
    });
    assert.throws(
      () => new Residual(inner()).backward(x),
      /Residual\.backward: call forward first/,
    );
    const ok = new Residual(inner());
    ok.forward(x);
    assert.throws(() => ok.backward(randomTensor([8, 3], 1)), /expected \[2, 4, 3\]/);
    assert.throws(() => new Residual([{} as ReLU]), /new Residual: layers\[0\] does not implement/);
  });

  await t.step("saves, loads and maps to PyTorch like a nested Sequential", () => {
    const model = new Sequential([
      new Dense(3, 3, { seed: 3 }),
      new Residual([new Dense(3, 4, { seed: 4 }), new ReLU(), new Dense(4, 3, { seed: 5 })]),
    ]);
    assert.equal(
      model.layers[1].toString(),
      "Residual(Dense(in=3, out=4) → ReLU() → Dense(in=4, out=3))",
    );
    const rebuilt = createLayer("Residual", model.layers[1].config());
    assert.ok(rebuilt instanceof Residual);
    assert.equal(rebuilt.toString(), model.layers[1].toString());
    const loaded = Sequential.fromBytes(modelToBytes(model));
    assert.ok(loaded.layers[1] instanceof Residual);
    const input = Tensor.randn([5, 3], { random: new RandomState(9) });
    assert.deepEqual(loaded.predict(input).data, model.predict(input).data);
    const names = [...toTorchStateDict(model).keys()];
    assert.deepEqual(names, [
      "0.weight",
      "0.bias",
      "1.0.weight",
      "1.0.bias",
      "1.2.weight",
      "1.2.bias",
    ]);
  });
});

Deno.test("whole sequence models (GPT, LSTM, GRU) match central differences in float64", () => {
  for (const plugin of ["MultiHeadAttention", "LSTM", "GRU"]) assertGradientsOf(plugin);
});
