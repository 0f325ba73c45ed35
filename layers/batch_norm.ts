import { getBackend } from "../backends/selection.ts";
import { describe, describeKind } from "../core/_describe.ts";
import { expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type {
  BackwardOptions,
  ForwardOptions,
  Layer,
  StateTensor,
  TorchName,
} from "../core/layer.ts";
import { checkAllocation } from "../core/_allocation.ts";
import { Param } from "../core/param.ts";
import { Scratch } from "../core/_scratch.ts";
import {
  type DType,
  type FloatArray,
  formatShape,
  type NestedArray,
  Tensor,
} from "../core/tensor.ts";
import { sameShape } from "./_im2col.ts";
import { fillExplicit } from "./_weights.ts";
import {
  f32Bits,
  flatIndex,
  type GpuBackwardOptions,
  type GpuContext,
  type GpuForwardOptions,
  type GpuLayer,
  type GpuTensor,
  gridFor,
} from "../core/gpu.ts";
import { kernel } from "../backends/webgpu_ops.ts";
import { checkGpuGradient } from "./_gpu_conv.ts";
import { CHANNEL_AT, workgroupReduce } from "./_gpu_reduce.ts";

/** Options of {@linkcode BatchNorm}. */
export interface BatchNormOptions {
  /**
   * Weight of the newest batch in the running statistics, as PyTorch defines it:
   * `running = (1 − momentum)·running + momentum·batch`; 0.1 when omitted.
   */
  momentum?: number;
  /** Added to the variance before its square root: a finite number > 0; 1e-5 when omitted. */
  epsilon?: number;
  /** Initial scale `[features]`; ones when omitted. */
  gamma?: NestedArray;
  /** Initial shift `[features]`; zeros when omitted. */
  beta?: NestedArray;
  /** Element type of the parameters and statistics; `"float32"` when omitted. */
  dtype?: DType;
}

function checkFraction(value: number, name: string, min: number, max: number): number {
  if (typeof value !== "number" || !(value >= min && value <= max)) {
    throw new RangeError(
      `new BatchNorm: ${name} must be a number in [${min}, ${max}], got ${describe(value)}`,
    );
  }
  return value;
}

/**
 * Batch normalization (Ioffe & Szegedy 2015), as PyTorch's `BatchNorm1d`/`BatchNorm2d`: each
 * feature (axis 1: a `Dense` output, or an image channel) is normalized to zero mean and
 * unit variance, then scaled and shifted by trained `gamma` and `beta`:
 * `outputs = gamma·(inputs − mean)/√(var + ε) + beta`, with the statistics taken per feature
 * over the batch and every position (N, H, W).
 *
 * - **Training** (`forward(x, { training: true })`): the batch's mean and biased variance
 *   normalize; the running statistics move towards the batch's, with the unbiased variance
 *   (`var·m/(m − 1)` over m values), as PyTorch does. Backward goes through the mean and the
 *   variance. A batch with a single value per feature has no variance: it is an error, as in
 *   PyTorch.
 * - **Inference**: the running statistics normalize.
 *
 * On WebGPU the statistics are float32 sums over tree reductions, one workgroup a feature;
 * the running statistics live on the device through the fit (a step whose loss was not
 * finite leaves them as they were) and `numBatchesTracked` counts on the CPU.
 *
 * `runningMean`, `runningVar` and `numBatchesTracked` are model state, not parameters:
 * `buffers()` lists them, so they are saved, loaded and restored by `EarlyStopping`, and no
 * optimizer sees them.
 *
 * Shapes: inputs `[batch, features]` or `[batch, features, H, W]` (any rank ≥ 2, features on
 * axis 1) → outputs of the same shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BatchNorm, Tensor } from "@chainrule/nn";
 *
 * // An epsilon of 1e-300 vanishes next to a variance of 1, so the values come out exact.
 * const norm = new BatchNorm(1, { epsilon: 1e-300, dtype: "float64" });
 * const out = norm.forward(Tensor.from([[1], [3]], { dtype: "float64" }), { training: true });
 * assert.deepEqual(out.toArray(), [[-1], [1]]); // mean 2, variance 1
 * assert.deepEqual([...norm.runningMean.data], [0.2]); // 0.9·0 + 0.1·2
 * assert.deepEqual([...norm.runningVar.data], [1.1]); // 0.9·1 + 0.1·2 (unbiased)
 * ```
 */
export class BatchNorm implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "BatchNorm";
  /**
   * True: the next layer may write over the outputs of a training forward (backward reads the
   * inputs and statistics, never the outputs).
   */
  readonly outputsFree: boolean = true;
  /** Training needs 2 samples (2 values per feature; images of 1 sample would do). */
  readonly minTrainingBatch = 2;
  /** Features (channels) on axis 1. */
  readonly features: number;
  /** Weight of the newest batch in the running statistics. */
  readonly momentum: number;
  /** Added to the variance before its square root. */
  readonly epsilon: number;
  /** Scale `[features]` (PyTorch's `weight`). */
  readonly gamma: Param;
  /** Shift `[features]` (PyTorch's `bias`). */
  readonly beta: Param;
  /** The running mean `[features]`, used at inference; zeros at first. */
  readonly runningMean: Tensor;
  /** The running (unbiased) variance `[features]`, used at inference; ones at first. */
  readonly runningVar: Tensor;
  /** How many training batches have updated the running statistics: a float64 scalar `[]`. */
  readonly numBatchesTracked: Tensor;
  #inputs?: Tensor; // cached by forward for backward
  #training = false; // whether the cached forward used the batch's statistics
  #mean: Float64Array; // [features]: the mean the last forward subtracted
  #invStd: Float64Array; // [features]: 1/√(var + ε) it multiplied by
  #sums: Float64Array; // [features]
  #sums2: Float64Array; // [features]
  #planeSums = new Scratch(); // [N·features]: per-plane sums from the backend
  #planeDots = new Scratch(); // [N·features]
  #coefficients: Float64Array[]; // five [features] rows for the backend's element-wise passes
  #outputs = new Scratch(); // reused by training forwards
  #dinputs = new Scratch(); // reused by backward after a training forward
  #gpuInputs?: GpuTensor; // [N, features, …], cached by gpuForward for gpuBackward
  #gpuTraining = false; // whether the cached gpuForward used the batch's statistics

  /**
   * Creates the layer: gamma ones, beta zeros, running mean zeros, running variance ones.
   *
   * @throws {RangeError} for a feature count that is not a positive integer, a momentum
   * outside [0, 1] or an epsilon that is not a finite number > 0.
   */
  constructor(features: number, options: BatchNormOptions = {}) {
    const where = "new BatchNorm";
    if (!Number.isSafeInteger(features) || features <= 0) {
      throw new RangeError(
        `${where}: features must be a positive integer, got ${describe(features)}`,
      );
    }
    this.features = features;
    this.momentum = checkFraction(options.momentum ?? 0.1, "momentum", 0, 1);
    const epsilon = options.epsilon ?? 1e-5;
    if (typeof epsilon !== "number" || !Number.isFinite(epsilon) || epsilon <= 0) {
      throw new RangeError(
        `${where}: epsilon must be a finite number > 0 (with 0, a constant feature gives 0/0 = ` +
          `NaN), got ${describe(epsilon)}`,
      );
    }
    this.epsilon = epsilon;
    const dtype = options.dtype ?? "float32";
    if (dtype !== "float32" && dtype !== "float64") {
      throw new TypeError(`${where}: dtype must be "float32" or "float64", got ${describe(dtype)}`);
    }
    checkAllocation(where, dtype, { gamma: [features], beta: [features] });
    this.gamma = new Param("gamma", Tensor.filled([features], 1, { dtype }));
    this.beta = new Param("beta", Tensor.zeros([features], { dtype }));
    if (options.gamma !== undefined) fillExplicit(this.gamma.value, options.gamma, "gamma", where);
    if (options.beta !== undefined) fillExplicit(this.beta.value, options.beta, "beta", where);
    this.runningMean = Tensor.zeros([features], { dtype });
    this.runningVar = Tensor.filled([features], 1, { dtype });
    this.numBatchesTracked = Tensor.zeros([], { dtype: "float64" });
    this.#mean = new Float64Array(features);
    this.#invStd = new Float64Array(features);
    this.#sums = new Float64Array(features);
    this.#sums2 = new Float64Array(features);
    this.#coefficients = Array.from({ length: 5 }, () => new Float64Array(features));
  }

  /** Rebuilds a layer from {@linkcode BatchNorm.config} (fresh parameters and statistics). */
  static fromConfig(config: JsonObject): BatchNorm {
    const { features, ...options } = config as unknown as
      & { features: number }
      & BatchNormOptions;
    return new BatchNorm(features, options);
  }

  /** Element type of the parameters. */
  get dtype(): DType {
    return this.gamma.dtype;
  }

  /**
   * `inputs` [N, features, …] → outputs of the same shape: normalized by the batch's
   * statistics while training (which also updates the running ones), by the running
   * statistics otherwise. A training forward reuses its output buffer.
   *
   * @throws {TypeError} for inputs of rank < 2, another feature count or dtype.
   * @throws {RangeError} for an empty batch, or a training batch with one value per feature.
   */
  forward(inputs: Tensor, options?: ForwardOptions): Tensor {
    const where = "BatchNorm.forward";
    const [batch, features, positions] = this.#checkInputs(inputs, where);
    const count = batch * positions; // values per feature
    const training = options?.training === true;
    if (training && count < 2) {
      throw new RangeError(
        `${where}: training needs more than 1 value per feature to compute a variance ` +
          `(as PyTorch), got inputs shape ${
            formatShape(inputs.shape)
          }; train on batches of at least 2 samples, or run at inference (training false)`,
      );
    }
    this.#inputs = inputs;
    this.#training = training;
    const x = inputs.data, mean = this.#mean, invStd = this.#invStd;
    if (training) {
      const sums = this.#sums, squares = this.#sums2;
      this.#sumPerFeature("sums", x, null, null, sums, null, batch, positions);
      for (let f = 0; f < features; f++) mean[f] = sums[f] / count;
      this.#sumPerFeature("squares", x, null, mean, squares, null, batch, positions); // Σ (x − mean)²
      const rm = this.runningMean.data, rv = this.runningVar.data, m = this.momentum;
      for (let f = 0; f < features; f++) {
        const variance = squares[f] / count; // biased: it normalizes
        invStd[f] = 1 / Math.sqrt(variance + this.epsilon);
        rm[f] = (1 - m) * rm[f] + m * mean[f];
        rv[f] = (1 - m) * rv[f] + m * variance * count / (count - 1); // unbiased
      }
      this.numBatchesTracked.data[0] += 1;
    } else {
      const rm = this.runningMean.data, rv = this.runningVar.data;
      for (let f = 0; f < features; f++) {
        mean[f] = rm[f];
        invStd[f] = 1 / Math.sqrt(rv[f] + this.epsilon);
      }
    }
    const outputs = training
      ? this.#outputs.get(inputs.dtype, inputs.shape, getBackend())
      : Tensor.zeros(inputs.shape, { dtype: inputs.dtype });
    const y = outputs.data, gamma = this.gamma.value.data, beta = this.beta.value.data;
    const [scales, shifts] = this.#coefficients;
    for (let f = 0; f < features; f++) {
      scales[f] = gamma[f] * invStd[f];
      shifts[f] = beta[f] - mean[f] * scales[f];
    }
    const arrays = { x, out: y, coefficients: [scales, shifts] };
    if (getBackend().batchNorm?.("normalize", batch, features, positions, arrays)) return outputs;
    for (let n = 0; n < batch; n++) {
      for (let f = 0; f < features; f++) {
        const scale = gamma[f] * invStd[f], shift = beta[f] - mean[f] * scale;
        const start = (n * features + f) * positions;
        for (let i = start; i < start + positions; i++) y[i] = x[i] * scale + shift;
      }
    }
    return outputs;
  }

  // x̂ = (x − mean)·invStd   dgamma += Σ dvalues·x̂   dbeta += Σ dvalues
  // training: dinputs = gamma·invStd/m · (m·dvalues − Σ dvalues − x̂·Σ dvalues·x̂)
  //           (the mean and the variance depend on every input of their feature)
  // inference: dinputs = gamma·invStd·dvalues
  /**
   * `dvalues` [N, features, …] → dinputs of the same shape, left uncomputed when
   * `options.inputGradient` is false.
   */
  backward(dvalues: Tensor, options?: BackwardOptions): Tensor {
    const inputs = this.#inputs;
    if (!inputs) throw new Error("BatchNorm.backward: call forward first");
    if (
      !(dvalues instanceof Tensor) || dvalues.dtype !== inputs.dtype ||
      !sameShape(dvalues.shape, inputs.shape)
    ) {
      const got = dvalues instanceof Tensor
        ? `${dvalues.dtype} ${formatShape(dvalues.shape)}`
        : describeKind(dvalues);
      throw new TypeError(
        `BatchNorm.backward: dvalues is ${got}, expected ${inputs.dtype} ${
          formatShape(inputs.shape)
        } like the last forward's outputs`,
      );
    }
    const [batch, features] = inputs.shape;
    const positions = inputs.size / (batch * features);
    const count = batch * positions;
    const x = inputs.data, dv = dvalues.data, mean = this.#mean, invStd = this.#invStd;
    const sumDv = this.#sums, sumDvXhat = this.#sums2;
    this.#sumPerFeature("gradientSums", x, dv, mean, sumDv, sumDvXhat, batch, positions);
    const dgamma = this.gamma.grad.data, dbeta = this.beta.grad.data;
    for (let f = 0; f < features; f++) {
      sumDvXhat[f] *= invStd[f];
      dgamma[f] += sumDvXhat[f];
      dbeta[f] += sumDv[f];
    }
    // Training buffers in the backend's memory (where the wasm backend's ReLU and
    // convolutions read them in place), but not an input gradient nobody reads (never freed).
    const wanted = options?.inputGradient !== false;
    const dinputs = this.#training
      ? this.#dinputs.get(inputs.dtype, inputs.shape, wanted ? getBackend() : undefined)
      : Tensor.zeros(inputs.shape, { dtype: inputs.dtype });
    if (options?.inputGradient === false) return dinputs;
    const dx = dinputs.data, gamma = this.gamma.value.data;
    const [scales, meanDvs, means, invStds, meanDvXhats] = this.#coefficients;
    for (let f = 0; f < features; f++) {
      scales[f] = gamma[f] * invStd[f];
      meanDvs[f] = sumDv[f] / count;
      means[f] = mean[f];
      invStds[f] = invStd[f];
      meanDvXhats[f] = sumDvXhat[f] / count;
    }
    const arrays = this.#training
      ? { x, dvalues: dv, out: dx, coefficients: this.#coefficients }
      : { dvalues: dv, out: dx, coefficients: [scales] };
    const pass = this.#training ? "gradient" : "inferenceGradient";
    if (getBackend().batchNorm?.(pass, batch, features, positions, arrays)) return dinputs;
    for (let n = 0; n < batch; n++) {
      for (let f = 0; f < features; f++) {
        const start = (n * features + f) * positions;
        const scale = gamma[f] * invStd[f];
        if (!this.#training) {
          for (let i = start; i < start + positions; i++) dx[i] = scale * dv[i];
          continue;
        }
        const mu = mean[f], istd = invStd[f];
        const meanDv = sumDv[f] / count, meanDvXhat = sumDvXhat[f] / count;
        for (let i = start; i < start + positions; i++) {
          dx[i] = scale * (dv[i] - meanDv - (x[i] - mu) * istd * meanDvXhat);
        }
      }
    }
    return dinputs;
  }

  /**
   * {@linkcode BatchNorm.forward} on the device: `inputs` [N, features, …] → outputs of the
   * same shape. A training forward also moves the device's running statistics (unless
   * `ctx.status` says stop) and counts the batch in `numBatchesTracked`.
   *
   * @throws {TypeError} for inputs of rank < 2, another feature count, or not float32.
   * @throws {RangeError} for an empty batch, or a training batch with one value per feature.
   */
  gpuForward(ctx: GpuContext, inputs: GpuTensor, options?: GpuForwardOptions): GpuTensor {
    const where = "BatchNorm.gpuForward";
    const shape = inputs.shape;
    if (shape.length < 2 || shape[1] !== this.features || inputs.dtype !== "float32") {
      throw new TypeError(
        `${where}: inputs must be float32 [batch, ${this.features}, …], got ${inputs.dtype} ${
          formatShape(shape)
        }`,
      );
    }
    if (inputs.size === 0) {
      throw new RangeError(`${where}: inputs is empty (shape ${formatShape(shape)})`);
    }
    const batch = shape[0], features = this.features;
    const positions = inputs.size / (batch * features);
    const count = batch * positions; // values per feature
    const training = options?.training === true;
    if (training && count < 2) {
      throw new RangeError(
        `${where}: training needs more than 1 value per feature to compute a variance ` +
          `(as PyTorch), got inputs shape ${formatShape(shape)}`,
      );
    }
    const stats = ctx.buffer(this, "stats", [3, features]); // mean, invStd, variance
    const runningMean = ctx.mirror(this.runningMean.data, [features]);
    const runningVar = ctx.mirror(this.runningVar.data, [features]);
    const uniforms = this.#gpuWords(batch, positions, training);
    if (training) {
      const code = kernel("BatchNorm.forward statistics", BATCH_STATISTICS);
      ctx.run(this, "statistics", code, [inputs, stats], uniforms, gridFor(features, 1));
      const update = kernel("BatchNorm.forward running statistics", RUNNING_UPDATE);
      const tensors = [stats, ctx.status, runningMean, runningVar];
      ctx.run(this, "running", update, tensors, uniforms, gridFor(features));
      this.numBatchesTracked.data[0] += 1;
    } else {
      const code = kernel("BatchNorm.forward running statistics", RUNNING_STATISTICS);
      const tensors = [runningMean, runningVar, stats];
      ctx.run(this, "inference", code, tensors, uniforms, gridFor(features));
    }
    const outputs = ctx.buffer(this, "outputs", shape);
    const gamma = ctx.param(this.gamma).value, beta = ctx.param(this.beta).value;
    const code = kernel("BatchNorm.forward", NORMALIZE);
    const tensors = [inputs, stats, gamma, beta, outputs];
    ctx.run(this, "forward", code, tensors, uniforms, gridFor(inputs.size));
    this.#gpuInputs = inputs;
    this.#gpuTraining = training;
    return outputs;
  }

  // x̂ = (x − mean)·invStd   dgamma += Σ dvalues·x̂   dbeta += Σ dvalues
  // training: dinputs = gamma·invStd/m · (m·dvalues − Σ dvalues − x̂·Σ dvalues·x̂)
  // inference: dinputs = gamma·invStd·dvalues
  /**
   * {@linkcode BatchNorm.backward} on the device: `dvalues` [N, features, …] → dinputs of
   * the same shape, left uncomputed when `options.inputGradient` is false.
   */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor, options?: GpuBackwardOptions): GpuTensor {
    const inputs = this.#gpuInputs;
    if (!inputs) throw new Error("BatchNorm.gpuBackward: call gpuForward first");
    checkGpuGradient(dvalues, inputs.shape, "BatchNorm.gpuBackward");
    const batch = inputs.shape[0], features = this.features;
    const positions = inputs.size / (batch * features);
    const uniforms = this.#gpuWords(batch, positions, this.#gpuTraining);
    const stats = ctx.buffer(this, "stats", [3, features]);
    const sums = ctx.buffer(this, "sums", [2, features]); // Σ dvalues, Σ dvalues·x̂
    const gamma = ctx.param(this.gamma), beta = ctx.param(this.beta);
    const code = kernel("BatchNorm.backward sums", BACKWARD_SUMS);
    const tensors = [inputs, dvalues, stats, sums, gamma.grad, beta.grad];
    ctx.run(this, "sums", code, tensors, uniforms, gridFor(features, 1));
    const dinputs = ctx.buffer(this, "dinputs", inputs.shape);
    if (options?.inputGradient === false) return dinputs;
    const backward = kernel("BatchNorm.backward", INPUT_GRADIENT);
    const all = [inputs, dvalues, stats, sums, gamma.value, dinputs];
    ctx.run(this, "backward", backward, all, uniforms, gridFor(inputs.size));
    return dinputs;
  }

  // The words of GPU_PARAMS.
  #gpuWords(batch: number, positions: number, training: boolean): number[] {
    const count = batch * positions;
    return [
      batch,
      this.features,
      positions,
      f32Bits(this.epsilon),
      f32Bits(this.momentum),
      f32Bits(count / (count - 1)),
      training ? 1 : 0,
    ];
  }

  /** `[gamma, beta]` */
  params(): Param[] {
    return [this.gamma, this.beta];
  }

  /** `runningMean`, `runningVar` and `numBatchesTracked`: state that is not trained. */
  buffers(): StateTensor[] {
    return [
      { name: "runningMean", value: this.runningMean },
      { name: "runningVar", value: this.runningVar },
      { name: "numBatchesTracked", value: this.numBatchesTracked },
    ];
  }

  /**
   * PyTorch's `nn.BatchNorm2d` names: gamma and beta are `weight` and `bias`; the state is
   * `running_mean`, `running_var` and `num_batches_tracked` (an int64 there).
   */
  torchNames(): Record<string, TorchName> {
    return {
      gamma: { torch: "weight" },
      beta: { torch: "bias" },
      runningMean: { torch: "running_mean" },
      runningVar: { torch: "running_var" },
      numBatchesTracked: { torch: "num_batches_tracked" },
    };
  }

  /** `{ features, momentum, epsilon, dtype }` */
  config(): JsonObject {
    return {
      features: this.features,
      momentum: this.momentum,
      epsilon: this.epsilon,
      dtype: this.dtype,
    };
  }

  /** `BatchNorm(features=32)`, with momentum and epsilon where not the defaults. */
  toString(): string {
    const extra = (this.momentum !== 0.1 ? `, momentum=${this.momentum}` : "") +
      (this.epsilon !== 1e-5 ? `, epsilon=${this.epsilon}` : "");
    return `BatchNorm(features=${this.features}${extra})`;
  }

  // out[f] = Σ_{n,p} x[n, f, p] ("squares": Σ (x − mean[f])²; "gradientSums": Σ dv into out and
  // Σ dv·(x − mean[f]) into dots): each plane summed in the order of its values, then the
  // planes of a feature in the order of n, by the backend's pass where it has one.
  #sumPerFeature(
    pass: "sums" | "squares" | "gradientSums",
    x: FloatArray, // [N, features, positions]
    dv: FloatArray | null, // [N, features, positions]
    mean: Float64Array | null, // [features]
    out: Float64Array, // [features]
    dots: Float64Array | null, // [features]
    batch: number,
    positions: number,
  ): void {
    const features = this.features, planes = batch * features;
    const sums = this.#planeSums.get("float64", [planes]).data as Float64Array;
    const products = dots ? this.#planeDots.get("float64", [planes]).data as Float64Array : null;
    const arrays = {
      x,
      dvalues: dv ?? undefined,
      coefficients: mean ? [mean] : [],
      sums,
      dots: products ?? undefined,
    };
    if (!getBackend().batchNorm?.(pass, batch, features, positions, arrays)) {
      for (let plane = 0; plane < planes; plane++) {
        const start = plane * positions, end = start + positions;
        const mu = mean ? mean[plane % features] : 0;
        let sum = 0, dot = 0;
        if (pass === "sums") { for (let i = start; i < end; i++) sum += x[i]; }
        else if (pass === "squares") {
          for (let i = start; i < end; i++) sum += (x[i] - mu) * (x[i] - mu);
        } else {
          for (let i = start; i < end; i++) {
            sum += dv![i];
            dot += dv![i] * (x[i] - mu);
          }
          products![plane] = dot;
        }
        sums[plane] = sum;
      }
    }
    out.fill(0);
    dots?.fill(0);
    for (let plane = 0; plane < planes; plane++) {
      out[plane % features] += sums[plane];
      if (dots) dots[plane % features] += products![plane];
    }
  }

  // [batch, features, positions per feature] of checked inputs.
  #checkInputs(inputs: Tensor, where: string): [number, number, number] {
    expectTensor(inputs, where);
    const shape = () => formatShape(inputs.shape); // for the messages only
    if (inputs.rank < 2) {
      throw new TypeError(
        `${where}: inputs must be [batch, features] or [batch, channels, height, width], got shape ${shape()}`,
      );
    }
    const [batch, features] = inputs.shape;
    if (features !== this.features) {
      throw new TypeError(
        `${where}: inputs have ${features} features (axis 1), expected ${this.features} (inputs shape ${shape()})`,
      );
    }
    if (inputs.dtype !== this.dtype) {
      throw new TypeError(
        `${where}: inputs are ${inputs.dtype}, the layer is ${this.dtype} (convert with tensor.clone({ dtype: "${this.dtype}" }))`,
      );
    }
    if (inputs.size === 0) throw new RangeError(`${where}: inputs is empty (shape ${shape()})`);
    return [batch, features, inputs.size / (batch * features)];
  }
}

