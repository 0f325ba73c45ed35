import { ReLU } from "../activations/relu.ts";
import { Conv2D } from "../layers/conv2d.ts";
import { Flatten } from "../layers/flatten.ts";
import { MaxPool2D } from "../layers/max_pool2d.ts";
import { initializers } from "../initializers/initializers.ts";
import { RandomState } from "../core/random.ts";
import { Sequential } from "../models/sequential.ts";
import { type DType, Tensor } from "../core/tensor.ts";
import { Dense } from "../layers/dense.ts";
import { spiralData } from "../data/spiral.ts";

/**
 * One of the reference training workloads that chainrule is benchmarked on against the
 * book's NumPy implementation: the data, the initial weights and the layer sizes, bit for
 * bit as NumPy's legacy `RandomState` generates them.
 */
export interface Workload {
  /** `"W1"` (spiral), `"W2"` (MNIST-shaped MLP), `"W3"` (wide layers) or `"W4"` (a CNN). */
  name: string;
  /** Inputs `[samples, features]` (W4: `[samples, 1, 28, 28]`), float32 as the reference generates them. */
  x: Tensor;
  /** Class index of each sample `[samples]`. */
  y: Int32Array;
  /** `[inFeatures, outFeatures]` of each Dense layer, in order (ReLU between them; W4: its head). */
  layers: [number, number][];
  /** Initial weights `[in, out]` (W4's kernels `[cout, cin, k, k]` first) and (zero) biases, alternating, float32. */
  params: Float32Array[];
}

function glorot(random: RandomState, fanIn: number, fanOut: number): Float32Array {
  const values = new Float64Array(fanIn * fanOut);
  initializers.glorot(values, fanIn, fanOut, random);
  return Float32Array.from(values);
}

// A conv kernel [cout, cin, k, k]: glorot with Keras' fans, fanIn = cin·k·k, fanOut = cout·k·k.
function glorotConv(random: RandomState, cout: number, cin: number, k: number): Float32Array {
  const values = new Float64Array(cout * cin * k * k);
  initializers.glorot(values, cin * k * k, cout * k * k, random);
  return Float32Array.from(values);
}

// The labels of W2 and W4: y = argmax_c Σ_k (2k_ik − 255)·P[k, c] for x = k/256, with the
// projection P [features, classes] drawn as floor(256u) − 128; integer arithmetic, exact in any
// order (|score| < 2²⁶), ties to the lowest class.
function projectedLabels(
  x: Float32Array,
  samples: number,
  features: number,
  classes: number,
  random: RandomState,
): Int32Array {
  const projection = new Int32Array(features * classes); // [features, classes]
  for (let i = 0; i < projection.length; i++) projection[i] = random.randint(256) - 128;
  const y = new Int32Array(samples);
  const scores = new Int32Array(classes);
  for (let i = 0; i < samples; i++) {
    scores.fill(0);
    for (let k = 0, base = i * features; k < features; k++) {
      const v = 2 * (x[base + k] * 256) - 255;
      for (let j = 0, pk = k * classes; j < classes; j++) scores[j] += v * projection[pk + j];
    }
    let best = 0;
    for (let j = 1; j < classes; j++) if (scores[j] > scores[best]) best = j;
    y[i] = best;
  }
  return y;
}

// k/256 for k = floor(256·u): exact in float32, uniform on a 1/256 grid in [0, 1).
function quantized(random: RandomState, length: number, out = new Float32Array(length)) {
  for (let i = 0; i < length; i++) out[i] = random.randint(256) / 256;
  return out;
}

/**
 * W1 "spiral": the book's `spiral_data(100, 3)` from `RandomState(0)`, then, from the same
 * stream, `W1 = 0.01·randn(2, 64)` and `W2 = 0.01·randn(64, 3)`; 2 → 64 → 3.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { workloadW1 } from "./_workload_data.ts";
 *
 * const w1 = workloadW1();
 * assert.deepEqual(w1.x.shape, [300, 2]);
 * assert.deepEqual(w1.layers, [[2, 64], [64, 3]]);
 * ```
 */
