import { describe } from "../core/_describe.ts";
import { getBackend } from "../backends/selection.ts";
import { getInitializer } from "../initializers/initializers.ts";
import type { JsonObject } from "../core/json.ts";
import type { BackwardOptions, ForwardOptions, Layer, TorchName } from "../core/layer.ts";
import { Scratch } from "../core/_scratch.ts";
import { checkAllocation } from "../core/_allocation.ts";
import { Param } from "../core/param.ts";
import { type RandomOptions, resolveRandom } from "../core/random.ts";
import { type DType, expectMatrix, formatShape, type NestedArray, Tensor } from "../core/tensor.ts";
import {
  addPenaltyGradient,
  checkPenalty,
  fillExplicit,
  gpuAddPenaltyGradient,
  gpuPenalty,
  penalty,
  REGULARIZERS,
} from "./_weights.ts";
import type { GpuBackwardOptions, GpuContext, GpuLayer, GpuSink, GpuTensor } from "../core/gpu.ts";
import { gpuMatmul, gpuSumColumns } from "../backends/webgpu_ops.ts";

/** Options of {@linkcode Dense}. */
export interface DenseOptions extends RandomOptions {
  /** Initial weights `[inFeatures, outFeatures]`: nested arrays or a flat row-major array. */
  weights?: NestedArray;
  /** Initial biases `[outFeatures]`; zeros when omitted. */
  biases?: NestedArray;
  /** Name of the weight initializer (see `initializers`); `"he"` when omitted. */
  init?: string;
  /** Element type of the parameters; `"float32"` when omitted. */
  dtype?: DType;
  /** L1 penalty on the weights: adds `l1·Σ|w|` to the loss. */
  weightRegularizerL1?: number;
  /** L2 penalty on the weights: adds `l2·Σw²` to the loss. */
  weightRegularizerL2?: number;
  /** L1 penalty on the biases. */
  biasRegularizerL1?: number;
  /** L2 penalty on the biases. */
  biasRegularizerL2?: number;
}

// Rows of `tensor` read as `[rows, features]`: a matrix, or the leading axes of a tensor of
// rank 3 or more flattened (`[batch, T, features]` → `batch·T` rows), as nn.Linear reads them.
function rowsOf(tensor: Tensor, where: string, argument: string, features: number): number {
  if (!(tensor instanceof Tensor) || tensor.rank < 3) {
    return expectMatrix(tensor, where, argument, features)[0];
  }
  const last = tensor.shape[tensor.rank - 1];
  if (last !== features) {
    throw new TypeError(
      `${where}: ${argument} has ${last} features in its last axis, expected ${features} (${argument} shape ${
        formatShape(tensor.shape)
      })${tensor.rank === 4 ? "; images need a Flatten() before a Dense" : ""}`,
    );
  }
  if (tensor.size === 0) {
    throw new RangeError(`${where}: ${argument} is empty (shape ${formatShape(tensor.shape)})`);
  }
  return tensor.size / features;
}

function checkDimension(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`new Dense: ${name} must be a positive integer, got ${describe(value)}`);
  }
}

/**
 * Fully connected layer: `outputs = inputs·W + b`.
 *
 * Shapes: inputs `[batch, inFeatures]` → outputs `[batch, outFeatures]`; inputs of rank 3 or
 * more apply to the last axis, as `nn.Linear` and Keras' Dense do: `[batch, T, inFeatures]` →
 * `[batch, T, outFeatures]` (every position through the same weights). The weights are
 * kept `[inFeatures, outFeatures]`, as the book keeps them (PyTorch's `Linear.weight` is
 * the transpose).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dense, Tensor } from "@chainrule/nn";
 *
 * const dense = new Dense(2, 1, { weights: [[1], [2]], biases: [0.5], dtype: "float64" });
 * const out = dense.forward(Tensor.from([[3, 4]], { dtype: "float64" }));
 * assert.deepEqual(out.toArray(), [[11.5]]);
 * ```
 */