// The uniforms of BatchNorm's kernels. `correction` = m/(m − 1) makes the variance unbiased;
// stats is [3, features]: the mean, 1/√(var + ε) and the (biased) variance.
const GPU_PARAMS = /* wgsl */ `
struct P {
  batch: u32, features: u32, positions: u32, epsilon: f32,
  momentum: f32, correction: f32, training: u32,
};
@group(0) @binding(0) var<uniform> p: P;`;

// A feature per workgroup (folded past 65535): each invocation sums a stride of the feature's
// m = N·positions values, then a tree through workgroup memory; the mean first, then the
// squared deviations from it (two passes, as the CPU).
const BATCH_STATISTICS = /* wgsl */ `${GPU_PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
${workgroupReduce(256)}
${CHANNEL_AT}
@compute @workgroup_size(256)
fn main(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let f = wid.x + wid.y * groups.x;
  if (f >= p.features) { return; }
  let count = p.batch * p.positions;
  var sum = 0.0;
  for (var m = lid.x; m < count; m += 256u) {
    sum += x[channelAt(f, m, p.features, p.positions)];
  }
  let mean = reduce(lid.x, sum) / f32(count);
  var squares = 0.0;
  for (var m = lid.x; m < count; m += 256u) {
    let d = x[channelAt(f, m, p.features, p.positions)] - mean;
    squares += d * d;
  }
  let variance = reduce(lid.x, squares) / f32(count);
  if (lid.x == 0u) {
    stats[f] = mean;
    stats[p.features + f] = 1.0 / sqrt(variance + p.epsilon);
    stats[2u * p.features + f] = variance;
  }
}`;

