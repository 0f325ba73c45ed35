// Embedding, PositionalEmbedding, LayerNorm, GELU and erf/erfc: known values, central
// differences, PyTorch in float64 (tests/fixtures/torch_basics.py writes the fixture), errors,
// configs and files.
import assert from "node:assert/strict";
import {
  checkGradients,
  createLayer,
  Embedding,
  erf,
  erfc,
  GELU,
  type GradientReport,
  LayerNorm,
  loadTorchStateDict,
  PositionalEmbedding,
  RandomState,
  Sequential,
  Tensor,
  toTorchStateDict,
} from "../mod.ts";
import { withTempDir } from "./_temp_dir.ts";

const f64 = { dtype: "float64" } as const;

type Nested = number | Nested[];

interface ModuleCase {
  weight: Nested;
  inputs: Nested;
  outputs: Nested;
  projection: Nested;
  inputsGrad: Nested;
  weightGrad: Nested;
}

interface LayerNormCase extends ModuleCase {
  features: number;
  epsilon: number;
  bias: Nested;
  biasGrad: Nested;
}

interface GeluCase {
  approximate: "none" | "tanh";
  inputs: Nested;
  outputs: Nested;
  projection: Nested;
  inputsGrad: Nested;
}

interface Fixture {
  embedding: {
    numEmbeddings: number;
    dim: number;
    paddingIdx: number;
    weight: Nested;
    ids: Nested;
    outputs: Nested;
    projection: Nested;
    weightGrad: Nested;
  };
  positional: ModuleCase & { maxLength: number; dim: number };
  layerNorm2d: LayerNormCase;
  layerNorm3d: LayerNormCase;
  geluNone: GeluCase;
  geluTanh: GeluCase;
  geluTails: { x: number; exact: number; exactGrad: number; tanh: number; tanhGrad: number }[];
  erf: { x: number; erf: number; erfc: number; mathErf: number; mathErfc: number }[];
  sequentialStateDict: string[];
}

const fixture: Fixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/torch_basics.json", import.meta.url)),
);

const t64 = (values: Nested) => Tensor.from(values as number[], f64);

function flat(values: Nested): number[] {
  return Array.isArray(values) ? values.flatMap(flat) : [values];
}

/** Asserts |actual − expected| ≤ tolerance·|expected| element-wise (zeros must match exactly). */
function assertRelative(
  actual: Tensor | ArrayLike<number>,
  expected: Nested | ArrayLike<number>,
  tolerance: number,
  what: string,
): void {
  const got = actual instanceof Tensor ? actual.data : actual;
  const want = typeof expected === "number" || Array.isArray(expected)
    ? flat(expected as Nested)
    : Array.from(expected);
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const error = Math.abs(got[i] - want[i]);
    assert.ok(
      error <= tolerance * Math.abs(want[i]),
      `${what}, element ${i}: got ${got[i]}, expected ${want[i]} (relative error ${
        (error / Math.abs(want[i])).toExponential(2)
      } > ${tolerance})`,
    );
  }
}

function assertPasses(report: GradientReport): void {
  assert.ok(report.maxRelativeError <= 1e-6, report.toString());
}

// Uniform values in [min, max), from a seed.
function uniform(shape: number[], seed: number, min = -2, max = 2): Tensor {
  const random = new RandomState(seed);
  const t = Tensor.zeros(shape, f64);
  for (let i = 0; i < t.size; i++) t.data[i] = min + (max - min) * random.random();
  return t;
}

