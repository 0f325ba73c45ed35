import assert from "node:assert/strict";
import {
  checkGradients,
  createLayer,
  loadTorchStateDict,
  MultiHeadAttention,
  type Param,
  Sequential,
  Tensor,
  toTorchStateDict,
  withBackend,
} from "../mod.ts";

const f64 = { dtype: "float64" } as const;

// One case of tests/fixtures/torch_attention.json (written by torch_attention.py).
interface TorchCase {
  name: string;
  batch: number;
  T: number;
  dim: number;
  heads: number;
  causal: boolean;
  bias: boolean;
  state: Record<string, number[] | number[][]>; // PyTorch's names and layouts
  inputs: number[][][];
  projection: number[][][];
  outputs: number[][][];
  dinputs: number[][][];
  grads: Record<string, number[] | number[][]>;
}

const fixture: { torch: string; cases: TorchCase[] } = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/torch_attention.json", import.meta.url)),
);

// [rows, cols] nested → [cols, rows] nested.
function transposed(matrix: number[][]): number[][] {
  return matrix[0].map((_, j) => matrix.map((row) => row[j]));
}

// Asserts |actual − expected| ≤ 1e-9·max(|expected|, floor) everywhere, the floor 1e-3 of the
// tensor's largest magnitude: the k-part of d(in_proj_bias) is zero in exact arithmetic
// (softmax ignores a constant added to a row of scores), so both sides hold rounding noise
// of ~1e-15 there, relative to nothing.
function assertMatches(actual: Tensor, expected: unknown, what: string): void {
  const want = Tensor.from(expected as number[], f64);
  assert.deepEqual(actual.shape, want.shape, `${what}: shape`);
  let largest = 0;
  for (const v of want.data) largest = Math.max(largest, Math.abs(v));
  const floor = 1e-3 * largest;
  for (let i = 0; i < want.size; i++) {
    const a = actual.data[i], b = want.data[i];
    const error = Math.abs(a - b) / Math.max(Math.abs(b), floor, Number.MIN_VALUE);
    assert.ok(error <= 1e-9, `${what}[${i}]: got ${a}, PyTorch ${b} (relative error ${error})`);
  }
}

// The layer of a case, its weights given through the constructor ([in, out] layouts).
function layerOf(c: TorchCase): MultiHeadAttention {
  const s = c.state;
  return new MultiHeadAttention(c.dim, c.heads, {
    ...f64,
    causal: c.causal,
    bias: c.bias,
    inProjWeights: transposed(s.in_proj_weight as number[][]),
    outProjWeights: transposed(s["out_proj.weight"] as number[][]),
    ...(c.bias ? { inProjBiases: s.in_proj_bias, outProjBiases: s["out_proj.bias"] } : {}),
  });
}

// The layer's gradients under PyTorch's names, transposed back to PyTorch's layouts.
function torchGrads(layer: MultiHeadAttention): Map<string, Tensor> {
  const grads = new Map<string, Tensor>();
  const names = layer.torchNames();
  for (const param of layer.params()) {
    const { torch, transpose } = names[param.name];
    const grad = param.grad;
    grads.set(
      torch,
      transpose ? Tensor.from(transposed(grad.toArray<number[][]>()), f64) : grad,
    );
  }
  return grads;
}

function assertLikeTorch(layer: MultiHeadAttention, c: TorchCase, training: boolean): void {
  for (const param of layer.params()) param.zeroGrad();
  const x = Tensor.from(c.inputs, f64);
  const outputs = layer.forward(x, { training });
  assertMatches(outputs, c.outputs, `${c.name} outputs`);
  const dinputs = layer.backward(Tensor.from(c.projection, f64));
  assertMatches(dinputs, c.dinputs, `${c.name} dinputs`);
  const grads = torchGrads(layer);
  assert.deepEqual([...grads.keys()], Object.keys(c.grads), `${c.name}: the same params`);
  for (const [name, grad] of grads) assertMatches(grad, c.grads[name], `${c.name} d${name}`);
}

