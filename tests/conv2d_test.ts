import assert from "node:assert/strict";
import { Conv2D, createLayer, type Param, Tensor, withBackend } from "../mod.ts";
import { assertGradientsOf } from "./_assert.ts";
import { maxDifference, naiveConv, type NaiveWindow, nest } from "./_conv_reference.ts";

const f64 = { dtype: "float64" } as const;

Deno.test("Conv2D computes PyTorch's convolution", async (t) => {
  await t.step("known values: a 2×2 kernel with padding 1 and stride 2, worked by hand", () => {
    // The 3×3 image padded to 5×5; the windows start at rows and columns 0 and 2 of it.
    const conv = new Conv2D(1, 1, 2, {
      ...f64,
      padding: 1,
      stride: 2,
      weights: [[[[1, 0], [0, -1]]]],
      biases: [10],
    });
    const image = Tensor.from([[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]], f64);
    // Windows of the padded image ((0,0): [0 0; 0 1], (0,2): [0 0; 2 3], (2,0): [0 4; 0 7],
    // (2,2): [5 6; 8 9]), each as w·window + 10: (0 − 1), (0 − 3), (0 − 7), (5 − 9).
    assert.deepEqual(conv.forward(image).toArray(), [[[[9, 7], [3, 6]]]]);
  });
  await t.step("matches a naive float64 loop on awkward shapes, outputs and gradients", () => {
    const x = Tensor.randn([2, 3, 7, 5], { ...f64, seed: 1 });
    const cases: [string, Record<string, unknown>, NaiveWindow][] = [
      ["3×2, stride 2, padding 1", { stride: 2, padding: 1 }, {
        kernel: [3, 2],
        stride: [2, 2],
        pad: [1, 1, 1, 1],
      }],
      // "same" with a 3×2 kernel pads 1 above and below, 0 left and 1 right, as PyTorch.
      ['3×2, padding "same"', { padding: "same" }, { kernel: [3, 2], pad: [1, 1, 0, 1] }],
      ["3×2, dilation 2, padding [1, 0]", { dilation: 2, padding: [1, 0] }, {
        kernel: [3, 2],
        dilation: [2, 2],
        pad: [1, 1, 0, 0],
      }],
      ['3×2, dilation 2, "same"', { dilation: 2, padding: "same" }, {
        kernel: [3, 2],
        dilation: [2, 2],
        pad: [2, 2, 1, 1],
      }],
      ["3×2, stride [2, 1], dilation [1, 2], padding 2, no bias", {
        stride: [2, 1],
        dilation: [1, 2],
        padding: 2,
        bias: false,
      }, { kernel: [3, 2], stride: [2, 1], dilation: [1, 2], pad: [2, 2, 2, 2] }],
      ["3×2, valid", {}, { kernel: [3, 2] }],
    ];
    for (const [what, options, window] of cases) {
      const conv = new Conv2D(3, 4, [3, 2], { ...f64, seed: 2, ...options });
      conv.biases?.value.data.set([0.5, -1, 0.25, 2]);
      const d = Tensor.randn(conv.forward(x).shape, { ...f64, seed: 3 });
      const reference = naiveConv(
        x.toArray(),
        conv.weights.value.toArray(),
        conv.biases ? [...conv.biases.value.data] : null,
        window,
        d.toArray(),
      );
      const outputs = conv.forward(x);
      assert.ok(maxDifference(outputs.toArray(), reference.outputs) < 1e-12, what);
      const dinputs = conv.backward(d);
      assert.ok(maxDifference(dinputs.toArray(), reference.dinputs) < 1e-12, what);
      assert.ok(maxDifference(conv.weights.grad.toArray(), reference.dweights) < 1e-12, what);
      if (conv.biases) {
        assert.ok(maxDifference([...conv.biases.grad.data], reference.dbiases) < 1e-12, what);
      }
    }
  });
  await t.step("batches lowered in chunks of samples, or one by one, give the same", () => {
    // 32 channels of 15×15 lower to 64,800 column elements a sample: chunks of 16 samples,
    // the last of 8; 16×16 images (256 positions) are lowered one sample at a time.
    // Each algorithm: Winograd's F(2×2, 3×3) (layers/_winograd.ts) takes these 3×3 layers too.
    for (
      const [batch, size, channels, algorithm] of [
        [40, 15, 32, "im2col"],
        [3, 16, 3, "im2col"],
        [40, 15, 32, "winograd"],
        [3, 16, 3, "winograd"],
      ] as const
    ) {
      const x = Tensor.randn([batch, channels, size, size], { seed: 4 });
      const conv = new Conv2D(channels, 5, 3, { padding: 1, seed: 5, algorithm });
      const d = Tensor.randn([batch, 5, size, size], { seed: 6 });
      const reference = naiveConv(
        x.toArray(),
        conv.weights.value.toArray(),
        [...conv.biases!.value.data],
        { kernel: [3, 3], pad: [1, 1, 1, 1] },
        d.toArray(),
      );
      // js: Conv2D's own lowering, in chunks; wasm: the backend's, a sample at a time.
      for (const [backend, training] of [["js", true], ["js", false], ["wasm", true]] as const) {
        conv.weights.grad.data.fill(0);
        conv.biases!.grad.data.fill(0);
        const outputs = withBackend(backend, () => conv.forward(x, { training }));
        const dinputs = withBackend(backend, () => conv.backward(d));
        assert.ok(maxDifference(outputs.toArray(), reference.outputs) < 1e-4);
        assert.ok(maxDifference(dinputs.toArray(), reference.dinputs) < 1e-4);
        assert.ok(maxDifference(conv.weights.grad.toArray(), reference.dweights) < 2e-3);
        assert.ok(maxDifference([...conv.biases!.grad.data], reference.dbiases) < 1e-3);
      }
    }
  });
  await t.step("every backend gives the same outputs", () => {
    const x = Tensor.randn([3, 2, 9, 8], { seed: 7 });
    const conv = new Conv2D(2, 6, 3, { stride: 2, padding: 1, seed: 8 });
    const reference = withBackend("naive", () => conv.forward(x)).data;
    for (const backend of ["js", "wasm"]) {
      const out = withBackend(backend, () => conv.forward(x)).data;
      assert.ok(maxDifference([...out], [...reference]) < 1e-5, backend);
    }
  });
});