export function workloadW1(): Workload {
  const random = new RandomState(0);
  const { x, y } = spiralData(100, 3, { random, dtype: "float64" });
  const nnfs = (size: number) => {
    const values = new Float64Array(size);
    initializers.nnfs(values, 0, 0, random);
    return Float32Array.from(values);
  };
  const w1 = nnfs(2 * 64);
  const w2 = nnfs(64 * 3);
  return {
    name: "W1",
    x: x.clone({ dtype: "float32" }),
    y,
    layers: [[2, 64], [64, 3]],
    params: [w1, new Float32Array(64), w2, new Float32Array(3)],
  };
}

/** Options of {@linkcode workloadW2}. */
export interface WorkloadW2Options {
  /** Samples to generate (the first rows of the full set); 60,000 when omitted. */
  samples?: number;
}

/**
 * W2 "mnist-mlp": 60,000 synthetic MNIST-shaped samples (784 features `k/256` from
 * `RandomState(1)`), labels `argmax((X − 0.5)·P)` for a random integer projection `P`
 * from `RandomState(2)`, Glorot weights from `RandomState(3)`; 784 → 128 → 10.
 *
 * Generating the full set takes 47 million draws (a second or two).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { workloadW2 } from "./_workload_data.ts";
 *
 * const w2 = workloadW2({ samples: 100 });
 * assert.deepEqual(w2.x.shape, [100, 784]);
 * assert.ok(w2.y.every((label) => label >= 0 && label < 10));
 * ```
 */
export function workloadW2(options: WorkloadW2Options = {}): Workload {
  const samples = options.samples ?? 60_000;
  if (!Number.isSafeInteger(samples) || samples < 1) {
    throw new RangeError(`workloadW2: samples must be a positive integer, got ${samples}`);
  }
  const features = 784, hidden = 128, classes = 10;
  const x = quantized(new RandomState(1), samples * features);
  const y = projectedLabels(x, samples, features, classes, new RandomState(2));
  const randomW = new RandomState(3);
  const w1 = glorot(randomW, features, hidden);
  const w2 = glorot(randomW, hidden, classes);
  return {
    name: "W2",
    x: new Tensor(x, [samples, features]),
    y,
    layers: [[features, hidden], [hidden, classes]],
    params: [w1, new Float32Array(hidden), w2, new Float32Array(classes)],
  };
}

/**
 * W3 "wide-gemm": a batch of 2,048 samples of 1,024 features `k/256` (`RandomState(4)`),
 * random labels (`RandomState(5)`), Glorot weights (`RandomState(6)`); 1024 → 1024 → 1024
 * → 10.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { workloadW3 } from "./_workload_data.ts";
 *
 * const w3 = workloadW3();
 * assert.deepEqual(w3.layers, [[1024, 1024], [1024, 1024], [1024, 10]]);
 * ```
 */
export function workloadW3(): Workload {
  const batch = 2048;
  const layers: [number, number][] = [[1024, 1024], [1024, 1024], [1024, 10]];
  const x = quantized(new RandomState(4), batch * 1024);
  const randomY = new RandomState(5);
  const y = Int32Array.from({ length: batch }, () => randomY.randint(10));
  const randomW = new RandomState(6);
  const params = layers.flatMap(([fanIn, fanOut]) => [
    glorot(randomW, fanIn, fanOut),
    new Float32Array(fanOut),
  ]);
  return { name: "W3", x: new Tensor(x, [batch, 1024]), y, layers, params };
}

/**
 * The sample order of epoch `epoch` (0-based) in the reference workloads:
 * `new RandomState(1000 + epoch).permutation(samples)`.
 */
export function workloadPermutation(samples: number, epoch: number): Int32Array {
  return new RandomState(1000 + epoch).permutation(samples);
}