function projectionSum(outputs: Tensor, projection: Tensor): number {
  let sum = 0;
  for (let i = 0; i < outputs.size; i++) sum += outputs.data[i] * projection.data[i];
  return sum;
}

Deno.test("MultiHeadAttention equals torch.nn.MultiheadAttention in float64", async (t) => {
  assert.equal(fixture.cases.length, 4);
  for (const c of fixture.cases) {
    await t.step(`${c.name}: batch ${c.batch}, T ${c.T}, dim ${c.dim}, ${c.heads} heads`, () => {
      for (const backend of ["wasm", "js", "naive"]) {
        for (const training of [false, true]) {
          withBackend(backend, () => assertLikeTorch(layerOf(c), c, training));
        }
      }
    });
  }
  await t.step("weights loaded by PyTorch's names (loadTorchStateDict) give the same", () => {
    for (const c of fixture.cases) {
      const layer = new MultiHeadAttention(c.dim, c.heads, {
        ...f64,
        causal: c.causal,
        bias: c.bias,
      });
      const model = new Sequential([layer]);
      const state = new Map(
        Object.entries(c.state).map(([name, value]) => [`0.${name}`, Tensor.from(value, f64)]),
      );
      loadTorchStateDict(model, state);
      assertLikeTorch(layer, c, true);
      // And back out: the same tensors under the same names.
      const back = toTorchStateDict(model);
      assert.deepEqual([...back.keys()], [...state.keys()]);
      for (const [name, value] of state) assert.deepEqual(back.get(name)!.data, value.data, name);
    }
  });
  await t.step("training twice reuses the buffers and accumulates the gradients (+=)", () => {
    const c = fixture.cases[0];
    const layer = layerOf(c);
    const x = Tensor.from(c.inputs, f64), projection = Tensor.from(c.projection, f64);
    const first = layer.forward(x, { training: true });
    layer.backward(projection);
    const once = layer.params().map((p) => Float64Array.from(p.grad.data));
    assert.equal(layer.forward(x, { training: true }), first, "the same output buffer");
    layer.backward(projection);
    layer.params().forEach((p, k) => {
      const doubled = Tensor.from(Array.from(once[k], (v) => 2 * v), f64);
      assertMatches(new Tensor(p.grad.data, [p.grad.size]), doubled.toArray(), p.name);
    });
    assert.notEqual(layer.forward(x), layer.forward(x), "inference returns fresh tensors");
  });
});