Deno.test("Conv2D's gradients match central differences on awkward shapes", () => {
  assertGradientsOf("Conv2D");
});

Deno.test("Conv2D takes PyTorch's weight layout, flat or nested, and its options", async (t) => {
  await t.step("weights [out][in][kh][kw] nested or flat, biases [out]", () => {
    const flat = Array.from({ length: 2 * 3 * 3 * 2 }, (_, i) => i / 10);
    const a = new Conv2D(3, 2, [3, 2], { ...f64, weights: flat, biases: [1, 2] });
    const b = new Conv2D(3, 2, [3, 2], {
      ...f64,
      weights: nest(flat, [2, 3, 3, 2]),
      biases: [1, 2],
    });
    const c = new Conv2D(3, 2, [3, 2], { ...f64, weights: Float32Array.from(flat) });
    assert.deepEqual([...a.weights.value.data], [...b.weights.value.data]);
    assert.deepEqual(a.weights.value.shape, [2, 3, 3, 2]);
    assert.deepEqual([...c.weights.value.data], [...Float32Array.from(flat)].map(Number));
    assert.deepEqual([...a.biases!.value.data], [1, 2]);
    assert.throws(() => new Conv2D(3, 2, [3, 2], { weights: [[[[1]]]] }), {
      name: "TypeError",
      message: "new Conv2D: weights has shape [1, 1, 1, 1], expected [2, 3, 3, 2]",
    });
  });
  await t.step("params() is [weights, biases], or [weights] with bias: false", () => {
    const conv = new Conv2D(1, 4, 3);
    assert.deepEqual(conv.params().map((p: Param) => p.name), ["weights", "biases"]);
    const bare = new Conv2D(1, 4, 3, { bias: false });
    assert.deepEqual(bare.params().map((p: Param) => p.name), ["weights"]);
    assert.throws(() => new Conv2D(1, 4, 3, { bias: false, biases: [1, 2, 3, 4] }), {
      name: "TypeError",
      message: /biases were given for a layer built with bias: false/,
    });
  });
  await t.step("He initialization with fanIn = in·kh·kw by default, seeded", () => {
    const conv = new Conv2D(16, 32, 3, { seed: 1, dtype: "float64" });
    const w = conv.weights.value.data;
    const variance = Array.from(w).reduce((s, v) => s + v * v, 0) / w.length;
    assert.ok(Math.abs(variance - 2 / (16 * 9)) < 0.1 * 2 / (16 * 9), `variance ${variance}`);
    assert.deepEqual(
      conv.weights.value.data,
      new Conv2D(16, 32, 3, { seed: 1, ...f64 }).weights.value.data,
    );
    const glorot = new Conv2D(16, 32, 3, { seed: 1, init: "glorotUniform", ...f64 });
    const limit = Math.sqrt(6 / (16 * 9 + 32 * 9));
    assert.ok(glorot.weights.value.data.every((v) => Math.abs(v) <= limit));
  });
  await t.step("config() rebuilds the same layer; toString() shows what is not default", () => {
    const conv = new Conv2D(3, 8, [3, 2], {
      stride: [2, 1],
      padding: 1,
      dilation: 2,
      bias: false,
      weightRegularizerL2: 1e-4,
    });
    const copy = createLayer("Conv2D", conv.config()) as Conv2D;
    assert.deepEqual(copy.config(), conv.config());
    assert.equal(
      conv.toString(),
      "Conv2D(in=3, out=8, kernel=3×2, stride=[2, 1], padding=1, dilation=2, bias=false, weightRegularizerL2=0.0001)",
    );
    assert.equal(
      new Conv2D(1, 32, 3, { padding: "same" }).toString(),
      'Conv2D(in=1, out=32, kernel=3×3, padding="same")',
    );
    assert.deepEqual(new Conv2D(1, 2, 3, { padding: "valid" }).config().padding, undefined);
  });
  await t.step("L1 and L2 penalties on weights and biases", () => {
    const conv = new Conv2D(1, 1, 2, {
      ...f64,
      weights: [1, -2, 0.5, 0],
      biases: [3],
      weightRegularizerL1: 0.1,
      weightRegularizerL2: 0.01,
      biasRegularizerL2: 0.5,
    });
    // 0.1·3.5 + 0.01·5.25 + 0.5·9
    assert.ok(Math.abs(conv.regularizationLoss() - (0.35 + 0.0525 + 4.5)) < 1e-12);
  });
  await t.step("a training step allocates no new buffers once the batch shape was seen", () => {
    const conv = new Conv2D(2, 3, 3, { padding: 1, seed: 1 });
    const x = Tensor.randn([4, 2, 6, 6], { seed: 2 });
    const d = Tensor.randn([4, 3, 6, 6], { seed: 3 });
    const first = [conv.forward(x, { training: true }).data, conv.backward(d).data];
    const second = [conv.forward(x, { training: true }).data, conv.backward(d).data];
    assert.equal(second[0], first[0]);
    assert.equal(second[1], first[1]);
    assert.notEqual(conv.forward(x).data, first[0], "inference returns fresh tensors");
  });
});