// running = (1 − momentum)·running + momentum·batch, the variance made unbiased; a step whose
// status says stop leaves them unchanged.
const RUNNING_UPDATE = /* wgsl */ `${GPU_PARAMS}
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read> status: array<u32>;
@group(0) @binding(3) var<storage, read_write> runningMean: array<f32>;
@group(0) @binding(4) var<storage, read_write> runningVar: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.features || status[0] != 0u) { return; }
  let m = p.momentum;
  runningMean[i] = (1.0 - m) * runningMean[i] + m * stats[i];
  runningVar[i] = (1.0 - m) * runningVar[i] + m * stats[2u * p.features + i] * p.correction;
}`;

// Inference: the running statistics normalize.
const RUNNING_STATISTICS = /* wgsl */ `${GPU_PARAMS}
@group(0) @binding(1) var<storage, read> runningMean: array<f32>;
@group(0) @binding(2) var<storage, read> runningVar: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.features) { return; }
  stats[i] = runningMean[i];
  stats[p.features + i] = 1.0 / sqrt(runningVar[i] + p.epsilon);
  stats[2u * p.features + i] = runningVar[i];
}`;

// outputs = x·scale + shift, scale = gamma·invStd, shift = beta − mean·scale (as the CPU).
const NORMALIZE = /* wgsl */ `${GPU_PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.batch * p.features * p.positions) { return; }
  let f = (i / p.positions) % p.features;
  let scale = gamma[f] * stats[p.features + f];
  out[i] = x[i] * scale + (beta[f] - stats[f] * scale);
}`;

