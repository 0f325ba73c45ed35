import {
  loadModel,
  modelFromBytes,
  modelToBytes,
  saveModel,
  type SaveModelOptions,
} from "../io/model_io.ts";
import { evaluate, type EvaluateLogs, type EvaluateOptions, fit, type FitOptions } from "./fit.ts";
import type { History } from "./history.ts";
import type { JsonObject } from "./json.ts";
import type { BackwardOptions, ForwardOptions, Layer } from "./layer.ts";
import type { Loss, Targets } from "./loss.ts";
import type { Optimizer } from "./optimizer.ts";
import type { Param } from "./param.ts";
import { createLayer } from "./registry.ts";
import { checkSampleCounts, takeRows } from "./targets.ts";
import { type DType, Tensor, type TensorLike, toTensor } from "./tensor.ts";

/** What one training step needs besides the data. */
export interface TrainStepOptions {
  /** The loss to minimize. */
  loss: Loss;
  /** The optimizer that applies the gradients. */
  optimizer: Optimizer;
}

/** What one training step measured. */
export interface BatchResult {
  /** Mean data loss of the batch. */
  loss: number;
  /** Sum of the layers' penalties (0 without regularization). */
  regularizationLoss: number;
  /** Outputs of the training forward pass `[batch, outputs]`, valid until the next step. */
  outputs: Tensor;
}

/** Options of {@linkcode Sequential.predict}. */
export interface PredictOptions {
  /** Samples per forward pass; all at once when omitted. */
  batchSize?: number;
}

/**
 * Runs layers in a chain: forward through them in order, backward from the loss through
 * them in reverse. It never needs to know what the layers are.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Adam, Dense, ReLU, Sequential, SoftmaxCrossEntropy } from "@chainrule/nn";
 *
 * const model = new Sequential([new Dense(2, 8, { seed: 1 }), new ReLU(), new Dense(8, 2, { seed: 2 })]);
 * const x = [[0, 0], [0, 1], [1, 0], [1, 1]];
 * const y = [0, 1, 1, 0];
 * const history = model.fit(x, y, {
 *   loss: new SoftmaxCrossEntropy(),
 *   optimizer: new Adam({ learningRate: 0.05 }),
 *   epochs: 300,
 * });
 * assert.equal(history.accuracy.at(-1), 1);
 * ```
 */
export class Sequential implements Layer {
  /** Registry name. */
  readonly kind = "Sequential";
  /** The layers, in forward order. */
  readonly layers: Layer[];

  /** Chains `layers` in order. */
  constructor(layers: Layer[]) {
    if (!Array.isArray(layers)) {
      throw new TypeError(
        `new Sequential: layers must be an array of layers, got ${typeof layers}`,
      );
    }
    layers.forEach((layer, i) => {
      if (!layer || typeof layer.forward !== "function" || typeof layer.backward !== "function") {
        throw new TypeError(
          `new Sequential: layers[${i}] does not implement Layer (forward and backward), got ${layer}`,
        );
      }
    });
    this.layers = [...layers];
  }

  /** Rebuilds a model from {@linkcode Sequential.config}, each layer through the registry. */
  static fromConfig(config: JsonObject): Sequential {
    const specs = config.layers;
    if (!Array.isArray(specs)) {
      throw new TypeError(
        "Sequential.fromConfig: config.layers must be an array of { kind, config }",
      );
    }
    return new Sequential(specs.map((spec, i) => {
      const { kind, config: layerConfig } = (spec ?? {}) as { kind?: unknown; config?: unknown };
      if (typeof kind !== "string") {
        throw new TypeError(
          `Sequential.fromConfig: layers[${i}].kind must be a string, got ${kind}`,
        );
      }
      return createLayer(kind, (layerConfig ?? {}) as JsonObject);
    }));
  }

  /** Element type of the parameters (float32 for a model without any). */
  get dtype(): DType {
    return this.params()[0]?.dtype ?? "float32";
  }

  /** Runs every layer's forward in order. */
  forward(inputs: Tensor, options: ForwardOptions = {}): Tensor {
    let outputs = inputs;
    for (const layer of this.layers) outputs = layer.forward(outputs, options);
    return outputs;
  }

  /**
   * Runs every layer's backward in reverse order, starting from d(loss)/d(outputs);
   * `options` reach the first layer (the one that computes d(loss)/d(inputs)).
   */
  backward(dvalues: Tensor, options?: BackwardOptions): Tensor {
    let d = dvalues;
    for (let i = this.layers.length - 1; i > 0; i--) d = this.layers[i].backward(d);
    return this.layers.length > 0 ? this.layers[0].backward(d, options) : d;
  }

  /** Every layer's parameters, in layer order. */
  params(): Param[] {
    return this.layers.flatMap((layer) => layer.params());
  }

  /** Clears every parameter's gradient. */
  zeroGrad(): void {
    for (const param of this.params()) param.zeroGrad();
  }

  /** The sum of the layers' regularization penalties. */
  regularizationLoss(): number {
    let total = 0;
    for (const layer of this.layers) total += layer.regularizationLoss?.() ?? 0;
    return total;
  }

