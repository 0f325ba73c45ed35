import assert from "node:assert/strict";
import {
  checkGradients,
  createLayer,
  Dense,
  GRU,
  loadTorchStateDict,
  LSTM,
  type NestedArray,
  Sequential,
  Tensor,
  toTorchStateDict,
  withBackend,
} from "../mod.ts";
import { exp, sigmoid, sigmoid32, tanh, tanh32 } from "../layers/_recurrent.ts";
import { uniformTensor } from "./_gradient_cases.ts";

const f64 = { dtype: "float64" } as const;
type Recurrent = LSTM | GRU;
type Kind = "LSTM" | "GRU";
const TORCH_NAMES = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"] as const;

interface TorchCase {
  kind: Kind;
  inputSize: number;
  hidden: number;
  returnSequences: boolean;
  params: Record<typeof TORCH_NAMES[number], NestedArray>;
  inputs: NestedArray;
  outputs: NestedArray;
  projection: NestedArray;
  dinputs: NestedArray;
  grads: Record<typeof TORCH_NAMES[number], NestedArray>;
}

const fixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/torch_recurrent.json", import.meta.url)),
) as { torch: string; cases: Record<string, TorchCase> };

function build(kind: Kind, inputSize: number, hidden: number, options = {}): Recurrent {
  return kind === "LSTM"
    ? new LSTM(inputSize, hidden, options)
    : new GRU(inputSize, hidden, options);
}

// PyTorch's [rows, cols] weight as chainrule's [cols, rows].
function transposed(values: NestedArray): number[][] {
  const rows = values as number[][];
  return rows[0].map((_, c) => rows.map((row) => row[c]));
}

/**
 * Asserts |actual − expected| ≤ tolerance·max(|expected|, floor) element by element: relative
 * (the default floor is only there for exact zeros), or mixed with floor 1.
 */
function assertRelative(
  actual: Tensor,
  expected: Tensor,
  what: string,
  tolerance = 1e-9,
  floor = 1e-12,
): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  for (let i = 0; i < expected.size; i++) {
    const a = actual.data[i], e = expected.data[i];
    assert.ok(
      Math.abs(a - e) <= tolerance * Math.max(Math.abs(e), floor),
      `${what}[${i}]: got ${a}, expected ${e}`,
    );
  }
}

function fromTorch(c: TorchCase, options = {}): Recurrent {
  return build(c.kind, c.inputSize, c.hidden, {
    ...f64,
    returnSequences: c.returnSequences,
    inputWeights: transposed(c.params.weight_ih_l0),
    recurrentWeights: transposed(c.params.weight_hh_l0),
    inputBiases: c.params.bias_ih_l0,
    recurrentBiases: c.params.bias_hh_l0,
    ...options,
  });
}

function checkAgainstTorch(c: TorchCase, training: boolean): void {
  const layer = fromTorch(c);
  const inputs = Tensor.from(c.inputs, f64);
  const outputs = layer.forward(inputs, { training });
  assertRelative(outputs, Tensor.from(c.outputs, f64), "outputs");
  const dinputs = layer.backward(Tensor.from(c.projection, f64));
  assertRelative(dinputs, Tensor.from(c.dinputs, f64), "dinputs");
  const grads = [
    Tensor.from(transposed(c.grads.weight_ih_l0), f64),
    Tensor.from(transposed(c.grads.weight_hh_l0), f64),
    Tensor.from(c.grads.bias_ih_l0, f64),
    Tensor.from(c.grads.bias_hh_l0, f64),
  ];
  layer.params().forEach((param, k) => assertRelative(param.grad, grads[k], param.name));
}