export class Dense implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "Dense";
  /**
   * True: the next layer may write over the outputs of a training forward (backward reads the
   * inputs, never the outputs).
   */
  readonly outputsFree: boolean = true;
  /** Features per input sample. */
  readonly inFeatures: number;
  /** Features per output sample. */
  readonly outFeatures: number;
  /** `[inFeatures, outFeatures]` */
  readonly weights: Param;
  /** `[outFeatures]` */
  readonly biases: Param;
  /** Name of the initializer the weights were drawn with. */
  readonly init: string;
  /** L1/L2 penalties on weights and biases (0 = none). */
  readonly weightRegularizerL1: number;
  /** L2 penalty on the weights. */
  readonly weightRegularizerL2: number;
  /** L1 penalty on the biases. */
  readonly biasRegularizerL1: number;
  /** L2 penalty on the biases. */
  readonly biasRegularizerL2: number;
  #inputs?: Tensor; // [batch, inFeatures], cached by forward for backward
  #training = false; // whether the cached forward was a training one
  #outputs = new Scratch(); // [batch, outFeatures], reused by training forwards
  #dinputs = new Scratch(); // [batch, inFeatures], reused by backward after a training forward
  #gpuInputs?: GpuTensor; // [batch, …, inFeatures], cached by gpuForward for gpuBackward

  /** Creates the layer, drawing weights with `init` unless `weights` are given. */
  constructor(inFeatures: number, outFeatures: number, options: DenseOptions = {}) {
    checkDimension(inFeatures, "inFeatures");
    checkDimension(outFeatures, "outFeatures");
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.init = options.init ?? "he";
    const dtype = options.dtype ?? "float32";
    if (dtype !== "float32" && dtype !== "float64") {
      throw new TypeError(
        `new Dense: dtype must be "float32" or "float64", got ${describe(dtype)}`,
      );
    }
    checkAllocation("new Dense", dtype, {
      weights: [inFeatures, outFeatures],
      biases: [outFeatures],
    });
    this.weights = new Param("weights", Tensor.zeros([inFeatures, outFeatures], { dtype }));
    this.biases = new Param("biases", Tensor.zeros([outFeatures], { dtype }));
    const initializer = getInitializer(this.init, "new Dense");
    if (options.weights !== undefined) {
      fillExplicit(this.weights.value, options.weights, "weights", "new Dense");
    } else {
      // Drawn in float64 and rounded once as each is stored: no temporary of the layer's size.
      initializer(this.weights.value.data, inFeatures, outFeatures, resolveRandom(options));
    }
    if (options.biases !== undefined) {
      fillExplicit(this.biases.value, options.biases, "biases", "new Dense");
    }
    this.weightRegularizerL1 = checkPenalty(options, "weightRegularizerL1", "new Dense");
    this.weightRegularizerL2 = checkPenalty(options, "weightRegularizerL2", "new Dense");
    this.biasRegularizerL1 = checkPenalty(options, "biasRegularizerL1", "new Dense");
    this.biasRegularizerL2 = checkPenalty(options, "biasRegularizerL2", "new Dense");
  }

  /** Rebuilds a layer from {@linkcode Dense.config} (weights are drawn anew). */
  static fromConfig(config: JsonObject): Dense {
    const { inFeatures, outFeatures, ...options } = config as unknown as
      & { inFeatures: number; outFeatures: number }
      & DenseOptions;
    return new Dense(inFeatures, outFeatures, options);
  }

  /** Element type of the parameters. */
  get dtype(): DType {
    return this.weights.dtype;
  }

  /**
   * `inputs` [batch, …, inFeatures] → outputs [batch, …, outFeatures]. A training forward
   * reuses its output buffer (see `ForwardOptions`).
   */
  forward(inputs: Tensor, options?: ForwardOptions): Tensor {
    const batch = rowsOf(inputs, "Dense.forward", "inputs", this.inFeatures); // rows

    if (inputs.dtype !== this.dtype) {
      throw new TypeError(
        `Dense.forward: inputs are ${inputs.dtype}, the layer is ${this.dtype} (convert with tensor.clone({ dtype: "${this.dtype}" }))`,
      );
    }
    this.#inputs = inputs;
    this.#training = options?.training === true;
    const shape = [...inputs.shape.slice(0, -1), this.outFeatures];
    const outputs = this.#training // [batch, …, outFeatures]
      ? this.#outputs.get(this.dtype, shape, getBackend())
      : Tensor.zeros(shape, { dtype: this.dtype });
    const backend = getBackend();
    const x = inputs.data, w = this.weights.value.data, b = this.biases.value.data;
    if (backend.matmulBias) {
      backend.matmulBias(x, w, b, outputs.data, batch, this.inFeatures, this.outFeatures);
    } else {
      backend.matmul(x, w, outputs.data, batch, this.inFeatures, this.outFeatures);
      backend.addBias(outputs.data, b, batch, this.outFeatures);
    }
    return outputs;
  }

  // dinputs = dvalues·Wᵀ   dweights += inputsᵀ·dvalues   dbiases += Σ_batch dvalues
  /**
   * `dvalues` [batch, …, outFeatures] → dinputs [batch, …, inFeatures], left uncomputed when
   * `options.inputGradient` is false.
   */
  backward(dvalues: Tensor, options?: BackwardOptions): Tensor {
    const inputs = this.#inputs;
    if (!inputs) throw new Error("Dense.backward: call forward first");
    const batch = inputs.size / this.inFeatures; // rows
    const expected = [...inputs.shape.slice(0, -1), this.outFeatures];
    rowsOf(dvalues, "Dense.backward", "dvalues", this.outFeatures);
    if (
      dvalues.dtype !== this.dtype || dvalues.rank !== expected.length ||
      dvalues.shape.some((d, i) => d !== expected[i])
    ) {
      throw new TypeError(
        `Dense.backward: dvalues is ${dvalues.dtype} ${
          formatShape(dvalues.shape)
        }, expected ${this.dtype} ${formatShape(expected)} like the last forward's outputs`,
      );
    }
    const backend = getBackend();
    const { inFeatures, outFeatures } = this;
    backend.matmulTransA(
      inputs.data,
      dvalues.data,
      this.weights.grad.data,
      batch,
      inFeatures,
      outFeatures,
      true,
    );
    backend.sumColumns(dvalues.data, this.biases.grad.data, batch, outFeatures, true);
    addPenaltyGradient(this.weights, this.weightRegularizerL1, this.weightRegularizerL2);
    addPenaltyGradient(this.biases, this.biasRegularizerL1, this.biasRegularizerL2);
    const shape = inputs.shape;
    const dinputs = this.#training // [batch, …, inFeatures]
      ? this.#dinputs.get(this.dtype, shape, options?.inputGradient === false ? undefined : backend)
      : Tensor.zeros(shape, { dtype: this.dtype });
    if (options?.inputGradient === false) return dinputs;
    backend.matmulTransB(
      dvalues.data,
      this.weights.value.data,
      dinputs.data,
      batch,
      inFeatures,
      outFeatures,
    );
    return dinputs;
  }

  /** {@linkcode Dense.forward} on the device: `inputs` [batch, …, inFeatures] → [batch, …, outFeatures]. */
  gpuForward(ctx: GpuContext, inputs: GpuTensor): GpuTensor {
    const rows = inputs.size / this.inFeatures;
    const outputs = ctx.buffer(this, "outputs", [...inputs.shape.slice(0, -1), this.outFeatures]);
    const weights = ctx.param(this.weights).value, biases = ctx.param(this.biases).value;
    gpuMatmul(
      ctx,
      this,
      "forward",
      inputs,
      weights,
      outputs,
      rows,
      this.inFeatures,
      this.outFeatures,
      {
        bias: biases,
      },
    );
    this.#gpuInputs = inputs;
    return outputs;
  }

  // dinputs = dvalues·Wᵀ   dweights += inputsᵀ·dvalues   dbiases += Σ_batch dvalues
  /** {@linkcode Dense.backward} on the device: `dvalues` [batch, …, outFeatures] → dinputs. */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor, options?: GpuBackwardOptions): GpuTensor {
    const inputs = this.#gpuInputs;
    if (!inputs) throw new Error("Dense.gpuBackward: call gpuForward first");
    const { inFeatures, outFeatures } = this;
    const rows = inputs.size / inFeatures;
    const weights = ctx.param(this.weights), biases = ctx.param(this.biases);
    gpuMatmul(ctx, this, "dweights", inputs, dvalues, weights.grad, inFeatures, rows, outFeatures, {
      transA: true,
      accumulate: true,
    });
    gpuSumColumns(ctx, this, "dbiases", dvalues, biases.grad, rows, outFeatures, true);
    gpuAddPenaltyGradient(
      ctx,
      this,
      this.weights,
      this.weightRegularizerL1,
      this.weightRegularizerL2,
    );
    gpuAddPenaltyGradient(ctx, this, this.biases, this.biasRegularizerL1, this.biasRegularizerL2);
    const dinputs = ctx.buffer(this, "dinputs", inputs.shape);
    if (options?.inputGradient === false) return dinputs;
    gpuMatmul(
      ctx,
      this,
      "dinputs",
      dvalues,
      weights.value,
      dinputs,
      rows,
      outFeatures,
      inFeatures,
      {
        transB: true,
      },
    );
    return dinputs;
  }

  /** {@linkcode Dense.regularizationLoss} on the device, added to `sink`. */
  gpuRegularization(ctx: GpuContext, sink: GpuSink): void {
    gpuPenalty(ctx, this, this.weights, this.weightRegularizerL1, this.weightRegularizerL2, sink);
    gpuPenalty(ctx, this, this.biases, this.biasRegularizerL1, this.biasRegularizerL2, sink);
  }

  /** `[weights, biases]` */
  params(): Param[] {
    return [this.weights, this.biases];
  }

  /** PyTorch's `nn.Linear` names: `weight` (the transpose, `[out, in]`) and `bias`. */
  torchNames(): Record<string, TorchName> {
    return { weights: { torch: "weight", transpose: true }, biases: { torch: "bias" } };
  }

  /** The L1/L2 penalties of the current weights and biases. */
  regularizationLoss(): number {
    return penalty(this.weights, this.weightRegularizerL1, this.weightRegularizerL2) +
      penalty(this.biases, this.biasRegularizerL1, this.biasRegularizerL2);
  }

  /** Constructor arguments as JSON (without the weights, which are saved as tensors). */
  config(): JsonObject {
    const config: JsonObject = {
      inFeatures: this.inFeatures,
      outFeatures: this.outFeatures,
      init: this.init,
      dtype: this.dtype,
    };
    for (const key of REGULARIZERS) if (this[key] !== 0) config[key] = this[key];
    return config;
  }

  /** `Dense(in=2, out=64)` */
  toString(): string {
    const penalties = REGULARIZERS.filter((key) => this[key] !== 0).map((key) =>
      `, ${key}=${this[key]}`
    );
    return `Dense(in=${this.inFeatures}, out=${this.outFeatures}${penalties.join("")})`;
  }
}