  /**
   * One optimization step on one batch: forward, loss, backward, update.
   *
   * @returns the batch's mean data loss (before the update).
   */
  trainStep(x: TensorLike, y: Targets, options: TrainStepOptions): number {
    const inputs = toTensor(x, this.dtype);
    checkSampleCounts(inputs, y, "Sequential.trainStep");
    return this.trainBatch(inputs, y, options).loss;
  }

  /**
   * The step behind {@linkcode Sequential.trainStep} and `fit`, for tensors already checked.
   *
   * @returns the mean data loss, the regularization penalty (both before the update) and
   * the outputs of the forward pass.
   */
  trainBatch(inputs: Tensor, y: Targets, options: TrainStepOptions): BatchResult {
    const params = this.params();
    for (const param of params) param.zeroGrad();
    const outputs = this.forward(inputs, { training: true });
    const loss = options.loss.forward(outputs, y);
    const regularizationLoss = this.regularizationLoss();
    // Nobody reads d(loss)/d(inputs) of the data, so the first layer may skip it.
    this.backward(options.loss.backward(), { inputGradient: false });
    options.optimizer.step(params);
    return { loss, regularizationLoss, outputs };
  }

  /**
   * Outputs for `x` at inference (no dropout), optionally a batch at a time.
   *
   * @throws {RangeError} when `batchSize` is not a positive integer.
   */
  predict(x: TensorLike, options: PredictOptions = {}): Tensor {
    const inputs = toTensor(x, this.dtype);
    const samples = inputs.shape[0] ?? 0;
    const batchSize = options.batchSize ?? samples;
    if (options.batchSize !== undefined && (!Number.isSafeInteger(batchSize) || batchSize <= 0)) {
      throw new RangeError(
        `Sequential.predict: batchSize must be a positive integer, got ${options.batchSize}`,
      );
    }
    if (batchSize >= samples) return this.forward(inputs, { training: false });
    let out: Tensor | undefined;
    for (let start = 0; start < samples; start += batchSize) {
      const rows = Array.from(
        { length: Math.min(batchSize, samples - start) },
        (_, i) => start + i,
      );
      // Copied at once: a layer may reuse its output buffer on the next forward.
      const part = this.forward(takeRows(inputs, rows), { training: false });
      out ??= Tensor.zeros([samples, ...part.shape.slice(1)], { dtype: part.dtype });
      out.data.set(part.data, start * (part.size / part.shape[0]));
    }
    return out!;
  }

  /**
   * Mean loss and metrics on `x`, `y` at inference, optionally a batch at a time; see
   * {@linkcode EvaluateOptions}.
   */
  evaluate(x: TensorLike, y: Targets, options: EvaluateOptions): EvaluateLogs {
    return evaluate(this, x, y, options);
  }

  /** Trains for `epochs` passes over the data; see {@linkcode FitOptions}. */
  fit(x: TensorLike, y: Targets, options: FitOptions): History {
    return fit(this, x, y, options);
  }

  /** `{ layers: [{ kind, config }, …] }` */
  config(): JsonObject {
    return { layers: this.layers.map((layer) => ({ kind: layer.kind, config: layer.config() })) };
  }

  /**
   * Saves the architecture and parameters (and with `{ optimizer }` its state) as a
   * safetensors file, atomically; see `saveModel`. Needs `--allow-read --allow-write`.
   */
  save(path: string, options: SaveModelOptions = {}): Promise<void> {
    return saveModel(this, path, options);
  }

  /** The model as safetensors bytes, without file access; see `modelToBytes`. */
  toBytes(options: SaveModelOptions = {}): Uint8Array {
    return modelToBytes(this, options);
  }

  /**
   * Loads a model saved with {@linkcode Sequential.save}, rebuilding its layers through the
   * registry; `loadModel` also gives back a saved optimizer. Needs `--allow-read`.
   */
  static async load(path: string): Promise<Sequential> {
    return (await loadModel(path)).model;
  }

  /**
   * Rebuilds a model from {@linkcode Sequential.toBytes}'s bytes; see `modelFromBytes`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Dense, Sequential } from "@chainrule/nn";
   *
   * const model = new Sequential([new Dense(3, 2, { seed: 7 })]);
   * const copy = Sequential.fromBytes(model.toBytes());
   * assert.deepEqual(copy.predict([[1, 2, 3]]).data, model.predict([[1, 2, 3]]).data);
   * ```
   */
  static fromBytes(bytes: Uint8Array): Sequential {
    return modelFromBytes(bytes).model;
  }

  /** `Sequential(Dense(in=2, out=64) → ReLU() → Dense(in=64, out=3))` */
  toString(): string {
    return `Sequential(${this.layers.map((layer) => layer.toString()).join(" → ")})`;
  }

  /** A table of the layers and their parameter counts, one line each. */
  summary(): string {
    const lines = this.layers.map((layer, i) => {
      const count = layer.params().reduce((sum, p) => sum + p.value.size, 0);
      return `${String(i).padStart(3)}  ${layer.toString().padEnd(40)} ${count} params`;
    });
    const total = this.params().reduce((sum, p) => sum + p.value.size, 0);
    return [...lines, `total: ${total} params (${this.dtype})`].join("\n");
  }
}