/**
 * The workload's network with its reference initial weights: Dense → ReLU → … → Dense
 * (logits; train it with `SoftmaxCrossEntropy`), in `dtype` (float64 widens the float32
 * reference values exactly, as the NumPy float64 peer does).
 */
export function workloadModel(workload: Workload, dtype: DType = "float32"): Sequential {
  const layers = workload.layers.flatMap(([fanIn, fanOut], i) => {
    const dense = new Dense(fanIn, fanOut, {
      dtype,
      weights: workload.params[2 * i],
      biases: workload.params[2 * i + 1],
    });
    return i < workload.layers.length - 1 ? [dense, new ReLU()] : [dense];
  });
  return new Sequential(layers);
}

/**
 * W4 "fashion-cnn": 4,096 synthetic Fashion-MNIST-shaped images `[4096, 1, 28, 28]` (`k/256`
 * from `RandomState(7)`), labels by W2's rule with a projection from `RandomState(8)`, and
 * from `RandomState(9)` the kernels `glorotConv(32, 1, 3)`, `glorotConv(64, 32, 3)` (Keras'
 * fans: cin·k·k and cout·k·k, `[cout, cin, k, k]`) and the Dense weights `glorot(3136, 128)`,
 * `glorot(128, 10)`; biases zero. Train it with {@linkcode workloadW4Model}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { workloadW4 } from "./_workload_data.ts";
 *
 * const w4 = workloadW4({ samples: 8 });
 * assert.deepEqual(w4.x.shape, [8, 1, 28, 28]);
 * assert.deepEqual(w4.params.map((p) => p.length), [288, 32, 18432, 64, 401408, 128, 1280, 10]);
 * ```
 */
export function workloadW4(options: WorkloadW2Options = {}): Workload {
  const samples = options.samples ?? 4096;
  if (!Number.isSafeInteger(samples) || samples < 1) {
    throw new RangeError(`workloadW4: samples must be a positive integer, got ${samples}`);
  }
  const features = 784, classes = 10;
  const x = quantized(new RandomState(7), samples * features);
  const y = projectedLabels(x, samples, features, classes, new RandomState(8));
  const randomW = new RandomState(9);
  const k1 = glorotConv(randomW, 32, 1, 3);
  const k2 = glorotConv(randomW, 64, 32, 3);
  const w3 = glorot(randomW, 3136, 128);
  const w4 = glorot(randomW, 128, classes);
  return {
    name: "W4",
    x: new Tensor(x, [samples, 1, 28, 28]),
    y,
    layers: [[3136, 128], [128, classes]],
    params: [
      k1,
      new Float32Array(32),
      k2,
      new Float32Array(64),
      w3,
      new Float32Array(128),
      w4,
      new Float32Array(classes),
    ],
  };
}

/**
 * W4's network with its reference initial weights, in PyTorch's terms `Conv2d(1, 32, 3,
 * padding=1)` → ReLU → `MaxPool2d(2)` → `Conv2d(32, 64, 3, padding=1)` → ReLU → `MaxPool2d(2)`
 * → `Flatten` → `Linear(3136, 128)` → ReLU → `Linear(128, 10)` (logits; train it with
 * `SoftmaxCrossEntropy`).
 */
export function workloadW4Model(workload: Workload, dtype: DType = "float32"): Sequential {
  const [k1, c1, k2, c2, w3, b3, w4, b4] = workload.params;
  return new Sequential([
    new Conv2D(1, 32, 3, { padding: 1, dtype, weights: k1, biases: c1 }),
    new ReLU(),
    new MaxPool2D(2),
    new Conv2D(32, 64, 3, { padding: 1, dtype, weights: k2, biases: c2 }),
    new ReLU(),
    new MaxPool2D(2),
    new Flatten(),
    new Dense(3136, 128, { dtype, weights: w3, biases: b3 }),
    new ReLU(),
    new Dense(128, 10, { dtype, weights: w4, biases: b4 }),
  ]);
}
