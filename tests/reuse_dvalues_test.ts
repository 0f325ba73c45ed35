// BackwardOptions.reuseDvalues and ForwardOptions.reuseInputs: a chain lets a layer write its
// d(inputs) over a gradient that another of its layers returned, and its outputs over inputs
// that the layer before does not read back (Layer.outputsFree), never over its caller's
// unless the caller gives them up; ReLU and Residual take the offers.
import assert from "node:assert/strict";
import {
  Adam,
  type BackwardOptions,
  Conv2D,
  Dense,
  type DType,
  Flatten,
  type ForwardOptions,
  getBackend,
  type Layer,
  Linear,
  MaxPool2D,
  MeanSquaredError,
  ReLU,
  Residual,
  Sequential,
  SGD,
  SoftmaxCrossEntropy,
  Tanh,
  Tensor,
} from "../mod.ts";

// ReLU recording the reuseDvalues each backward was offered, and the reuseInputs of each
// forward.
class SpyReLU extends ReLU {
  offers: boolean[] = [];
  forwardOffers: boolean[] = [];
  override forward(inputs: Tensor, options?: ForwardOptions): Tensor {
    this.forwardOffers.push(options?.reuseInputs === true);
    return super.forward(inputs, options);
  }
  override backward(dvalues: Tensor, options?: BackwardOptions): Tensor {
    this.offers.push(options?.reuseDvalues === true);
    return super.backward(dvalues, options);
  }
}

// ReLU taking neither offer: the reference.
class PlainReLU extends ReLU {
  override forward(inputs: Tensor, options?: ForwardOptions): Tensor {
    return super.forward(inputs, { training: options?.training });
  }
  override backward(dvalues: Tensor): Tensor {
    return super.backward(dvalues);
  }
}

function randn(shape: number[], dtype: DType, seed: number): Tensor {
  return Tensor.randn(shape, { seed, dtype });
}

// Each layer's backward by hand, in reverse, without the option: the reference.
function byHand(layers: Layer[], dvalues: Tensor): Tensor {
  let d = dvalues;
  for (let i = layers.length - 1; i >= 0; i--) d = layers[i].backward(d);
  return d;
}

Deno.test("ReLU with reuseDvalues writes d(inputs) over dvalues", async (t) => {
  for (const dtype of ["float64", "float32"] as const) {
    // 100,000 elements placed where the backend places training buffers (the wasm kernels
    // read and write them in place); 7: an ordinary array.
    for (const size of [7, 100_000]) {
      await t.step(`${dtype}, ${size} elements`, () => {
        const relu = new ReLU();
        relu.forward(randn([size], dtype, 1), { training: true });
        const values = randn([size], dtype, 2), kept = values.data.slice();
        const block = size > 7 ? getBackend().allocate?.(dtype, size) : undefined;
        block?.set(values.data);
        const dvalues = block ? new Tensor(block, [size]) : values;
        const want = relu.backward(dvalues).data.slice();
        assert.deepEqual(dvalues.data, kept, "without the option dvalues stay as they were");
        const got = relu.backward(dvalues, { reuseDvalues: true });
        assert.equal(got, dvalues, "the gradient is returned in dvalues' tensor");
        assert.deepEqual(got.data, want);
      });
    }
  }
});