// sums = [Σ dvalues, Σ dvalues·x̂] per feature (a workgroup each, two trees at once), added
// into dbeta and dgamma.
const BACKWARD_SUMS = /* wgsl */ `${GPU_PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dv: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> sums: array<f32>;
@group(0) @binding(5) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> dbeta: array<f32>;
${workgroupReduce(256, "vec2f")}
${CHANNEL_AT}
@compute @workgroup_size(256)
fn main(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let f = wid.x + wid.y * groups.x;
  if (f >= p.features) { return; }
  let mean = stats[f];
  var sum = vec2f();
  for (var m = lid.x; m < p.batch * p.positions; m += 256u) {
    let at = channelAt(f, m, p.features, p.positions);
    sum += vec2f(dv[at], dv[at] * (x[at] - mean));
  }
  let total = reduce(lid.x, sum);
  if (lid.x == 0u) {
    let sumDv = total.x;
    let sumDvXhat = total.y * stats[p.features + f];
    sums[f] = sumDv;
    sums[p.features + f] = sumDvXhat;
    dgamma[f] += sumDvXhat;
    dbeta[f] += sumDv;
  }
}`;

const INPUT_GRADIENT = /* wgsl */ `${GPU_PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dv: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read> sums: array<f32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.batch * p.features * p.positions) { return; }
  let f = (i / p.positions) % p.features;
  let invStd = stats[p.features + f];
  let scale = gamma[f] * invStd;
  if (p.training == 0u) {
    dx[i] = scale * dv[i];
    return;
  }
  let count = f32(p.batch * p.positions);
  let xhat = (x[i] - stats[f]) * invStd;
  dx[i] = scale * (dv[i] - sums[f] / count - xhat * sums[p.features + f] / count);
}`;
