// Every built-in plugin's analytic gradients against central finite differences in float64.
import assert from "node:assert/strict";
import {
  checkGradients,
  Dense,
  type Layer,
  type Param,
  ReLU,
  Sequential,
  SoftmaxCrossEntropy,
  Tensor,
} from "../mod.ts";

const f64 = { dtype: "float64" } as const;
const TOLERANCE = 1e-6;

function assertPasses(report: ReturnType<typeof checkGradients>): void {
  assert.ok(report.maxRelativeError <= TOLERANCE, report.toString());
}

Deno.test("Dense.backward matches central differences", async (t) => {
  await t.step("inputs, weights and biases", () => {
    const layer = new Dense(4, 3, { ...f64, seed: 1 });
    const report = checkGradients(layer, Tensor.randn([5, 4], { ...f64, seed: 2 }));
    assert.deepEqual(report.tensors.map((r) => r.name), [
      "inputs",
      "Dense.weights",
      "Dense.biases",
    ]);
    assertPasses(report);
  });
  await t.step("with L1 and L2 penalties on weights and biases", () => {
    const layer = new Dense(3, 2, {
      ...f64,
      seed: 3,
      weightRegularizerL1: 0.01,
      weightRegularizerL2: 0.02,
      biasRegularizerL1: 0.03,
      biasRegularizerL2: 0.04,
      biases: [0.5, -0.25], // away from the L1 kink at 0
    });
    assertPasses(checkGradients(layer, Tensor.randn([4, 3], { ...f64, seed: 4 })));
  });
});

Deno.test("ReLU.backward matches central differences away from the kink", () => {
  const x = Tensor.randn([6, 5], { ...f64, seed: 5 });
  for (let i = 0; i < x.size; i++) if (Math.abs(x.data[i]) < 0.1) x.data[i] += 0.2; // keep |x| ≥ 0.1
  assertPasses(checkGradients(new ReLU(), x));
});

Deno.test("SoftmaxCrossEntropy.backward matches central differences", async (t) => {
  const logits = Tensor.randn([6, 4], { ...f64, seed: 6 });
  await t.step("class-index targets", () => {
    assertPasses(
      checkGradients(new SoftmaxCrossEntropy(), logits, { targets: [0, 3, 1, 2, 2, 0] }),
    );
  });
  await t.step("one-hot targets", () => {
    const onehot = Tensor.zeros([6, 4], f64);
    [1, 0, 3, 3, 2, 1].forEach((label, i) => onehot.set(1, i, label));
    assertPasses(checkGradients(new SoftmaxCrossEntropy(), logits, { targets: onehot }));
  });
});

Deno.test("a whole Sequential with its loss matches central differences", () => {
  const model = new Sequential([
    new Dense(3, 8, { ...f64, seed: 7 }),
    new ReLU(),
    new Dense(8, 4, { ...f64, seed: 8, weightRegularizerL2: 1e-3 }),
  ]);
  const report = checkGradients(model, Tensor.randn([5, 3], { ...f64, seed: 9 }), {
    loss: new SoftmaxCrossEntropy(),
    targets: [0, 1, 2, 3, 1],
  });
  assert.deepEqual(report.tensors.map((r) => r.name), [
    "inputs",
    "0.Dense.weights",
    "0.Dense.biases",
    "2.Dense.weights",
    "2.Dense.biases",
  ]);
  assertPasses(report);
});

// A layer whose backward forgets the factor 2 of d(x²)/dx: the checker must reject it.
class BrokenSquare implements Layer {
  readonly kind = "BrokenSquare";
  #inputs?: Tensor;
  forward(inputs: Tensor): Tensor {
    this.#inputs = inputs;
    return new Tensor(inputs.data.map((v) => v * v), inputs.shape);
  }
  backward(dvalues: Tensor): Tensor {
    const x = this.#inputs!.data;
    return new Tensor(dvalues.data.map((d, i) => d * x[i]), dvalues.shape);
  }
  params(): Param[] {
    return [];
  }
  config(): Record<string, never> {
    return {};
  }
  toString(): string {
    return "BrokenSquare()";
  }
}

Deno.test("the checker catches a wrong gradient", async (t) => {
  await t.step("in a layer's inputs", () => {
    const report = checkGradients(new BrokenSquare(), Tensor.randn([3, 2], { ...f64, seed: 10 }));
    assert.ok(report.maxRelativeError > 0.4, report.toString());
    assert.match(report.toString(), /inputs/);
  });
  await t.step("in a parameter: a Dense whose weight gradient is scaled", () => {
    const layer = new Dense(2, 2, { ...f64, seed: 11 });
    const honest = layer.backward.bind(layer);
    layer.backward = (dvalues: Tensor): Tensor => {
      const dinputs = honest(dvalues);
      for (let i = 0; i < layer.weights.grad.size; i++) layer.weights.grad.data[i] *= 1.01;
      return dinputs;
    };
    const report = checkGradients(layer, Tensor.randn([3, 2], { ...f64, seed: 12 }));
    const weights = report.tensors.find((r) => r.name === "Dense.weights")!;
    assert.ok(weights.maxRelativeError > 5e-3, report.toString());
    assert.ok(report.tensors[0].maxRelativeError <= TOLERANCE, "inputs are still right");
  });
  await t.step("a NaN gradient counts as an infinite error", () => {
    const layer = new ReLU();
    const honest = layer.backward.bind(layer);
    layer.backward = (dvalues: Tensor): Tensor => {
      const dinputs = honest(dvalues);
      dinputs.data[0] = NaN;
      return dinputs;
    };
    assert.equal(checkGradients(layer, Tensor.from([[1, 2]], f64)).maxRelativeError, Infinity);
  });
});

Deno.test("checkGradients refuses float32 layers and a loss without targets", () => {
  assert.throws(
    () => checkGradients(new Dense(2, 2, { seed: 1 }), Tensor.from([[1, 2]])),
    { name: "TypeError", message: /param "weights" of Dense\(in=2, out=2\) is float32/ },
  );
  assert.throws(
    () => checkGradients(new SoftmaxCrossEntropy(), Tensor.from([[1, 2]], f64)),
    { name: "TypeError", message: /options\.targets is required/ },
  );
});