Deno.test("MultiHeadAttention gradients match central differences", async (t) => {
  const cases = [
    { heads: 2, causal: true, bias: true },
    { heads: 2, causal: false, bias: true },
    { heads: 3, causal: true, bias: false },
    { heads: 1, causal: false, bias: false },
  ];
  for (const { heads, causal, bias } of cases) {
    await t.step(`${heads} heads, causal ${causal}, bias ${bias}`, () => {
      const layer = new MultiHeadAttention(6, heads, { ...f64, causal, bias, seed: 3 });
      // Biases away from zero, so that their gradients and effects are exercised.
      for (const param of layer.params()) {
        if (param.value.rank === 1) {
          param.value.data.set(
            Tensor.randn([param.value.size], { ...f64, seed: 4, scale: 0.3 }).data,
          );
        }
      }
      const x = Tensor.randn([2, 4, 6], { ...f64, seed: 5 });
      for (const training of [false, true]) {
        const report = checkGradients(layer, x, { training });
        assert.ok(report.maxRelativeError <= 1e-6, report.toString());
        assert.equal(report.tensors.length, 1 + (bias ? 4 : 2));
      }
    });
  }
  await t.step("with dropout, through the same masks (the generator rewound)", () => {
    for (const causal of [false, true]) {
      const layer = new MultiHeadAttention(4, 2, { ...f64, causal, dropout: 0.4, seed: 6 });
      const x = Tensor.randn([2, 5, 4], { ...f64, seed: 7 });
      const projection = Tensor.randn([2, 5, 4], { ...f64, seed: 8 });
      const start = layer.random.snapshot();
      const loss = () => {
        layer.random.restore(start);
        return projectionSum(layer.forward(x, { training: true }), projection);
      };
      const inference = projectionSum(layer.forward(x), projection);
      assert.notEqual(loss(), inference, "something was dropped");
      for (const param of layer.params()) param.zeroGrad();
      loss();
      const dinputs = Float64Array.from(layer.backward(projection).data);
      const epsilon = 1e-6;
      const check = (
        values: Float64Array | Float32Array,
        analytic: ArrayLike<number>,
        what: string,
      ) => {
        for (let i = 0; i < values.length; i++) {
          const saved = values[i];
          values[i] = saved + epsilon;
          const plus = loss();
          values[i] = saved - epsilon;
          const minus = loss();
          values[i] = saved;
          const numeric = (plus - minus) / (2 * epsilon);
          const error = Math.abs(analytic[i] - numeric) /
            Math.max(Math.abs(analytic[i]), Math.abs(numeric), 1e-3);
          assert.ok(error <= 1e-6, `${what}[${i}]: analytic ${analytic[i]}, numeric ${numeric}`);
        }
      };
      check(x.data, dinputs, "inputs");
      for (const param of layer.params()) {
        check(param.value.data, Float64Array.from(param.grad.data), param.name);
      }
    }
  });
});

