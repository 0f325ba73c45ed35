// The gradient checks of the plugin catalogue, one list shared by the tests (which assert
// max relative error ≤ 1e-6) and by tests/gradient_table.ts (which prints the measured
// errors for the docs). Inputs stay away from kinks: ReLU-like functions at 0, MAE at a
// zero residual, Huber at |r| = delta, the losses' clipping bounds.
import {
  BinaryCrossEntropy,
  CategoricalCrossEntropy,
  checkGradients,
  Dense,
  Dropout,
  type GradientReport,
  Huber,
  type Layer,
  LeakyReLU,
  Linear,
  MeanAbsoluteError,
  MeanSquaredError,
  type Param,
  RandomState,
  ReLU,
  Sequential,
  Sigmoid,
  Softmax,
  softmax,
  Tanh,
  Tensor,
} from "../mod.ts";

/** One gradient check: the plugin it proves and what it runs. */
export interface GradientCase {
  plugin: string;
  what: string;
  run(): GradientReport;
}

const f64 = { dtype: "float64" } as const;

/** Uniform values in [min, max), nudged to at least `gap` away from every point of `avoid`. */
export function uniformTensor(
  shape: number[],
  seed: number,
  min = -2,
  max = 2,
  avoid: number[] = [],
  gap = 0.05,
): Tensor {
  const random = new RandomState(seed);
  const t = Tensor.zeros(shape, f64);
  for (let i = 0; i < t.size; i++) {
    let v = min + (max - min) * random.random();
    for (const a of avoid) if (Math.abs(v - a) < gap) v = a + (v < a ? -gap : gap);
    t.data[i] = v;
  }
  return t;
}

/** Class indices in [0, classes), drawn from a seed. */
function labels(batch: number, classes: number, seed: number): Int32Array {
  const random = new RandomState(seed);
  return Int32Array.from({ length: batch }, () => random.randint(classes));
}

function oneHot(indices: Int32Array, classes: number): Tensor {
  const t = Tensor.zeros([indices.length, classes], f64);
  indices.forEach((c, i) => t.set(1, i, c));
  return t;
}

