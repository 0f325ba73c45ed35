// BackwardOptions.reuseDvalues: a chain lets a layer write its d(inputs) over a gradient that
// another of its layers returned, never over its caller's dvalues unless the caller gives
// them up; ReLU and Residual take the offer.
import assert from "node:assert/strict";
import {
  type BackwardOptions,
  Dense,
  type DType,
  getBackend,
  type Layer,
  Linear,
  MeanSquaredError,
  ReLU,
  Residual,
  Sequential,
  SGD,
  Tensor,
} from "../mod.ts";

// ReLU recording the reuseDvalues each backward was offered.
class SpyReLU extends ReLU {
  offers: boolean[] = [];
  override backward(dvalues: Tensor, options?: BackwardOptions): Tensor {
    this.offers.push(options?.reuseDvalues === true);
    return super.backward(dvalues, options);
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