Deno.test("MultiHeadAttention: known values, causality, dropout", async (t) => {
  // With identity projections (q | k | v all the inputs, out = concat), outputs are the
  // attention-weighted averages of the inputs' head blocks.
  const identity = (n: number) =>
    Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  const zerosQ = (dim: number) => identity(dim).map((row) => [...row.map(() => 0), ...row, ...row]); // q = 0, k = v = x

  await t.step("one position attends to itself: outputs = (inputs·Wv + bv)·Wo + bo", () => {
    const layer = new MultiHeadAttention(4, 2, { ...f64, seed: 1 });
    layer.inProjBiases!.value.data.set([1, 2, 3, 4, 5, 6, 7, 8, 0.5, -0.5, 1.5, -1.5]);
    layer.outProjBiases!.value.data.set([0.1, 0.2, 0.3, 0.4]);
    const x = Tensor.from([[[1, -2, 0.5, 3]], [[0, 1, 1, -1]]], f64);
    const w = layer.inProjWeights.value, wo = layer.outProjWeights.value;
    const expected = x.toArray<number[][][]>().map(([row]) => {
      const v = [0, 1, 2, 3].map((j) =>
        row.reduce((s, xi, i) => s + xi * w.get(i, 8 + j), layer.inProjBiases!.value.data[8 + j])
      );
      return [
        [0, 1, 2, 3].map((j) =>
          v.reduce((s, vi, i) => s + vi * wo.get(i, j), layer.outProjBiases!.value.data[j])
        ),
      ];
    });
    const out = layer.forward(x).data;
    const flat = expected.flat(2);
    for (let i = 0; i < flat.length; i++) assert.ok(Math.abs(out[i] - flat[i]) < 1e-12);
  });
  await t.step("q = 0: uniform attention, the mean of v (causal: of positions ≤ i)", () => {
    const x = Tensor.from([[[1, 2], [3, -4], [8, 0]]], f64);
    for (const causal of [false, true]) {
      const layer = new MultiHeadAttention(2, 2, {
        ...f64,
        causal,
        inProjWeights: zerosQ(2),
        outProjWeights: identity(2),
      });
      const expected = causal
        ? [[[1, 2], [2, -1], [4, -2 / 3]]]
        : [[[4, -2 / 3], [4, -2 / 3], [4, -2 / 3]]];
      const out = layer.forward(x).data, flat = expected.flat(2);
      for (let i = 0; i < flat.length; i++) assert.ok(Math.abs(out[i] - flat[i]) < 1e-12, `${i}`);
    }
  });
  await t.step("scores are scaled by 1/√(dim/heads): two positions, worked by hand", () => {
    // One head of 4: q = k = v = x. x0 = [1, 1, 1, 1], x1 = [0, 0, 0, 0]: position 0 scores
    // 4/2 = 2 on itself and 0 on position 1, so it weighs itself by e²/(e² + 1).
    const layer = new MultiHeadAttention(4, 1, {
      ...f64,
      inProjWeights: identity(4).map((row) => [...row, ...row, ...row]),
      outProjWeights: identity(4),
    });
    const out = layer.forward(Tensor.from([[[1, 1, 1, 1], [0, 0, 0, 0]]], f64)).data;
    const weight = Math.exp(2) / (Math.exp(2) + 1);
    for (let j = 0; j < 4; j++) assert.ok(Math.abs(out[j] - weight) < 1e-15);
    for (let j = 4; j < 8; j++) assert.ok(Math.abs(out[j] - 0.5) < 1e-15, "equal scores: halves");
  });
  await t.step("causal: a later position never changes an earlier output", () => {
    const x = Tensor.randn([2, 6, 8], { seed: 2 });
    for (const causal of [true, false]) {
      const layer = new MultiHeadAttention(8, 4, { causal, seed: 3 });
      const before = layer.forward(x).data;
      const changed = x.clone();
      for (let j = 0; j < 8; j++) changed.set(5, 1, 4, j); // sample 1, position 4
      const after = layer.forward(changed, { training: true }).data;
      const earlier = (data: Float32Array | Float64Array) => Array.from(data.subarray(48, 48 + 32));
      if (causal) {
        assert.deepEqual(earlier(after), earlier(before), "positions 0–3 of sample 1");
        assert.deepEqual(Array.from(after.subarray(0, 48)), Array.from(before.subarray(0, 48)));
      } else assert.notDeepEqual(earlier(after), earlier(before));
      assert.notDeepEqual(Array.from(after.subarray(80)), Array.from(before.subarray(80)));
    }
  });
  await t.step("dropout drops whole attention weights and scales the rest by 1/(1 − rate)", () => {
    // T = 1: each head's single weight is 1, so its output block is 0 (dropped) or 2·v.
    const dim = 4, heads = 2, batch = 400;
    const options = { ...f64, dropout: 0.5, seed: 4, outProjWeights: identity(dim) };
    const layer = new MultiHeadAttention(dim, heads, options);
    const x = Tensor.randn([batch, 1, dim], { ...f64, seed: 5 });
    const kept = layer.forward(x).data; // inference: nothing dropped
    const out = layer.forward(x, { training: true }).data;
    let dropped = 0;
    for (let block = 0; block < batch * heads; block++) {
      const at = block * 2;
      const zero = out[at] === 0 && out[at + 1] === 0;
      if (zero) dropped++;
      else {
        assert.ok(Math.abs(out[at] - 2 * kept[at]) < 1e-12, `block ${block}`);
        assert.ok(Math.abs(out[at + 1] - 2 * kept[at + 1]) < 1e-12, `block ${block}`);
      }
    }
    assert.ok(dropped > 0.4 * batch * heads && dropped < 0.6 * batch * heads, `${dropped}`);
  });
  await t.step("dropout: the same seed gives the same masks; inference drops nothing", () => {
    const x = Tensor.randn([3, 7, 8], { seed: 6 });
    const a = new MultiHeadAttention(8, 2, { dropout: 0.3, causal: true, seed: 7 });
    const b = new MultiHeadAttention(8, 2, { dropout: 0.3, causal: true, seed: 7 });
    const first = Float32Array.from(a.forward(x, { training: true }).data);
    assert.deepEqual(first, b.forward(x, { training: true }).data);
    assert.notDeepEqual(a.forward(x, { training: true }).data, first, "a new mask each step");
    const plain = new MultiHeadAttention(8, 2, { causal: true, seed: 7 });
    assert.deepEqual(plain.inProjWeights.value.data, a.inProjWeights.value.data);
    assert.deepEqual(a.forward(x).data, plain.forward(x).data, "inference is dropout-free");
    assert.notDeepEqual(first, plain.forward(x).data);
  });
});