Deno.test("Embedding", async (t) => {
  await t.step("looks rows up, for ids of any rank and either dtype", () => {
    const weights = [[0, 0], [1, 2], [3, 4], [5, 6]];
    const embed = new Embedding(4, 2, { weights, ...f64 });
    assert.deepEqual(embed.forward(Tensor.from([[3, 1], [0, 3]])).toArray(), [
      [[5, 6], [1, 2]],
      [[0, 0], [5, 6]],
    ]);
    assert.deepEqual(embed.forward(Tensor.from([2, 2, 1], f64)).toArray(), [[3, 4], [3, 4], [
      1,
      2,
    ]]);
    const rank3 = embed.forward([[[1], [2]]]);
    assert.deepEqual(rank3.shape, [1, 2, 1, 2]);
    assert.deepEqual([...rank3.data], [1, 2, 3, 4]);
    assert.equal(rank3.dtype, "float64", "outputs take the layer's dtype, not the ids'");
    // Nested arrays, as Sequential.predict passes them on after conversion.
    assert.deepEqual(embed.forward([[0, 1]]).toArray(), [[[0, 0], [1, 2]]]);
  });

  await t.step("equals torch.nn.Embedding(padding_idx=2) in float64, forward and backward", () => {
    const c = fixture.embedding;
    const embed = new Embedding(c.numEmbeddings, c.dim, {
      weights: c.weight as number[][],
      paddingIdx: c.paddingIdx,
      ...f64,
    });
    const outputs = embed.forward(t64(c.ids), { training: true });
    assertRelative(outputs, c.outputs, 0, "outputs");
    const dids = embed.backward(t64(c.projection));
    assert.deepEqual(dids.shape, [2, 5]);
    assert.deepEqual([...dids.data], new Array(10).fill(0), "ids have no gradient");
    assertRelative(embed.weights.grad, c.weightGrad, 1e-9, "weights grad");
    const paddingRow = flat(c.weightGrad).slice(c.paddingIdx * c.dim, (c.paddingIdx + 1) * c.dim);
    assert.deepEqual(paddingRow, [0, 0, 0, 0], "PyTorch gives the padding row no gradient");
  });

  // No paddingIdx here: its row enters the outputs but gets no gradient, by PyTorch's
  // convention (the fixture above checks that), so central differences differ there.
  await t.step("the table's gradient matches central differences (ids are not perturbed)", () => {
    const embed = new Embedding(6, 3, { seed: 3, ...f64 });
    const ids = Tensor.from([[0, 4, 5, 0], [2, 2, 4, 1]], f64);
    const report = checkGradients(embed, ids, { checkInputs: false });
    assert.deepEqual(report.tensors.map((r) => r.name), ["Embedding.weights"]);
    assertPasses(report);
  });

  await t.step("gradients accumulate; the padding row and unused rows get none", () => {
    const embed = new Embedding(3, 1, { weights: [[1], [2], [3]], paddingIdx: 0, ...f64 });
    embed.forward(Tensor.from([[1, 1, 0]], f64));
    embed.backward(Tensor.from([[[2], [3], [7]]], f64));
    embed.backward(Tensor.from([[[1], [1], [7]]], f64));
    assert.deepEqual([...embed.weights.grad.data], [0, 7, 0]);
  });

  await t.step("draws N(0, 1) from its seed and zeroes the padding row", () => {
    const embed = new Embedding(200, 50, { seed: 7, paddingIdx: 3 });
    const w = embed.weights.value.data;
    assert.deepEqual([...w.subarray(150, 200)], new Array(50).fill(0));
    let sum = 0, squares = 0;
    for (const v of w) {
      sum += v;
      squares += v * v;
    }
    const n = w.length - 50, mean = sum / n;
    assert.ok(Math.abs(mean) < 0.02, `mean ${mean}`);
    assert.ok(Math.abs(Math.sqrt(squares / n - mean * mean) - 1) < 0.02, "standard deviation 1");
    assert.deepEqual(new Embedding(200, 50, { seed: 7, paddingIdx: 3 }).weights.value.data, w);
    assert.notDeepEqual(new Embedding(200, 50, { seed: 8 }).weights.value.data, w);
    // Explicit weights are taken as given, the padding row included (from_pretrained).
    const given = new Embedding(2, 1, { weights: [[5], [6]], paddingIdx: 0 });
    assert.deepEqual([...given.weights.value.data], [5, 6]);
  });

  await t.step("a negative paddingIdx counts from the end, as in PyTorch", () => {
    const embed = new Embedding(5, 2, { paddingIdx: -1, seed: 1 });
    assert.equal(embed.paddingIdx, 4);
    assert.deepEqual([...embed.weights.value.data.subarray(8)], [0, 0]);
    assert.equal(embed.toString(), "Embedding(numEmbeddings=5, dim=2, paddingIdx=4)");
    assert.equal(new Embedding(5, 2, { paddingIdx: -5 }).paddingIdx, 0);
  });

  await t.step("training reuses its buffers; inputGradient false skips the zeros", () => {
    const embed = new Embedding(4, 3, { seed: 2 });
    const ids = Tensor.from([[1, 2], [3, 0]]);
    const first = embed.forward(ids, { training: true });
    const copy = first.data.slice();
    const second = embed.forward(ids, { training: true });
    assert.equal(second, first, "the same buffer");
    assert.deepEqual(second.data, copy);
    assert.notEqual(embed.forward(ids), embed.forward(ids), "inference gives fresh tensors");
    embed.forward(ids, { training: true });
    const dids = embed.backward(Tensor.filled([2, 2, 3], 1), { inputGradient: false });
    assert.deepEqual(dids.shape, [2, 2]);
    assert.deepEqual(
      [...embed.weights.grad.data],
      [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
      "the table's gradient is computed all the same",
    );
  });

  await t.step("bad ids name the id and its position", () => {
    const embed = new Embedding(10, 2);
    assert.throws(() => embed.forward(Tensor.from([[1, 2, 3], [4, 12, 5]])), {
      name: "RangeError",
      message:
        "Embedding.forward: id 12 at position [1, 1] is out of range [0, 10) (ids shape [2, 3], 10 embeddings)",
    });
    assert.throws(() => embed.forward(Tensor.from([[1, -1]])), {
      name: "RangeError",
      message:
        "Embedding.forward: id -1 at position [0, 1] is out of range [0, 10) (ids shape [1, 2], 10 embeddings)",
    });
    assert.throws(() => embed.forward(Tensor.from([[0.5, 1]])), {
      name: "RangeError",
      message:
        "Embedding.forward: id 0.5 at position [0, 0] is not an integer (ids shape [1, 2], 10 embeddings)",
    });
    assert.throws(() => embed.forward(Tensor.from([3, NaN])), {
      name: "RangeError",
      message:
        "Embedding.forward: id NaN at position [1] is not a number (ids shape [2], 10 embeddings)",
    });
    assert.throws(() => embed.forward(Tensor.from([Infinity])), {
      name: "RangeError",
      message:
        "Embedding.forward: id Infinity at position [0] is not an integer (ids shape [1], 10 embeddings)",
    });
    assert.throws(() => embed.forward(Tensor.zeros([])), {
      name: "TypeError",
      message:
        "Embedding.forward: ids must have at least 1 dimension ([batch, T] usually), got shape []",
    });
    assert.throws(() => embed.forward([["a"]] as unknown as number[][]), {
      name: "TypeError",
      message:
        'Embedding.forward: ids must be a Tensor or nested arrays of numbers, got a string ("a") at depth 2',
    });
    assert.throws(() => embed.forward("ids" as unknown as number[]), {
      name: "TypeError",
      message:
        'Embedding.forward: ids must be a Tensor or nested arrays of numbers, got a string ("ids")',
    });
  });

  await t.step("bad constructor arguments and backward misuse are errors", () => {
    assert.throws(() => new Embedding(0, 4), {
      name: "RangeError",
      message: "new Embedding: numEmbeddings must be a positive integer, got 0",
    });
    assert.throws(() => new Embedding(4, 1.5), {
      name: "RangeError",
      message: "new Embedding: dim must be a positive integer, got 1.5",
    });
    assert.throws(() => new Embedding(4, 2, { paddingIdx: 4 }), {
      name: "RangeError",
      message: "new Embedding: paddingIdx must be an integer in [-4, 4) for 4 embeddings, got 4",
    });
    assert.throws(() => new Embedding(4, 2, { paddingIdx: -5 }), { name: "RangeError" });
    assert.throws(() => new Embedding(4, 2, { paddingIdx: 0.5 }), { name: "RangeError" });
    assert.throws(() => new Embedding(4, 2, { weights: [[1, 2]] }), {
      name: "TypeError",
      message: "new Embedding: weights has shape [1, 2], expected [4, 2]",
    });
    assert.throws(() => new Embedding(4, 2, { dtype: "int8" as "float32" }), {
      name: "TypeError",
      message: 'new Embedding: dtype must be "float32" or "float64", got "int8"',
    });
    const embed = new Embedding(4, 2);
    assert.throws(() => embed.backward(Tensor.zeros([1, 2])), {
      message: "Embedding.backward: call forward first",
    });
    embed.forward(Tensor.from([[1, 2, 3]]));
    assert.throws(() => embed.backward(Tensor.zeros([1, 3, 3])), {
      name: "TypeError",
      message:
        "Embedding.backward: dvalues is float32 [1, 3, 3], expected float32 [1, 3, 2] like the last forward's outputs",
    });
    assert.throws(() => embed.backward(Tensor.zeros([1, 3, 2], f64)), { name: "TypeError" });
  });

  await t.step("config rebuilds it through the registry; toString", () => {
    const embed = new Embedding(100, 16, { paddingIdx: 0, dtype: "float64" });
    assert.deepEqual(embed.config(), {
      numEmbeddings: 100,
      dim: 16,
      dtype: "float64",
      paddingIdx: 0,
    });
    const copy = createLayer("Embedding", embed.config());
    assert.ok(copy instanceof Embedding);
    assert.deepEqual(copy.config(), embed.config());
    assert.equal(copy.toString(), "Embedding(numEmbeddings=100, dim=16, paddingIdx=0)");
    assert.equal(new Embedding(5, 3).toString(), "Embedding(numEmbeddings=5, dim=3)");
    assert.deepEqual(new Embedding(5, 3).config(), { numEmbeddings: 5, dim: 3, dtype: "float32" });
  });
});

Deno.test("PositionalEmbedding", async (t) => {
  await t.step("adds row t of the table at position t, for T ≤ maxLength", () => {
    const table = [[1, 1], [2, 2], [3, 3]];
    const positions = new PositionalEmbedding(3, 2, { weights: table, ...f64 });
    assert.equal(positions.maxLength, 3);
    assert.equal(positions.dim, 2);
    const out = positions.forward(Tensor.from([[[0, 1]], [[10, 20]]], f64)); // T = 1
    assert.deepEqual(out.toArray(), [[[1, 2]], [[11, 21]]]);
    const full = positions.forward(Tensor.zeros([1, 3, 2], f64));
    assert.deepEqual(full.toArray(), [table]);
  });

  await t.step("equals x + weight[:T] in PyTorch (float64), forward and backward", () => {
    const c = fixture.positional;
    const positions = new PositionalEmbedding(c.maxLength, c.dim, {
      weights: c.weight as number[][],
      ...f64,
    });
    assertRelative(positions.forward(t64(c.inputs)), c.outputs, 1e-15, "outputs");
    const dinputs = positions.backward(t64(c.projection));
    assertRelative(dinputs, c.inputsGrad, 0, "inputs grad");
    assertRelative(positions.weights.grad, c.weightGrad, 1e-9, "weights grad");
    assert.deepEqual(flat(c.weightGrad).slice(5 * 4), [0, 0, 0, 0], "row 5 unused by T = 5");
  });

  await t.step("gradients match central differences", () => {
    const positions = new PositionalEmbedding(5, 3, { seed: 4, ...f64 });
    const report = checkGradients(positions, uniform([2, 4, 3], 5));
    assert.deepEqual(report.tensors.map((r) => r.name), ["inputs", "PositionalEmbedding.weights"]);
    assertPasses(report);
  });

  await t.step("backward passes dvalues on as they are, and accumulates", () => {
    const positions = new PositionalEmbedding(2, 1, { weights: [[0], [0]], ...f64 });
    positions.forward(Tensor.zeros([2, 2, 1], f64), { training: true });
    const dvalues = Tensor.from([[[1], [2]], [[3], [4]]], f64);
    assert.equal(positions.backward(dvalues), dvalues);
    positions.backward(dvalues);
    assert.deepEqual([...positions.weights.grad.data], [8, 12]);
  });

  await t.step("draws N(0, 1) from its seed", () => {
    const w = new PositionalEmbedding(100, 100, { seed: 9 }).weights.value.data;
    let sum = 0, squares = 0;
    for (const v of w) {
      sum += v;
      squares += v * v;
    }
    assert.ok(Math.abs(sum / w.length) < 0.02);
    assert.ok(Math.abs(Math.sqrt(squares / w.length) - 1) < 0.02);
    assert.deepEqual(new PositionalEmbedding(100, 100, { seed: 9 }).weights.value.data, w);
  });

  await t.step("errors name T and maxLength, the shape, the dtype", () => {
    const positions = new PositionalEmbedding(4, 2);
    assert.throws(() => positions.forward(Tensor.zeros([2, 5, 2])), {
      name: "RangeError",
      message:
        "PositionalEmbedding.forward: sequence length T = 5 exceeds maxLength = 4 (inputs shape [2, 5, 2])",
    });
    assert.throws(() => positions.forward(Tensor.zeros([2, 3, 3])), {
      name: "TypeError",
      message: "PositionalEmbedding.forward: inputs must be [batch, T, 2], got shape [2, 3, 3]",
    });
    assert.throws(() => positions.forward(Tensor.zeros([3, 2])), { name: "TypeError" });
    assert.throws(() => positions.forward(Tensor.zeros([1, 3, 2], f64)), {
      name: "TypeError",
      message:
        'PositionalEmbedding.forward: inputs are float64, the layer is float32 (convert with tensor.clone({ dtype: "float32" }))',
    });
    assert.throws(() => new PositionalEmbedding(0, 2), {
      name: "RangeError",
      message: "new PositionalEmbedding: maxLength must be a positive integer, got 0",
    });
    assert.throws(() => new PositionalEmbedding(4, -1), { name: "RangeError" });
    assert.throws(() => new PositionalEmbedding(2, 2, { weights: [1, 2, 3] }), {
      name: "TypeError",
      message: "new PositionalEmbedding: weights has shape [3], expected [2, 2]",
    });
    assert.throws(() => positions.backward(Tensor.zeros([1, 3, 2])), {
      message: "PositionalEmbedding.backward: call forward first",
    });
    positions.forward(Tensor.zeros([1, 3, 2]));
    assert.throws(() => positions.backward(Tensor.zeros([1, 2, 2])), {
      name: "TypeError",
      message:
        "PositionalEmbedding.backward: dvalues is float32 [1, 2, 2], expected float32 [1, 3, 2] like the last forward's outputs",
    });
  });

  await t.step("config rebuilds it through the registry; toString", () => {
    const positions = new PositionalEmbedding(64, 32);
    assert.deepEqual(positions.config(), { maxLength: 64, dim: 32, dtype: "float32" });
    const copy = createLayer("PositionalEmbedding", positions.config());
    assert.ok(copy instanceof PositionalEmbedding);
    assert.equal(copy.toString(), "PositionalEmbedding(maxLength=64, dim=32)");
  });
});

Deno.test("LayerNorm", async (t) => {
  await t.step("normalizes each row over the last axis, worked by hand", () => {
    // epsilon must be > 0; 1e-300 vanishes next to these variances (exact values).
    const norm = new LayerNorm(3, { epsilon: 1e-300, ...f64 });
    // [1, 2, 3]: mean 2, biased variance 2/3; [−4, 0, 4]: mean 0, variance 32/3.
    const out = norm.forward(Tensor.from([[[1, 2, 3]], [[-4, 0, 4]]], f64));
    const s = Math.sqrt(1.5);
    assert.deepEqual(out.shape, [2, 1, 3]);
    assertRelative(out, [-s, 0, s, -s, 0, s], 1e-15, "outputs");
    // A vector (rank 1) is one row.
    assertRelative(norm.forward(Tensor.from([1, 2, 3], f64)), [-s, 0, s], 1e-15, "rank 1");
    // epsilon is added to the variance: var 2/3 + 1/3 = 1.
    const eps = new LayerNorm(3, { epsilon: 1 / 3, ...f64 });
    assertRelative(eps.forward(Tensor.from([[1, 2, 3]], f64)), [-1, 0, 1], 1e-15, "epsilon");
  });

  for (const name of ["layerNorm2d", "layerNorm3d"] as const) {
    await t.step(`equals torch.nn.LayerNorm in float64 (${name}), forward and backward`, () => {
      const c = fixture[name];
      const norm = new LayerNorm(c.features, {
        epsilon: c.epsilon,
        gamma: c.weight as number[],
        beta: c.bias as number[],
        ...f64,
      });
      assertRelative(norm.forward(t64(c.inputs), { training: true }), c.outputs, 1e-9, "outputs");
      const dinputs = norm.backward(t64(c.projection));
      assertRelative(dinputs, c.inputsGrad, 1e-9, "inputs grad");
      assertRelative(norm.gamma.grad, c.weightGrad, 1e-9, "gamma grad");
      assertRelative(norm.beta.grad, c.biasGrad, 1e-9, "beta grad");
    });
  }

  await t.step("gradients match central differences, ranks 1 to 3", () => {
    const options = { gamma: [1.5, -0.5, 2, 0.8], beta: [0.1, 0.2, -0.3, 0], ...f64 };
    for (const shape of [[4], [5, 4], [2, 3, 4]]) {
      const report = checkGradients(new LayerNorm(4, options), uniform(shape, shape.length));
      assert.deepEqual(report.tensors.map((r) => r.name), [
        "inputs",
        "LayerNorm.gamma",
        "LayerNorm.beta",
      ]);
      assertPasses(report);
    }
    // Rows far from zero mean and unit variance, and a larger epsilon.
    const wide = new LayerNorm(6, { epsilon: 0.1, gamma: [1, 2, 3, 4, 5, 6], ...f64 });
    assertPasses(checkGradients(wide, uniform([3, 6], 9, 40, 60), { training: true }));
  });

  await t.step("training and inference agree; gradients accumulate", () => {
    const norm = new LayerNorm(4, f64);
    const x = uniform([3, 4], 11);
    const dvalues = uniform([3, 4], 12);
    const inference = norm.forward(x).data.slice();
    assert.deepEqual(norm.forward(x, { training: true }).data, inference);
    norm.backward(dvalues);
    const once = norm.gamma.grad.data.slice();
    const dinputs = norm.backward(dvalues, { inputGradient: false });
    assert.deepEqual(dinputs.shape, [3, 4]);
    assertRelative(norm.gamma.grad, once.map((v) => 2 * v), 1e-15, "twice the gradient");
  });

  await t.step("float32 follows float64 to float32 precision", () => {
    const x = uniform([4, 8], 13, -3, 5);
    const norm64 = new LayerNorm(8, { gamma: [1, 2, 3, 4, 5, 6, 7, 8], ...f64 });
    const norm32 = new LayerNorm(8, { gamma: [1, 2, 3, 4, 5, 6, 7, 8] });
    const y64 = norm64.forward(x).data;
    const y32 = norm32.forward(x.clone({ dtype: "float32" })).data;
    y64.forEach((v, i) => assert.ok(Math.abs(y32[i] - v) < 1e-5, `element ${i}`));
  });

  await t.step("float32 rows (summed in four chains) follow float64, backward too", () => {
    // 7 and 130 features: the unrolled float32 sums with and without a remainder
    for (const features of [7, 130]) {
      const x = uniform([6, features], 14, -3, 5), dv = uniform([6, features], 15);
      const gamma = Array.from({ length: features }, (_, f) => 0.5 + f / features);
      const beta = Array.from({ length: features }, (_, f) => f / 10 - 1);
      const norm64 = new LayerNorm(features, { gamma, beta, ...f64 });
      const norm32 = new LayerNorm(features, { gamma, beta });
      const y64 = norm64.forward(x).data;
      const y32 = norm32.forward(x.clone({ dtype: "float32" })).data;
      y64.forEach((v, i) => assert.ok(Math.abs(y32[i] - v) < 1e-5, `y element ${i}`));
      const dx64 = norm64.backward(dv).data;
      const dx32 = norm32.backward(dv.clone({ dtype: "float32" })).data;
      dx64.forEach((v, i) => assert.ok(Math.abs(dx32[i] - v) < 1e-5, `dx element ${i}`));
      for (const name of ["gamma", "beta"] as const) {
        const g64 = norm64[name].grad.data, g32 = norm32[name].grad.data;
        g64.forEach((v, f) => assert.ok(Math.abs(g32[f] - v) < 1e-5, `d${name} ${f}`));
      }
    }
  });

  await t.step("errors: shape, dtype, constructor arguments, 0/0", () => {
    const norm = new LayerNorm(4);
    assert.throws(() => norm.forward(Tensor.zeros([2, 3])), {
      name: "TypeError",
      message:
        "LayerNorm.forward: inputs must be [..., 4] (4 features on the last axis), got shape [2, 3]",
    });
    assert.throws(() => norm.forward(Tensor.zeros([])), { name: "TypeError" });
    assert.throws(() => norm.forward(Tensor.zeros([2, 4], f64)), {
      name: "TypeError",
      message:
        'LayerNorm.forward: inputs are float64, the layer is float32 (convert with tensor.clone({ dtype: "float32" }))',
    });
    assert.throws(() => new LayerNorm(0), {
      name: "RangeError",
      message: "new LayerNorm: features must be a positive integer, got 0",
    });
    assert.throws(() => new LayerNorm(3, { epsilon: -1 }), {
      name: "RangeError",
      message:
        "new LayerNorm: epsilon must be a finite number > 0 (with 0, a row of equal values gives 0/0 = NaN), got -1",
    });
    assert.throws(() => new LayerNorm(3, { epsilon: NaN }), { name: "RangeError" });
    assert.throws(() => new LayerNorm(3, { gamma: [1, 2] }), {
      name: "TypeError",
      message: "new LayerNorm: gamma has shape [2], expected [3]",
    });
    // Issue 18: epsilon 0 would make a row of equal values 0/0 = NaN; it is refused.
    assert.throws(() => new LayerNorm(2, { epsilon: 0 }), {
      name: "RangeError",
      message:
        "new LayerNorm: epsilon must be a finite number > 0 (with 0, a row of equal values gives 0/0 = NaN), got 0",
    });
    assert.deepEqual(new LayerNorm(2).forward(Tensor.from([[5, 5]])).toArray(), [[0, 0]]);
    assert.throws(() => norm.backward(Tensor.zeros([2, 4])), {
      message: "LayerNorm.backward: call forward first",
    });
    norm.forward(Tensor.zeros([2, 4]));
    assert.throws(() => norm.backward(Tensor.zeros([2, 5])), {
      name: "TypeError",
      message:
        "LayerNorm.backward: dvalues is float32 [2, 5], expected float32 [2, 4] like the last forward's outputs",
    });
  });

  await t.step("config rebuilds it through the registry; toString", () => {
    const norm = new LayerNorm(128, { epsilon: 1e-6 });
    assert.deepEqual(norm.config(), { features: 128, epsilon: 1e-6, dtype: "float32" });
    const copy = createLayer("LayerNorm", norm.config());
    assert.ok(copy instanceof LayerNorm);
    assert.equal(copy.toString(), "LayerNorm(features=128, epsilon=0.000001)");
    assert.equal(new LayerNorm(64).toString(), "LayerNorm(features=64)");
    assert.deepEqual(new LayerNorm(2).params().map((p) => p.name), ["gamma", "beta"]);
    assert.deepEqual(new LayerNorm(2).torchNames(), {
      gamma: { torch: "weight" },
      beta: { torch: "bias" },
    });
  });
});

Deno.test("erf and erfc", async (t) => {
  await t.step("equal mpmath to 1e-15 relative over [−7, 7] and the tails", () => {
    for (const { x, erf: want, erfc: wantC } of fixture.erf) {
      assertRelative([erf(x)], [want], 1e-15, `erf(${x})`);
      assertRelative([erfc(x)], [wantC], 1e-15, `erfc(${x})`);
    }
  });

  await t.step("equal Python's math.erf and math.erfc to 2e-15 relative", () => {
    for (const { x, mathErf, mathErfc } of fixture.erf) {
      assertRelative([erf(x)], [mathErf], 2e-15, `erf(${x})`);
      assertRelative([erfc(x)], [mathErfc], 2e-15, `erfc(${x})`);
    }
  });

  await t.step("symmetries, limits and NaN", () => {
    for (const x of [0.1, 0.5, 1, 2.5, 6, 10]) {
      assert.equal(erf(-x), -erf(x));
      assert.ok(Math.abs(erfc(-x) - (2 - erfc(x))) <= 4e-16);
    }
    assert.equal(erf(0), 0);
    assert.ok(Object.is(erf(-0), -0));
    assert.deepEqual([erf(Infinity), erf(-Infinity), erfc(Infinity), erfc(-Infinity)], [
      1,
      -1,
      0,
      2,
    ]);
    assert.ok(Number.isNaN(erf(NaN)) && Number.isNaN(erfc(NaN)));
    assert.equal(erfc(30), 0, "below the smallest double");
  });
});

Deno.test("GELU", async (t) => {
  await t.step("known values: x·Φ(x) and the tanh form", () => {
    const phi1 = 0.8413447460685429; // Φ(1)
    const gelu = new GELU();
    const out = gelu.forward(Tensor.from([0, 1, -1, 2], f64));
    assertRelative(out, [0, phi1, -(1 - phi1), 2 * 0.9772498680518208], 1e-15, "exact");
    // tanh form at 1: u = √(2/π)·1.044715, (1 + tanh u)/2
    const u = Math.sqrt(2 / Math.PI) * 1.044715;
    const tanh = new GELU({ approximate: "tanh" }).forward(Tensor.from([1, -1], f64));
    assertRelative(tanh, [(1 + Math.tanh(u)) / 2, -(1 - Math.tanh(u)) / 2], 1e-15, "tanh");
    // GELU′(0) = Φ(0) = 1/2 in both forms
    for (const approximate of ["none", "tanh"] as const) {
      const layer = new GELU({ approximate });
      layer.forward(Tensor.from([0], f64));
      assert.deepEqual([...layer.backward(Tensor.from([1], f64)).data], [0.5]);
    }
  });

  for (const name of ["geluNone", "geluTanh"] as const) {
    await t.step(`equals torch.nn.GELU in float64 (${name}), forward and backward`, () => {
      const c = fixture[name];
      const gelu = new GELU({ approximate: c.approximate });
      assertRelative(gelu.forward(t64(c.inputs)), c.outputs, 1e-9, "outputs");
      assertRelative(gelu.backward(t64(c.projection)), c.inputsGrad, 1e-9, "inputs grad");
    });
  }

  await t.step("keeps relative precision in the tails (mpmath, to x = −37)", () => {
    const rows = fixture.geluTails;
    const x = Tensor.from(rows.map((r) => r.x), f64);
    const ones = Tensor.filled([rows.length], 1, f64);
    for (const approximate of ["none", "tanh"] as const) {
      const gelu = new GELU({ approximate });
      const y = gelu.forward(x);
      const dy = gelu.backward(ones);
      rows.forEach((r, i) => {
        const [want, wantGrad] = approximate === "none"
          ? [r.exact, r.exactGrad]
          : [r.tanh, r.tanhGrad];
        // w = −x/√2 rounded (the constant and the product, 2⁻⁵³ each) moves erfc(w) by up
        // to 2w²·2·2⁻⁵³ = 2x²·2⁻⁵³ relative: 3e−13 at x = −37, in PyTorch as here.
        const tolerance = 1e-15 + 2 * r.x * r.x * 2 ** -53;
        assertRelative([y.data[i]], [want], tolerance, `${approximate} GELU(${r.x})`);
        assertRelative([dy.data[i]], [wantGrad], tolerance, `${approximate} GELU′(${r.x})`);
      });
    }
    assert.ok(new GELU().forward(Tensor.from([-37], f64)).data[0] < 0, "not rounded to 0");
  });

  await t.step("gradients match central differences, both forms", () => {
    const x = uniform([4, 6], 21, -5, 5);
    for (const approximate of ["none", "tanh"] as const) {
      assertPasses(checkGradients(new GELU({ approximate }), x));
    }
    // Beyond the table (|x| > 8.5) and across its centers' edges.
    const far = Tensor.from([[-12, -9, 9, 12, 0.0441941738, -3.0935921]], f64);
    assertPasses(checkGradients(new GELU(), far, { relativeFloor: 1e-30 }));
  });

  await t.step("float32 inputs give the float64 values to float32 precision", () => {
    const x32 = uniform([3, 50], 22, -10, 9).clone({ dtype: "float32" });
    const x64 = x32.clone(f64); // the same values
    const dv32 = uniform([3, 50], 23, -1, 1).clone({ dtype: "float32" });
    const dv64 = dv32.clone(f64);
    for (const approximate of ["none", "tanh"] as const) {
      const gelu32 = new GELU({ approximate }), gelu64 = new GELU({ approximate });
      const out = gelu32.forward(x32);
      assert.equal(out.dtype, "float32");
      const y64 = gelu64.forward(x64).data;
      if (approximate === "tanh") assert.deepEqual(out.data, Float32Array.from(y64));
      const dx32 = gelu32.backward(dv32).data, dx64 = gelu64.backward(dv64).data;
      // The exact form interpolates Φ and φ in float32 where −3 ≤ x < 8 (off by a unit or
      // two in float32's last place); elsewhere it is the float64 value rounded.
      for (let i = 0; i < out.size; i++) {
        const scale = Math.max(Math.abs(y64[i]), 1e-30);
        assert.ok(Math.abs(out.data[i] - y64[i]) <= 2.5e-7 * scale, `GELU(${x32.data[i]})`);
        const dscale = Math.max(Math.abs(dx64[i]), 1e-30);
        assert.ok(Math.abs(dx32[i] - dx64[i]) <= 2.5e-7 * dscale, `GELU'(${x32.data[i]})`);
        if (x32.data[i] < -3) assert.equal(out.data[i], Math.fround(y64[i]));
      }
    }
  });

  await t.step("float32 on a dense grid of [−3.5, 8.5]: within float32 precision", () => {
    // 120,001 points through both tables (Φ's and GELU′'s cubics) and past their ends
    const n = 120001;
    const x32 = new Tensor(new Float32Array(n).map((_, i) => -3.5 + 12 * i / (n - 1)), [n]);
    const dv32 = Tensor.filled([n], 1);
    const gelu32 = new GELU(), gelu64 = new GELU();
    const y32 = gelu32.forward(x32, { training: true }).data;
    const dx32 = gelu32.backward(dv32).data;
    const y64 = gelu64.forward(x32.clone(f64)).data, dx64 = gelu64.backward(dv32.clone(f64)).data;
    for (let i = 0; i < n; i++) {
      const v = x32.data[i];
      assert.ok(Math.abs(y32[i] - y64[i]) <= 1.2e-7 * Math.abs(y64[i]), `GELU(${v})`);
      // GELU′ crosses 0 at x = −0.7518: there the tables' 3e−11 is the bound, not a relative one
      const scale = Math.max(Math.abs(dx64[i]), 1e-3);
      assert.ok(Math.abs(dx32[i] - dx64[i]) <= 1.2e-7 * scale, `GELU′(${v})`);
    }
  });

  await t.step("training reuses its buffers; inference does not", () => {
    const gelu = new GELU();
    const x = Tensor.from([[1, 2]]);
    const first = gelu.forward(x, { training: true });
    assert.equal(gelu.forward(x, { training: true }), first);
    assert.equal(gelu.backward(Tensor.from([[1, 1]])), gelu.backward(Tensor.from([[1, 1]])));
    assert.notEqual(gelu.forward(x), gelu.forward(x));
  });

  await t.step("errors, config, toString", () => {
    assert.throws(() => new GELU({ approximate: "erf" as "none" }), {
      name: "TypeError",
      message: 'new GELU: approximate must be "none" or "tanh", got "erf"',
    });
    assert.throws(() => new GELU().backward(Tensor.zeros([2])), {
      message: "GELU.backward: call forward first",
    });
    const gelu = new GELU();
    gelu.forward(Tensor.zeros([2, 3]));
    assert.throws(() => gelu.backward(Tensor.zeros([3, 2])), {
      name: "TypeError",
      message:
        "GELU.backward: dvalues is float32 [3, 2], expected float32 [2, 3] like the last forward's inputs",
    });
    assert.deepEqual(new GELU().config(), { approximate: "none" });
    const tanh = createLayer("GELU", { approximate: "tanh" });
    assert.ok(tanh instanceof GELU);
    assert.equal(tanh.toString(), 'GELU(approximate="tanh")');
    assert.equal(createLayer("GELU", {}).toString(), "GELU()");
    assert.deepEqual(new GELU().params(), []);
  });
});

Deno.test("a model of the four", async (t) => {
  const build = (dtype: "float32" | "float64") =>
    new Sequential([
      new Embedding(11, 6, { seed: 1, paddingIdx: 0, dtype }),
      new PositionalEmbedding(5, 6, { seed: 2, dtype }),
      new LayerNorm(6, { dtype, gamma: [1, 2, 0.5, 1, 1.5, 1], beta: [0, 0.1, 0, -0.1, 0, 0.2] }),
      new GELU(),
      new LayerNorm(6, { dtype, epsilon: 1e-3 }),
      new GELU({ approximate: "tanh" }),
    ]);
  const ids = [[1, 5, 0, 10], [3, 3, 7, 2], [0, 0, 4, 9]];

  await t.step("gradients of every param match central differences, end to end", () => {
    // Without the padding id 0, whose row gets no gradient by convention.
    const unpadded = Tensor.from([[1, 5, 6, 10], [3, 3, 7, 2], [8, 8, 4, 9]], f64);
    const report = checkGradients(build("float64"), unpadded, { checkInputs: false });
    assert.deepEqual(report.tensors.map((r) => r.name), [
      "0.Embedding.weights",
      "1.PositionalEmbedding.weights",
      "2.LayerNorm.gamma",
      "2.LayerNorm.beta",
      "4.LayerNorm.gamma",
      "4.LayerNorm.beta",
    ]);
    assertPasses(report);
  });

  await t.step("checkInputs false on a subject without params is refused", () => {
    assert.throws(
      () => checkGradients(new GELU(), Tensor.zeros([2], f64), { checkInputs: false }),
      {
        name: "TypeError",
        message:
          "checkGradients: checkInputs is false and GELU() has no parameters, so nothing would be checked",
      },
    );
  });

  for (const dtype of ["float32", "float64"] as const) {
    await t.step(
      `${dtype}: save → load keeps config, params and predictions bit for bit`,
      async () => {
        const model = build(dtype);
        // Move the params off their initial values, so that loading them is seen.
        for (const param of model.params()) {
          param.value.data.forEach((v, i) => param.value.data[i] = v + 0.01 * (i % 7));
        }
        const predicted = model.predict(ids);
        assert.deepEqual(predicted.shape, [3, 4, 6]);
        await withTempDir(async (dir) => {
          await model.save(`${dir}/tiny.safetensors`);
          const copy = await Sequential.load(`${dir}/tiny.safetensors`);
          assert.equal(copy.toString(), model.toString());
          assert.deepEqual(copy.config(), model.config());
          copy.params().forEach((p, i) =>
            assert.deepEqual(p.value.data, model.params()[i].value.data)
          );
          assert.deepEqual(copy.predict(ids).data, predicted.data);
        });
        assert.deepEqual(Sequential.fromBytes(model.toBytes()).predict(ids).data, predicted.data);
      },
    );
  }

  await t.step("PyTorch names: Embedding, PositionalEmbedding, LayerNorm", () => {
    const model = new Sequential([
      new Embedding(5, 3, { seed: 1 }),
      new PositionalEmbedding(4, 3, { seed: 2 }),
      new LayerNorm(3, { gamma: [1, 2, 3] }),
    ]);
    const state = toTorchStateDict(model);
    // The names nn.Sequential(nn.Embedding, PositionalEmbedding, nn.LayerNorm) gives.
    assert.deepEqual([...state.keys()], fixture.sequentialStateDict);
    assert.deepEqual([...state.keys()], ["0.weight", "1.weight", "2.weight", "2.bias"]);
    assert.deepEqual(state.get("0.weight")!.shape, [5, 3]);
    assert.deepEqual(state.get("1.weight")!.shape, [4, 3]);
    assert.deepEqual([...state.get("2.weight")!.data], [1, 2, 3]);
    // And back, unchanged (no transposes).
    const other = new Sequential([
      new Embedding(5, 3, { seed: 8 }),
      new PositionalEmbedding(4, 3, { seed: 9 }),
      new LayerNorm(3),
    ]);
    loadTorchStateDict(other, state);
    assert.deepEqual(
      other.params().map((p) => [...p.value.data]),
      model.params().map((p) => [
        ...p.value.data,
      ]),
    );
  });
});