for (const kind of ["LSTM", "GRU"] as const) {
  const lower = kind.toLowerCase();
  Deno.test(kind, async (t) => {
    for (const sequences of [true, false]) {
      const name = `${lower}_${sequences ? "sequences" : "last"}`;
      await t.step(`equals PyTorch ${fixture.torch} in float64 (${name})`, () => {
        const c = fixture.cases[name];
        assert.equal(c.kind, kind);
        assert.equal(c.returnSequences, sequences);
        checkAgainstTorch(c, false);
        checkAgainstTorch(c, true);
        withBackend("js", () => checkAgainstTorch(c, true));
      });
    }

    await t.step("the weights load from PyTorch's state dict by its names", () => {
      const c = fixture.cases[`${lower}_sequences`];
      const fresh = build(kind, c.inputSize, c.hidden, f64);
      const model = new Sequential([fresh]);
      const state = new Map(
        TORCH_NAMES.map((n) => [`0.${n}`, Tensor.from(c.params[n], f64)] as const),
      );
      loadTorchStateDict(model, state);
      assertRelative(model.predict(Tensor.from(c.inputs, f64)), Tensor.from(c.outputs, f64), "out");
    });

    await t.step("gradients match central differences (≤ 1e-6), both output modes", () => {
      for (const returnSequences of [true, false]) {
        for (const [batch, steps, inputSize, hidden] of [[2, 4, 3, 5], [1, 1, 2, 3]]) {
          const layer = build(kind, inputSize, hidden, { ...f64, returnSequences, seed: 7 });
          // Larger weights than the initial range, so that the gates leave their linear part.
          for (const p of layer.params()) {
            for (let i = 0; i < p.value.size; i++) p.value.data[i] *= 3;
          }
          const x = uniformTensor([batch, steps, inputSize], 11);
          for (const training of [false, true]) {
            const report = checkGradients(layer, x, { training, seed: 3 });
            assert.ok(report.maxRelativeError <= 1e-6, report.toString());
          }
        }
      }
    });

    await t.step("the gradients accumulate (+=) and inputGradient: false skips dinputs", () => {
      const layer = build(kind, 3, 4, { ...f64, seed: 2 });
      const x = Tensor.randn([2, 3, 3], { ...f64, seed: 3 });
      const dy = Tensor.randn([2, 3, 4], { ...f64, seed: 4 });
      layer.forward(x, { training: true });
      const dx = layer.backward(dy).data.slice();
      const once = layer.params().map((p) => p.grad.data.slice());
      layer.forward(x, { training: true });
      layer.backward(dy, { inputGradient: false });
      layer.params().forEach((p, k) => {
        for (let i = 0; i < p.grad.size; i++) {
          assert.ok(Math.abs(p.grad.data[i] - 2 * once[k][i]) <= 1e-15 * Math.abs(once[k][i]));
        }
      });
      layer.forward(x, { training: true });
      assert.deepEqual(layer.backward(dy).data, dx, "the same dinputs again");
    });

    await t.step("float32 agrees with float64 to float32 precision", () => {
      const wide = build(kind, 4, 8, { ...f64, seed: 5 });
      const narrow = build(kind, 4, 8, { seed: 5 });
      assert.equal(narrow.dtype, "float32");
      const x = Tensor.randn([3, 6, 4], { ...f64, seed: 6 });
      const y64 = wide.forward(x);
      const y32 = narrow.forward(x.clone({ dtype: "float32" }), { training: true });
      assert.equal(y32.dtype, "float32");
      assertRelative(y32, y64, "float32 outputs", 1e-5, 1);
      const dy = Tensor.randn(y64.shape, { ...f64, seed: 8 });
      const dx64 = wide.backward(dy);
      const dx32 = narrow.backward(dy.clone({ dtype: "float32" }));
      assertRelative(dx32, dx64, "float32 dinputs", 1e-5, 1);
      narrow.params().forEach((p, k) => {
        assertRelative(p.grad, wide.params()[k].grad, `float32 ${p.name}`, 1e-5, 1);
      });
    });

    await t.step("params, initial range and seeds", () => {
      const gates = kind === "LSTM" ? 4 : 3;
      const layer = build(kind, 5, 16, { seed: 1 });
      assert.deepEqual(layer.params().map((p) => `${p.name} [${p.value.shape}]`), [
        `inputWeights [5,${gates * 16}]`,
        `recurrentWeights [16,${gates * 16}]`,
        `inputBiases [${gates * 16}]`,
        `recurrentBiases [${gates * 16}]`,
      ]);
      for (const p of layer.params()) {
        const values = [...p.value.data];
        assert.ok(values.every((v) => Math.abs(v) < 1 / 4), `${p.name} within ±1/√16`);
        assert.ok(Math.max(...values.map(Math.abs)) > 0.2, `${p.name} fills the range`);
      }
      const same = build(kind, 5, 16, { seed: 1 }).params().map((p) => [...p.value.data]);
      assert.deepEqual(layer.params().map((p) => [...p.value.data]), same);
      const other = build(kind, 5, 16, { seed: 2 }).params().map((p) => [...p.value.data]);
      assert.notDeepEqual(other, same);
    });

    await t.step("config round trip through createLayer; toString", () => {
      const layer = build(kind, 7, 9, { returnSequences: false, dtype: "float64" });
      assert.deepEqual(layer.config(), {
        inputSize: 7,
        hidden: 9,
        returnSequences: false,
        dtype: "float64",
      });
      const copy = createLayer(kind, layer.config()) as Recurrent;
      assert.equal(copy.kind, kind);
      assert.deepEqual(copy.config(), layer.config());
      assert.equal(copy.toString(), `${kind}(inputSize=7, hidden=9, returnSequences=false)`);
      assert.equal(build(kind, 64, 256).toString(), `${kind}(inputSize=64, hidden=256)`);
    });

    await t.step("toTorchStateDict names and transposes the params in a Sequential", () => {
      const gates = kind === "LSTM" ? 4 : 3;
      const layer = build(kind, 3, 2, { seed: 4 });
      const model = new Sequential([new Dense(5, 3, { seed: 1 }), layer]);
      const state = toTorchStateDict(model);
      assert.deepEqual(
        [...state.entries()].map(([name, value]) => `${name} [${value.shape}]`),
        [
          "0.weight [3,5]",
          "0.bias [3]",
          `1.weight_ih_l0 [${gates * 2},3]`,
          `1.weight_hh_l0 [${gates * 2},2]`,
          `1.bias_ih_l0 [${gates * 2}]`,
          `1.bias_hh_l0 [${gates * 2}]`,
        ],
      );
      assert.equal(state.get("1.weight_ih_l0")!.get(5, 1), layer.inputWeights.value.get(1, 5));
      assert.equal(state.get("1.weight_hh_l0")!.get(3, 0), layer.recurrentWeights.value.get(0, 3));
      assert.deepEqual(state.get("1.bias_hh_l0")!.data, layer.recurrentBiases.value.data);
    });

    await t.step("save and load give back the same model, bit for bit", async () => {
      const model = new Sequential([
        build(kind, 3, 6, { seed: 9 }),
        build(kind, 6, 4, { seed: 10, returnSequences: false }),
        new Dense(4, 2, { seed: 11 }),
      ]);
      const x = Tensor.randn([2, 5, 3], { seed: 12 });
      const dir = await Deno.makeTempDir();
      try {
        await model.save(`${dir}/rnn.safetensors`);
        const loaded = await Sequential.load(`${dir}/rnn.safetensors`);
        assert.deepEqual(loaded.layers.map(String), model.layers.map(String));
        assert.deepEqual(loaded.predict(x).data, model.predict(x).data);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });

    await t.step("training reuses its buffers; inference returns fresh tensors", () => {
      const layer = build(kind, 2, 3, { seed: 1 });
      const x = Tensor.randn([2, 4, 2], { seed: 2 });
      const a = layer.forward(x, { training: true });
      const b = layer.forward(x, { training: true });
      assert.equal(a.data, b.data);
      const c = layer.forward(x);
      assert.notEqual(c.data, b.data);
      assert.deepEqual(c.data, b.data);
    });

    await t.step("bad inputs, dvalues and constructor arguments are clear errors", () => {
      const where = `${kind}.forward`;
      const layer = build(kind, 3, 4);
      assert.throws(() => layer.backward(Tensor.zeros([2, 5, 4])), {
        name: "Error",
        message: `${kind}.backward: call forward first`,
      });
      assert.throws(() => layer.forward(Tensor.zeros([2, 3])), {
        name: "TypeError",
        message: `${where}: inputs must be 3-D [batch, T, inputSize], got shape [2, 3]`,
      });
      assert.throws(() => layer.forward(Tensor.zeros([2, 5, 4])), {
        name: "TypeError",
        message: `${where}: inputs have 4 features per step, expected 3 (inputs shape [2, 5, 4])`,
      });
      assert.throws(() => layer.forward(Tensor.zeros([2, 0, 3])), {
        name: "RangeError",
        message: `${where}: inputs have no time steps (T = 0, shape [2, 0, 3])`,
      });
      assert.throws(() => layer.forward(Tensor.zeros([0, 5, 3])), {
        name: "RangeError",
        message: `${where}: inputs are an empty batch (shape [0, 5, 3])`,
      });
      assert.throws(() => layer.forward(Tensor.zeros([2, 5, 3], f64)), {
        name: "TypeError",
        message:
          `${where}: inputs are float64, the layer is float32 (convert with tensor.clone({ dtype: "float32" }))`,
      });
      assert.throws(() => build(kind, 3, 4, f64).forward(Tensor.zeros([2, 5, 3])), {
        name: "TypeError",
        message:
          `${where}: inputs are float32, the layer is float64 (convert with tensor.clone({ dtype: "float64" }))`,
      });
      assert.throws(() => layer.forward([[[1, 2, 3]]] as unknown as Tensor), {
        name: "TypeError",
        message: `${where}: inputs must be a Tensor, got an array of 1`,
      });
      layer.forward(Tensor.zeros([2, 5, 3]));
      assert.throws(() => layer.backward(Tensor.zeros([2, 5, 3])), {
        name: "TypeError",
        message:
          `${kind}.backward: dvalues is float32 [2, 5, 3], expected float32 [2, 5, 4] like the last forward's outputs`,
      });
      const last = build(kind, 3, 4, { returnSequences: false });
      last.forward(Tensor.zeros([2, 5, 3]));
      assert.throws(() => last.backward(Tensor.zeros([2, 5, 4])), {
        name: "TypeError",
        message:
          `${kind}.backward: dvalues is float32 [2, 5, 4], expected float32 [2, 4] like the last forward's outputs`,
      });
      const where2 = `new ${kind}`;
      assert.throws(() => build(kind, 0, 4), {
        name: "RangeError",
        message: `${where2}: inputSize must be a positive integer, got 0`,
      });
      assert.throws(() => build(kind, 3, 2.5), {
        name: "RangeError",
        message: `${where2}: hidden must be a positive integer, got 2.5`,
      });
      assert.throws(() => build(kind, 3, 4, { dtype: "int8" }), {
        name: "TypeError",
        message: `${where2}: dtype must be "float32" or "float64", got "int8"`,
      });
      assert.throws(() => build(kind, 3, 4, { returnSequences: "no" }), {
        name: "TypeError",
        message: `${where2}: returnSequences must be a boolean, got "no"`,
      });
      const width = (kind === "LSTM" ? 4 : 3) * 4;
      assert.throws(() => build(kind, 3, 4, { inputWeights: [[1, 2], [3, 4]] }), {
        name: "TypeError",
        message: `${where2}: inputWeights has shape [2, 2], expected [3, ${width}]`,
      });
      assert.throws(() => build(kind, 3, 4, { recurrentBiases: [1, 2] }), {
        name: "TypeError",
        message: `${where2}: recurrentBiases has shape [2], expected [${width}]`,
      });
    });
  });
}

Deno.test("LSTM: a cell worked by hand over two steps", () => {
  // One unit, one input feature; W = [w_i, w_f, w_g, w_o], U likewise, biases zero.
  const w = [0.5, -0.25, 1, 0.75], u = [0.3, 0.2, -0.4, 0.1];
  const lstm = new LSTM(1, 1, {
    ...f64,
    inputWeights: [w],
    recurrentWeights: [u],
    inputBiases: [0.1, 0, 0, 0],
    recurrentBiases: [0, 0, 0.2, 0],
  });
  const xs = [1, -2];
  const s = (v: number) => 1 / (1 + Math.exp(-v));
  let h = 0, c = 0;
  const expected: number[] = [];
  for (const x of xs) {
    const i = s(w[0] * x + 0.1 + u[0] * h), f = s(w[1] * x + u[1] * h);
    const g = Math.tanh(w[2] * x + u[2] * h + 0.2), o = s(w[3] * x + u[3] * h);
    c = f * c + i * g;
    h = o * Math.tanh(c);
    expected.push(h);
  }
  const out = lstm.forward(Tensor.from([[[1], [-2]]], f64));
  assertRelative(out, Tensor.from([[[expected[0]], [expected[1]]]], f64), "h", 1e-13);
});

Deno.test("GRU: a cell worked by hand over two steps", () => {
  const w = [0.5, -0.25, 1], u = [0.3, 0.2, -0.4], bi = [0.1, 0, 0.05], bh = [0, 0.3, 0.2];
  const gru = new GRU(1, 1, {
    ...f64,
    inputWeights: [w],
    recurrentWeights: [u],
    inputBiases: bi,
    recurrentBiases: bh,
  });
  const s = (v: number) => 1 / (1 + Math.exp(-v));
  let h = 0;
  const expected: number[] = [];
  for (const x of [1, -2]) {
    const r = s(w[0] * x + bi[0] + u[0] * h + bh[0]);
    const z = s(w[1] * x + bi[1] + u[1] * h + bh[1]);
    const n = Math.tanh(w[2] * x + bi[2] + r * (u[2] * h + bh[2]));
    h = (1 - z) * n + z * h;
    expected.push(h);
  }
  const out = gru.forward(Tensor.from([[[1], [-2]]], f64));
  assertRelative(out, Tensor.from([[[expected[0]], [expected[1]]]], f64), "h", 1e-13);
});

Deno.test("the gate functions are within a few ulps of Math.exp and Math.tanh", () => {
  let worstExp = 0, worstTanh = 0, worstSigmoid = 0;
  for (let k = -200000; k <= 200000; k++) {
    const v = k * 0.0035; // −700 … 700
    const e = Math.exp(v);
    worstExp = Math.max(worstExp, Math.abs(exp(v) - e) / e);
    for (const x of [k * 1e-4, k * 1e-8]) { // −20 … 20, and −0.002 … 0.002
      if (x === 0) continue;
      worstTanh = Math.max(worstTanh, Math.abs(tanh(x) - Math.tanh(x)) / Math.abs(Math.tanh(x)));
      const q = 1 / (1 + Math.exp(-x));
      worstSigmoid = Math.max(worstSigmoid, Math.abs(sigmoid(x) - q) / q);
    }
  }
  assert.ok(worstExp < 1e-15, `exp: ${worstExp}`);
  assert.ok(worstTanh < 5e-15, `tanh: ${worstTanh}`);
  assert.ok(worstSigmoid < 1e-15, `sigmoid: ${worstSigmoid}`);
  assert.ok(Number.isNaN(exp(NaN)) && Number.isNaN(tanh(NaN)) && Number.isNaN(sigmoid(NaN)));
  assert.deepEqual([tanh(0), tanh(Infinity), tanh(-Infinity), tanh(800), tanh(-800)], [
    0,
    1,
    -1,
    1,
    -1,
  ]);
  assert.deepEqual([sigmoid(Infinity), sigmoid(800)], [1, 1]);
  assert.ok(sigmoid(-Infinity) < 1e-300 && sigmoid(-Infinity) >= 0, "clamped, not NaN");
});

Deno.test("the float32 gate functions are within 1e-10 of Math.tanh and the exact sigmoid", () => {
  let worstTanh = 0, worstSigmoid = 0;
  for (let k = -200000; k <= 200000; k++) {
    for (const x of [k * 1e-4, k * 1e-8, k * 3e-3]) { // −20 … 20, −0.002 … 0.002, −600 … 600
      if (x === 0) continue;
      worstTanh = Math.max(worstTanh, Math.abs(tanh32(x) - Math.tanh(x)) / Math.abs(Math.tanh(x)));
      const q = 1 / (1 + Math.exp(-x));
      if (q > 0) worstSigmoid = Math.max(worstSigmoid, Math.abs(sigmoid32(x) - q) / q);
    }
  }
  assert.ok(worstTanh < 1e-10, `tanh32: ${worstTanh}`);
  assert.ok(worstSigmoid < 1e-10, `sigmoid32: ${worstSigmoid}`);
  assert.ok(Number.isNaN(tanh32(NaN)) && Number.isNaN(sigmoid32(NaN)));
  assert.deepEqual([tanh32(0), tanh32(Infinity), tanh32(-Infinity), tanh32(800)], [0, 1, -1, 1]);
  assert.deepEqual([sigmoid32(Infinity), sigmoid32(800)], [1, 1]);
  assert.ok(sigmoid32(-Infinity) < 1e-300 && sigmoid32(-Infinity) >= 0, "clamped, not NaN");
});