Deno.test("a chain offers reuse of its layers' gradients, not of its caller's", async (t) => {
  const build = () => {
    const spies = [new SpyReLU(), new SpyReLU()];
    const layers: Layer[] = [
      new Dense(4, 6, { seed: 1, dtype: "float64" }),
      spies[0],
      new Dense(6, 6, { seed: 2, dtype: "float64" }),
      spies[1],
    ];
    return { model: new Sequential(layers), layers, spies };
  };
  const x = randn([5, 4], "float64", 3);
  await t.step("the caller's dvalues are left as they were, and the result is the same", () => {
    const { model, layers, spies } = build();
    model.forward(x, { training: true });
    const dvalues = randn([5, 6], "float64", 4), kept = dvalues.data.slice();
    const got = model.backward(dvalues).data.slice();
    assert.deepEqual(dvalues.data, kept);
    assert.deepEqual(spies.map((spy) => spy.offers), [[true], [false]]);
    assert.deepEqual(got, byHand(layers, dvalues).data);
  });
  await t.step("given up by the caller, the last layer may write over them", () => {
    const { model, spies } = build();
    model.forward(x, { training: true });
    const dvalues = randn([5, 6], "float64", 4);
    model.backward(dvalues, { reuseDvalues: true });
    assert.deepEqual(spies.map((spy) => spy.offers), [[true], [true]]);
  });
  await t.step("a layer that returns a view of its dvalues passes on the caller's say", () => {
    for (const reuseDvalues of [false, true]) {
      const spy = new SpyReLU();
      const model = new Sequential([spy, new Linear()]);
      model.forward(x, { training: true });
      const dvalues = randn([5, 4], "float64", 5), kept = dvalues.data.slice();
      model.backward(dvalues, { reuseDvalues });
      assert.deepEqual(spy.offers, [reuseDvalues]);
      if (!reuseDvalues) assert.deepEqual(dvalues.data, kept, "Linear's view was not written");
    }
  });
  await t.step("trainBatch gives up the loss's gradient", () => {
    const { model, spies } = build();
    const step = { loss: new MeanSquaredError(), optimizer: new SGD() };
    model.trainBatch(x, randn([5, 6], "float64", 6), step);
    assert.deepEqual(spies.map((spy) => spy.offers), [[true], [true]]);
  });
});

Deno.test("Residual adds into dvalues only when they are given up", async (t) => {
  for (const reuseDvalues of [false, true]) {
    await t.step(`reuseDvalues ${reuseDvalues}`, () => {
      const spy = new SpyReLU();
      const dense = new Dense(4, 4, { seed: 7, dtype: "float64" });
      const block = new Residual([dense, spy]);
      const x = randn([3, 4], "float64", 8);
      block.forward(x, { training: true });
      const dvalues = randn([3, 4], "float64", 9), kept = dvalues.data.slice();
      // d(inputs) = dvalues + the inner layers' d(inputs), by hand first.
      const inner = byHand([dense, spy], dvalues).data;
      const want = kept.map((value, i) => value + inner[i]);
      spy.offers.length = 0;
      const got = block.backward(dvalues, { reuseDvalues });
      assert.deepEqual(spy.offers, [false], "the inner layers never write over dvalues");
      assert.deepEqual(got.data, want);
      assert.equal(got === dvalues, reuseDvalues);
      if (!reuseDvalues) assert.deepEqual(dvalues.data, kept);
    });
  }
});

Deno.test("a chain lets ReLU write over outputs the layer before does not read back", async (t) => {
  const x = randn([5, 4], "float64", 10);
  await t.step("after Dense: ReLU's outputs are Dense's tensor, with the same values", () => {
    const dense = new Dense(4, 6, { seed: 1, dtype: "float64" }), spy = new SpyReLU();
    const model = new Sequential([dense, spy]);
    const want = new ReLU().forward(dense.forward(x)).data.slice();
    const dense0 = dense.forward(x, { training: true });
    const got = new Sequential([dense, spy]).forward(x, { training: true });
    assert.equal(got, dense0, "written over Dense's outputs");
    assert.deepEqual(got.data, want);
    assert.deepEqual(spy.forwardOffers, [true]);
    model.forward(x); // inference: fresh outputs, no offer
    assert.deepEqual(spy.forwardOffers, [true, false]);
  });
  await t.step("never over the caller's inputs unless the caller says so", () => {
    for (const reuseInputs of [false, true]) {
      const spy = new SpyReLU(), inputs = randn([5, 4], "float64", 11);
      const kept = inputs.data.slice();
      new Sequential([spy]).forward(inputs, { training: true, reuseInputs });
      assert.deepEqual(spy.forwardOffers, [reuseInputs]);
      if (!reuseInputs) assert.deepEqual(inputs.data, kept);
    }
  });
  await t.step("not after a layer that reads its outputs back, nor through its views", () => {
    const after = (layers: Layer[]) => {
      const spy = new SpyReLU();
      new Sequential([...layers, spy]).forward(x, { training: true });
      return spy.forwardOffers[0];
    };
    assert.equal(after([new Tanh()]), false, "Tanh's backward reads its outputs");
    assert.equal(after([new Linear()]), false, "Linear returns the caller's inputs");
    assert.equal(after([new Dense(4, 6, { seed: 2, dtype: "float64" }), new Flatten()]), true);
    assert.equal(after([new Flatten()]), false, "Flatten's view of the caller's inputs");
  });
  await t.step("Residual's first inner layer keeps its inputs", () => {
    const spy = new SpyReLU();
    const model = new Sequential([
      new Dense(4, 4, { seed: 3, dtype: "float64" }),
      new Residual([spy, new Dense(4, 4, { seed: 4, dtype: "float64" })]),
    ]);
    model.forward(x, { training: true });
    assert.deepEqual(spy.forwardOffers, [false]);
  });
});