Deno.test("MultiHeadAttention: parameters, init, names, config, saving", async (t) => {
  await t.step("params in PyTorch's order; none for the biases without bias", () => {
    const layer = new MultiHeadAttention(8, 2);
    assert.deepEqual(layer.params().map((p: Param) => `${p.name} [${p.value.shape}]`), [
      "inProjWeights [8,24]",
      "inProjBiases [24]",
      "outProjWeights [8,8]",
      "outProjBiases [8]",
    ]);
    const plain = new MultiHeadAttention(8, 2, { bias: false });
    assert.deepEqual(plain.params().map((p) => p.name), ["inProjWeights", "outProjWeights"]);
    assert.equal(plain.inProjBiases, undefined);
  });
  await t.step("init as PyTorch's: Glorot in, U(±1/√dim) out, zero biases, seeded", () => {
    const dim = 64;
    const layer = new MultiHeadAttention(dim, 4, { seed: 1 });
    const inLimit = Math.sqrt(6 / (4 * dim)), outLimit = 1 / Math.sqrt(dim);
    const inW = layer.inProjWeights.value.data, outW = layer.outProjWeights.value.data;
    const maxAbs = (data: ArrayLike<number>) =>
      Array.from(data).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(maxAbs(inW) <= inLimit && maxAbs(inW) > 0.95 * inLimit, `${maxAbs(inW)}`);
    assert.ok(maxAbs(outW) <= outLimit && maxAbs(outW) > 0.95 * outLimit, `${maxAbs(outW)}`);
    assert.ok(layer.inProjBiases!.value.data.every((v) => v === 0));
    assert.ok(layer.outProjBiases!.value.data.every((v) => v === 0));
    assert.deepEqual(new MultiHeadAttention(dim, 4, { seed: 1 }).inProjWeights.value.data, inW);
    assert.notDeepEqual(new MultiHeadAttention(dim, 4, { seed: 2 }).inProjWeights.value.data, inW);
  });
  await t.step("toTorchStateDict: nn.MultiheadAttention's names inside a Sequential", () => {
    const layer = new MultiHeadAttention(8, 2, { seed: 1 });
    const state = toTorchStateDict(new Sequential([layer]));
    assert.deepEqual([...state].map(([name, value]) => `${name} [${value.shape}]`), [
      "0.in_proj_weight [24,8]",
      "0.in_proj_bias [24]",
      "0.out_proj.weight [8,8]",
      "0.out_proj.bias [8]",
    ]);
    assert.equal(state.get("0.in_proj_weight")!.get(17, 3), layer.inProjWeights.value.get(3, 17));
    assert.equal(state.get("0.out_proj.weight")!.get(5, 2), layer.outProjWeights.value.get(2, 5));
    const plain = toTorchStateDict(new Sequential([new MultiHeadAttention(8, 2, { bias: false })]));
    assert.deepEqual([...plain.keys()], ["0.in_proj_weight", "0.out_proj.weight"]);
  });
  await t.step("config rebuilds it through createLayer; toString shows what is not default", () => {
    const layer = new MultiHeadAttention(16, 4, {
      causal: true,
      dropout: 0.1,
      seed: 3,
      dtype: "float64",
    });
    assert.deepEqual(layer.config(), {
      dim: 16,
      heads: 4,
      causal: true,
      bias: true,
      dropout: 0.1,
      dtype: "float64",
      seed: 3,
    });
    const copy = createLayer("MultiHeadAttention", layer.config());
    assert.ok(copy instanceof MultiHeadAttention);
    assert.deepEqual(copy.config(), layer.config());
    assert.deepEqual(copy.inProjWeights.value.data, layer.inProjWeights.value.data, "same seed");
    assert.equal(layer.toString(), "MultiHeadAttention(dim=16, heads=4, causal=true, dropout=0.1)");
    assert.equal(new MultiHeadAttention(8, 2).toString(), "MultiHeadAttention(dim=8, heads=2)");
    assert.equal(
      new MultiHeadAttention(8, 2, { bias: false }).toString(),
      "MultiHeadAttention(dim=8, heads=2, bias=false)",
    );
  });
  await t.step("save → load gives the same outputs, bit for bit", async () => {
    const model = new Sequential([new MultiHeadAttention(8, 2, { causal: true, seed: 4 })]);
    const dir = await Deno.makeTempDir();
    try {
      await model.save(`${dir}/attention.safetensors`);
      const copy = await Sequential.load(`${dir}/attention.safetensors`);
      assert.equal(copy.toString(), model.toString());
      const x = Tensor.randn([3, 5, 8], { seed: 5 });
      assert.deepEqual(copy.predict(x).data, model.predict(x).data);
      assert.deepEqual(
        Sequential.fromBytes(model.toBytes()).predict(x).data,
        model.predict(x).data,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
  await t.step("the wasm kernels (per-head products on subarray views) agree with naive", () => {
    // 16×16×16 per-head products and 64-row projections: above the wasm backend's crossover.
    const x = Tensor.randn([4, 16, 32], { ...f64, seed: 6 });
    const dy = Tensor.randn([4, 16, 32], { ...f64, seed: 7 });
    const run = (backend: string) =>
      withBackend(backend, () => {
        const layer = new MultiHeadAttention(32, 2, { ...f64, causal: true, seed: 8 });
        const out = Float64Array.from(layer.forward(x, { training: true }).data);
        const dx = Float64Array.from(layer.backward(dy).data);
        return [out, dx, ...layer.params().map((p) => Float64Array.from(p.grad.data))];
      });
    const [fast, slow] = [run("wasm"), run("naive")];
    fast.forEach((values, k) => {
      for (let i = 0; i < values.length; i++) {
        assert.ok(Math.abs(values[i] - slow[k][i]) <= 1e-12 * Math.max(1, Math.abs(slow[k][i])));
      }
    });
  });
  await t.step("float32 computes what float64 does, to float32 precision", () => {
    const c = fixture.cases[0];
    const exact = layerOf(c);
    const layer = new MultiHeadAttention(c.dim, c.heads, {
      causal: true,
      inProjWeights: exact.inProjWeights.value.data,
      inProjBiases: exact.inProjBiases!.value.data,
      outProjWeights: exact.outProjWeights.value.data,
      outProjBiases: exact.outProjBiases!.value.data,
    });
    const x = Tensor.from(c.inputs);
    const out = layer.forward(x, { training: true });
    const dx = layer.backward(Tensor.from(c.projection));
    const want = Tensor.from(c.outputs, f64), wantDx = Tensor.from(c.dinputs, f64);
    for (let i = 0; i < want.size; i++) assert.ok(Math.abs(out.data[i] - want.data[i]) < 1e-5);
    for (let i = 0; i < want.size; i++) assert.ok(Math.abs(dx.data[i] - wantDx.data[i]) < 1e-4);
  });
});

Deno.test("MultiHeadAttention: errors name the problem", async (t) => {
  await t.step("constructor arguments", () => {
    const cases: [() => unknown, string, string][] = [
      [() => new MultiHeadAttention(0, 1), "RangeError", "dim must be a positive integer, got 0"],
      [() => new MultiHeadAttention(8, 0), "RangeError", "heads must be a positive integer, got 0"],
      [
        () => new MultiHeadAttention(8, 2.5),
        "RangeError",
        "heads must be a positive integer, got 2.5",
      ],
      [
        () => new MultiHeadAttention(10, 3),
        "RangeError",
        "dim 10 must be divisible by heads 3 (each head takes dim / heads features)",
      ],
      [
        () => new MultiHeadAttention(8, 2, { dropout: 1 }),
        "RangeError",
        "dropout must be a number in [0, 1), got 1",
      ],
      [
        () => new MultiHeadAttention(8, 2, { dropout: -0.1 }),
        "RangeError",
        "dropout must be a number in [0, 1), got -0.1",
      ],
      [
        () => new MultiHeadAttention(8, 2, { dtype: "int8" as "float32" }),
        "TypeError",
        'dtype must be "float32" or "float64", got "int8"',
      ],
      [
        () => new MultiHeadAttention(8, 2, { causal: "yes" as unknown as boolean }),
        "TypeError",
        'causal must be true or false, got "yes"',
      ],
      [
        () => new MultiHeadAttention(2, 1, { inProjWeights: [[1, 2], [3, 4]] }),
        "TypeError",
        "inProjWeights has shape [2, 2], expected [2, 6]",
      ],
      [
        () => new MultiHeadAttention(2, 1, { bias: false, outProjBiases: [1, 2] }),
        "TypeError",
        "outProjBiases were given, but the layer has bias: false",
      ],
    ];
    for (const [make, name, message] of cases) {
      assert.throws(make, { name, message: `new MultiHeadAttention: ${message}` });
    }
  });
  await t.step("inputs and dvalues", () => {
    const layer = new MultiHeadAttention(4, 2);
    const where = "MultiHeadAttention.forward: ";
    assert.throws(() => layer.forward(Tensor.zeros([2, 4])), {
      name: "TypeError",
      message: `${where}inputs must be [batch, T, dim], got shape [2, 4]`,
    });
    assert.throws(() => layer.forward(Tensor.zeros([2, 3, 5])), {
      name: "TypeError",
      message:
        `${where}inputs have 5 features per position, expected dim 4 (inputs shape [2, 3, 5])`,
    });
    assert.throws(() => layer.forward(Tensor.zeros([2, 3, 4], f64)), {
      name: "TypeError",
      message:
        `${where}inputs are float64, the layer is float32 (convert with tensor.clone({ dtype: "float32" }))`,
    });
    assert.throws(() => layer.forward(Tensor.zeros([2, 0, 4])), {
      name: "RangeError",
      message: `${where}inputs is empty (shape [2, 0, 4])`,
    });
    assert.throws(() => layer.forward([[[1, 2, 3, 4]]] as unknown as Tensor), {
      name: "TypeError",
      message: `${where}inputs must be a Tensor, got an array of 1`,
    });
    assert.throws(() => new MultiHeadAttention(4, 2).backward(Tensor.zeros([1, 1, 4])), {
      name: "Error",
      message: "MultiHeadAttention.backward: call forward first",
    });
    layer.forward(Tensor.zeros([2, 3, 4]), { training: true });
    assert.throws(() => layer.backward(Tensor.zeros([2, 4, 4])), {
      name: "TypeError",
      message:
        "MultiHeadAttention.backward: dvalues is float32 [2, 4, 4], expected float32 [2, 3, 4] like the last forward's outputs",
    });
  });
  await t.step("inputGradient: false skips dinputs but not the param gradients", () => {
    const layer = new MultiHeadAttention(4, 2, { seed: 1 });
    const x = Tensor.randn([2, 3, 4], { seed: 2 }), dy = Tensor.randn([2, 3, 4], { seed: 3 });
    layer.forward(x, { training: true });
    layer.backward(dy);
    const full = layer.params().map((p) => Float32Array.from(p.grad.data));
    for (const param of layer.params()) param.zeroGrad();
    layer.forward(x, { training: true });
    assert.deepEqual(layer.backward(dy, { inputGradient: false }).shape, [2, 3, 4]);
    layer.params().forEach((p, k) => assert.deepEqual(p.grad.data, full[k], p.name));
  });
});
