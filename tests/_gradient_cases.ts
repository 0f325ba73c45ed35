// The gradient checks of the plugin catalogue, one list shared by the tests (which assert
// max relative error ≤ 1e-6) and by tests/gradient_table.ts (which prints the measured
// errors for the docs). Inputs stay away from kinks: ReLU-like functions at 0, MAE at a
// zero residual, Huber at |r| = delta, the losses' clipping bounds.
import {
  AvgPool2D,
  BatchNorm,
  BinaryCrossEntropy,
  CategoricalCrossEntropy,
  checkGradients,
  Conv2D,
  Dense,
  Dropout,
  Embedding,
  Flatten,
  GELU,
  GlobalAvgPool2D,
  type GradientReport,
  GRU,
  Huber,
  type Layer,
  LayerNorm,
  LeakyReLU,
  Linear,
  LSTM,
  MaxPool2D,
  MeanAbsoluteError,
  MeanSquaredError,
  MultiHeadAttention,
  type Param,
  PositionalEmbedding,
  RandomState,
  ReLU,
  Residual,
  Sequential,
  Sigmoid,
  Softmax,
  softmax,
  SoftmaxCrossEntropy,
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
// Images: batch 2, 3 channels, 7×5 (odd, not square).
const images = (seed: number, shape = [2, 3, 7, 5]) => uniformTensor(shape, seed);

function conv(options: Record<string, unknown>, seed: number): Conv2D {
  const layer = new Conv2D(3, 4, [3, 2], { ...f64, seed, ...options });
  layer.biases?.value.data.set([0.3, -0.2, 0.1, 0.5]);
  return layer;
}

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
  // Convolutions: 3×2 kernels over 3 channels of 7×5, batch 2.
  {
    plugin: "Conv2D",
    what: "3×2 kernel, stride 2, padding 1, [2, 3, 7, 5] → [2, 4, 4, 3]",
    run: () => checkGradients(conv({ stride: 2, padding: 1 }, 31), images(32)),
  },
  {
    plugin: "Conv2D",
    what: '3×2 kernel, padding "same" (1 above and below, 0 left, 1 right)',
    run: () => checkGradients(conv({ padding: "same" }, 33), images(34)),
  },
  {
    plugin: "Conv2D",
    what: "3×2 kernel, dilation 2, padding [1, 0]",
    run: () => checkGradients(conv({ dilation: 2, padding: [1, 0] }, 35), images(36)),
  },
  {
    plugin: "Conv2D",
    what: "stride [2, 1], dilation [1, 2], padding 2, no bias, L1 + L2 on the weights",
    run: () =>
      checkGradients(
        conv({
          stride: [2, 1],
          dilation: [1, 2],
          padding: 2,
          bias: false,
          weightRegularizerL1: 0.01,
          weightRegularizerL2: 0.02,
        }, 37),
        images(38),
      ),
  },
  // Pooling: windows that overlap, that do not divide the size, padding.
  {
    plugin: "MaxPool2D",
    what: "kernel 3, stride 2 (overlapping windows), [2, 3, 7, 5] → [2, 3, 3, 2]",
    run: () => checkGradients(new MaxPool2D(3, { stride: 2 }), images(39)),
  },
  {
    plugin: "MaxPool2D",
    what: "kernel 2 over 7×5 (the last row and column left out)",
    run: () => checkGradients(new MaxPool2D(2), images(40)),
  },
  {
    plugin: "MaxPool2D",
    what: "kernel [3, 2], stride [2, 1], padding 1",
    run: () => checkGradients(new MaxPool2D([3, 2], { stride: [2, 1], padding: 1 }), images(41)),
  },
  {
    plugin: "AvgPool2D",
    what: "kernel 3, stride 2, padding 1 (padded cells count in the mean)",
    run: () => checkGradients(new AvgPool2D(3, { stride: 2, padding: 1 }), images(42)),
  },
  {
    plugin: "AvgPool2D",
    what: "kernel [2, 3] over 7×5 (not dividing)",
    run: () => checkGradients(new AvgPool2D([2, 3]), images(43)),
  },
  {
    plugin: "GlobalAvgPool2D",
    what: "[2, 3, 7, 5] → [2, 3]",
    run: () => checkGradients(new GlobalAvgPool2D(), images(44)),
  },
  {
    plugin: "Flatten",
    what: "[2, 3, 7, 5] → [2, 105]",
    run: () => checkGradients(new Flatten(), images(45)),
  },
  // Batch normalization, in training through the batch's mean and variance.
  {
    plugin: "BatchNorm",
    what: "training, [2, 3, 7, 5] per channel, through the mean and the variance",
    run: () =>
      checkGradients(
        new BatchNorm(3, { ...f64, gamma: [1.5, -0.5, 2], beta: [0.1, 0.2, -0.3] }),
        images(46),
        { training: true },
      ),
  },
  {
    plugin: "BatchNorm",
    what: "training, [6, 4] per feature",
    run: () =>
      checkGradients(
        new BatchNorm(4, { ...f64, gamma: [1, 2, 0.5, -1], beta: [0, 1, 0, -1] }),
        uniformTensor([6, 4], 47),
        { training: true },
      ),
  },
  {
    plugin: "BatchNorm",
    what: "inference, with running statistics",
    run: () => {
      const norm = new BatchNorm(3, { ...f64, gamma: [1.5, -0.5, 2] });
      norm.runningMean.data.set([0.2, -0.1, 0.3]);
      norm.runningVar.data.set([0.5, 2, 1.5]);
      return checkGradients(norm, images(48));
    },
  },
  // Whole models, each plugin in its usual place.
  {
    plugin: "Conv2D",
    what: "Conv2D → ReLU → MaxPool2D → Flatten → Dense → SoftmaxCrossEntropy",
    run: () => {
      const model = new Sequential([
        new Conv2D(3, 4, 3, { ...f64, seed: 49, padding: 1 }),
        new ReLU(),
        new MaxPool2D(2),
        new Flatten(),
        new Dense(4 * 3 * 2, 3, { ...f64, seed: 50 }),
      ]);
      return checkGradients(model, images(51), {
        loss: new SoftmaxCrossEntropy(),
        targets: labels(2, 3, 6),
      });
    },
  },
  {
    plugin: "BatchNorm",
    what: "Conv2D → BatchNorm → Tanh → GlobalAvgPool2D → Dense → SoftmaxCrossEntropy, training",
    run: () => {
      const model = new Sequential([
        new Conv2D(3, 4, 3, { ...f64, seed: 52, stride: 2 }),
        new BatchNorm(4, { ...f64, gamma: [1, 0.5, 2, 1.5], beta: [0.1, 0, -0.1, 0.2] }),
        new Tanh(),
        new GlobalAvgPool2D(),
        new Dense(4, 3, { ...f64, seed: 53 }),
      ]);
      return checkGradients(model, images(54, [3, 3, 7, 5]), {
        loss: new SoftmaxCrossEntropy(),
        targets: labels(3, 3, 7),
        training: true,
      });
    },
  },
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
    plugin: "MultiHeadAttention",
    what:
      "a tiny GPT: Embedding → PositionalEmbedding → Residual(LayerNorm → causal attention) → " +
      "Residual(LayerNorm → Dense → GELU → Dense) → LayerNorm → Dense → SoftmaxCrossEntropy on [2, 5] ids",
    run: () => {
      const model = new Sequential([
        new Embedding(7, 8, { ...f64, seed: 60 }),
        new PositionalEmbedding(6, 8, { ...f64, seed: 61 }),
        new Residual([
          new LayerNorm(8, f64),
          new MultiHeadAttention(8, 2, { ...f64, causal: true, seed: 62 }),
        ]),
        new Residual([
          new LayerNorm(8, f64),
          new Dense(8, 16, { ...f64, seed: 63 }),
          new GELU(),
          new Dense(16, 8, { ...f64, seed: 64 }),
        ]),
        new LayerNorm(8, f64),
        new Dense(8, 7, { ...f64, seed: 65 }),
      ]);
      const ids = Tensor.from([[1, 4, 0, 6, 2], [3, 3, 5, 1, 0]], f64);
      return checkGradients(model, ids, {
        loss: new SoftmaxCrossEntropy(),
        targets: Tensor.from([[4, 0, 6, 2, 1], [3, 5, 1, 0, 2]], f64),
        checkInputs: false,
      });
    },
  },
  ...([LSTM, GRU] as const).map((Recurrent, i) => ({
    plugin: Recurrent.name,
    what: `Embedding → ${Recurrent.name}(4, 6) → Dense → SoftmaxCrossEntropy on [2, 5] ids`,
    run: () => {
      const model = new Sequential([
        new Embedding(5, 4, { ...f64, seed: 70 + i }),
        new Recurrent(4, 6, { ...f64, seed: 72 + i }),
        new Dense(6, 5, { ...f64, seed: 74 + i }),
      ]);
      return checkGradients(model, Tensor.from([[1, 4, 0, 3, 2], [3, 3, 0, 1, 4]], f64), {
        loss: new SoftmaxCrossEntropy(),
        targets: Tensor.from([[4, 0, 3, 2, 1], [3, 0, 1, 4, 2]], f64),
        checkInputs: false,
      });
    },
  })),
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