// A dropout whose every forward draws the same mask, so central differences see one
// function: it rewinds the layer's generator before each forward.
class FrozenMask implements Layer {
  readonly kind = "FrozenMask";
  readonly #snapshot;
  constructor(readonly dropout: Dropout) {
    this.#snapshot = dropout.random.snapshot();
  }
  forward(inputs: Tensor): Tensor {
    this.dropout.random.restore(this.#snapshot);
    return this.dropout.forward(inputs, { training: true });
  }
  backward(dvalues: Tensor): Tensor {
    return this.dropout.backward(dvalues);
  }
  params(): Param[] {
    return [];
  }
  config() {
    return {};
  }
  toString(): string {
    return `FrozenMask(${this.dropout})`;
  }
}

const x45 = (seed: number, avoid: number[] = []) => uniformTensor([4, 5], seed, -2, 2, avoid);

function mlp(last: Layer, outputs: number): Sequential {
  return new Sequential([
    new Dense(3, 6, { ...f64, seed: 11 }),
    new Tanh(),
    new Dense(6, outputs, { ...f64, seed: 12 }),
    last,
  ]);
}

/** Every gradient check of the catalogue. */
export const gradientCases: GradientCase[] = [
  // Activations, alone (through a random projection of their outputs).
  {
    plugin: "ReLU",
    what: "[4, 5], |x| ≥ 0.05",
    run: () => checkGradients(new ReLU(), x45(1, [0])),
  },
  {
    plugin: "LeakyReLU",
    what: "slope 0.1, [4, 5], |x| ≥ 0.05",
    run: () => checkGradients(new LeakyReLU({ slope: 0.1 }), x45(2, [0])),
  },
  {
    plugin: "Sigmoid",
    what: "[4, 5] in [−2, 2)",
    run: () => checkGradients(new Sigmoid(), x45(3)),
  },
  {
    plugin: "Sigmoid",
    what: "large inputs ±30",
    run: () => checkGradients(new Sigmoid(), Tensor.from([[-30, -12, 12, 30]], f64)),
  },
  { plugin: "Tanh", what: "[4, 5] in [−2, 2)", run: () => checkGradients(new Tanh(), x45(4)) },
  { plugin: "Linear", what: "[4, 5]", run: () => checkGradients(new Linear(), x45(5)) },
  {
    plugin: "Softmax",
    what: "[4, 5] logits in [−2, 2)",
    run: () => checkGradients(new Softmax(), x45(6)),
  },
  {
    plugin: "Softmax",
    what: "logits near ±1000",
    run: () =>
      checkGradients(new Softmax(), Tensor.from([[1000, 999, -1000], [0.5, 1000, 1001]], f64)),
  },
  // Losses, alone.
  {
    plugin: "CategoricalCrossEntropy",
    what: "class indices, probabilities from softmax",
    run: () =>
      checkGradients(new CategoricalCrossEntropy(), softmax(x45(7)), { targets: labels(4, 5, 1) }),
  },
  {
    plugin: "CategoricalCrossEntropy",
    what: "one-hot rows",
    run: () =>
      checkGradients(new CategoricalCrossEntropy(), softmax(x45(8)), {
        targets: oneHot(labels(4, 5, 2), 5),
      }),
  },
  {
    plugin: "BinaryCrossEntropy",
    what: "[4, 5], 0/1 targets, p in [0.05, 0.95)",
    run: () =>
      checkGradients(new BinaryCrossEntropy(), uniformTensor([4, 5], 9, 0.05, 0.95), {
        targets: new Tensor(Float64Array.from(labels(20, 2, 3)), [4, 5]),
      }),
  },
  {
    plugin: "BinaryCrossEntropy",
    what: "[6, 1] with [6] soft targets",
    run: () =>
      checkGradients(new BinaryCrossEntropy(), uniformTensor([6, 1], 10, 0.05, 0.95), {
        targets: [0, 0.25, 0.5, 1, 0.75, 1],
      }),
  },
  {
    plugin: "MeanSquaredError",
    what: "[4, 5]",
    run: () => checkGradients(new MeanSquaredError(), x45(11), { targets: x45(12) }),
  },
  {
    plugin: "MeanAbsoluteError",
    what: "[4, 5], |residual| ≥ 0.05",
    run: () => {
      const targets = x45(13);
      const residuals = x45(14, [0]);
      const outputs = targets.clone();
      outputs.data.forEach((_, i) => outputs.data[i] += residuals.data[i]);
      return checkGradients(new MeanAbsoluteError(), outputs, { targets });
    },
  },
  {
    plugin: "Huber",
    what: "delta 1, [4, 5], residuals in both regions, |r| ≠ 1 ± 0.05",
    run: () => {
      const residuals = uniformTensor([4, 5], 15, -3, 3, [-1, 1]);
      return checkGradients(new Huber(), residuals, { targets: Tensor.zeros([4, 5], f64) });
    },
  },
  // Layers with parameters and penalties.
  {
    plugin: "Dense (L1 + L2)",
    what: "Dense(5, 3) with all four penalties",
    run: () =>
      checkGradients(
        new Dense(5, 3, {
          ...f64,
          seed: 16,
          biases: [0.3, -0.2, 0.5],
          weightRegularizerL1: 0.01,
          weightRegularizerL2: 0.02,
          biasRegularizerL1: 0.03,
          biasRegularizerL2: 0.04,
        }),
        x45(17),
      ),
  },
  {
    plugin: "Dense (L1 + L2)",
    what: "Dense → Sigmoid → Dense → Softmax → CategoricalCrossEntropy, L1 + L2 on the first Dense",
    run: () => {
      const model = new Sequential([
        new Dense(5, 8, {
          ...f64,
          seed: 18,
          weightRegularizerL1: 1e-3,
          weightRegularizerL2: 5e-4,
          biasRegularizerL2: 5e-4,
          biases: Array.from({ length: 8 }, (_, i) => 0.1 + 0.05 * i),
        }),
        new Sigmoid(),
        new Dense(8, 3, { ...f64, seed: 19 }),
        new Softmax(),
      ]);
      return checkGradients(model, x45(20), {
        loss: new CategoricalCrossEntropy(),
        targets: labels(4, 3, 4),
      });
    },
  },
  {
    plugin: "Dropout",
    what: "rate 0.3, training (mask held fixed)",
    run: () => checkGradients(new FrozenMask(new Dropout(0.3, { seed: 21 })), x45(22)),
  },
  {
    plugin: "Dropout",
    what: "inference (identity)",
    run: () => checkGradients(new Dropout(0.3, { seed: 21 }), x45(23)),
  },
  // Whole models, each plugin in its usual place.
  {
    plugin: "Softmax",
    what: "Dense → Tanh → Dense → Softmax → CategoricalCrossEntropy",
    run: () =>
      checkGradients(mlp(new Softmax(), 3), uniformTensor([6, 3], 24), {
        loss: new CategoricalCrossEntropy(),
        targets: labels(6, 3, 5),
      }),
  },
  {
    plugin: "Sigmoid",
    what: "Dense → Tanh → Dense → Sigmoid → BinaryCrossEntropy",
    run: () =>
      checkGradients(mlp(new Sigmoid(), 1), uniformTensor([6, 3], 25), {
        loss: new BinaryCrossEntropy(),
        targets: [1, 0, 0, 1, 1, 0],
      }),
  },
  {
    plugin: "Linear",
    what: "Dense → Tanh → Dense → Linear → MeanSquaredError",
    run: () =>
      checkGradients(mlp(new Linear(), 2), uniformTensor([6, 3], 26), {
        loss: new MeanSquaredError(),
        targets: uniformTensor([6, 2], 27),
      }),
  },
];