Deno.test("training steps with the offers taken give the same bits as without", () => {
  // A small CNN, float32 (the wasm kernels, resident buffers) and float64.
  for (const dtype of ["float32", "float64"] as const) {
    const build = (relu: () => ReLU) =>
      new Sequential([
        new Conv2D(1, 8, 3, { padding: 1, seed: 1, dtype }),
        relu(),
        new MaxPool2D(2),
        new Conv2D(8, 16, 3, { padding: 1, seed: 2, dtype }),
        relu(),
        new Flatten(),
        new Dense(16 * 14 * 14, 10, { seed: 3, dtype }),
        relu(),
      ]);
    const x = randn([32, 1, 28, 28], dtype, 12);
    const y = Int32Array.from({ length: 32 }, (_, i) => i % 10);
    const train = (model: Sequential) => {
      const step = { loss: new SoftmaxCrossEntropy(), optimizer: new Adam() };
      const losses = [0, 1, 2].map(() => model.trainBatch(x, y, step).loss);
      return [losses, ...model.params().map((p) => Array.from(p.value.data))];
    };
    const spies: SpyReLU[] = [];
    const taken = train(build(() => {
      spies.push(new SpyReLU());
      return spies.at(-1)!;
    }));
    assert.deepEqual(taken, train(build(() => new PlainReLU())), dtype);
    assert.deepEqual(spies.map((spy) => spy.forwardOffers[0]), [true, true, true]);
    assert.deepEqual(spies.map((spy) => spy.offers[0]), [true, true, true]);
  }
});

// A container written without the reuse options: it hands its options to an inner model and
// reads its inputs and dvalues after it (adds them back).
class Skip implements Layer {
  readonly kind = "Skip";
  readonly inner: Sequential;
  constructor(layers: Layer[]) {
    this.inner = new Sequential(layers);
  }
  forward(inputs: Tensor, options?: ForwardOptions): Tensor {
    const y = this.inner.forward(inputs, options);
    return new Tensor(y.data.map((v, i) => v + inputs.data[i]), inputs.shape);
  }
  backward(dvalues: Tensor, options?: BackwardOptions): Tensor {
    const d = this.inner.backward(dvalues, options);
    return new Tensor(d.data.map((v, i) => v + dvalues.data[i]), dvalues.shape);
  }
  params() {
    return this.inner.params();
  }
  config() {
    return {};
  }
  toString(): string {
    return "Skip";
  }
}

Deno.test("a container that does not know the options is never offered them", () => {
  const first = new SpyReLU(), last = new SpyReLU();
  const model = new Sequential([
    new Dense(4, 4, { seed: 5, dtype: "float64" }),
    new Skip([first, new Dense(4, 4, { seed: 6, dtype: "float64" }), last]),
    new Dense(4, 3, { seed: 7, dtype: "float64" }),
  ]);
  const step = { loss: new MeanSquaredError(), optimizer: new SGD() };
  model.trainBatch(randn([5, 4], "float64", 13), randn([5, 3], "float64", 14), step);
  assert.deepEqual(first.forwardOffers, [false], "Skip reads its inputs after the inner model");
  assert.deepEqual(last.offers, [false], "Skip reads its dvalues after the inner model");
  assert.deepEqual(first.offers, [true], "inside the inner model, its own gradients");
});
