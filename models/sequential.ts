import { describe } from "../core/_describe.ts";
import { chainFromConfig } from "../catalog/builtins.ts";
import { createLayer } from "../catalog/registry.ts";
import { Chain, type TrainStepOptions } from "../core/chain.ts";
import type { JsonObject } from "../core/json.ts";
import type { Tensor, TensorLike } from "../core/tensor.ts";
import {
  decodeModel,
  type LoadModelOptions,
  modelToBytes,
  readModelFile,
  saveModel,
  type SaveModelOptions,
} from "../io/model_io.ts";
import { checkedData, type TargetsLike } from "../training/batches.ts";
import {
  evaluate,
  type EvaluateLogs,
  type EvaluateOptions,
  fit,
  type FitOptions,
} from "../training/fit.ts";
import { NonFiniteLossError } from "../training/callbacks/terminate_on_nan.ts";
import { History } from "../training/history.ts";
import { predict, type PredictOptions } from "../training/predict.ts";
import {
  evaluateAsync,
  type EvaluateAsyncOptions,
  fitAsync,
  type FitAsyncOptions,
  predictAsync,
  type PredictAsyncOptions,
} from "../training/fit_async.ts";

/**
 * A model: layers run in a chain (forward in order, backward in reverse), with what users
 * call on it: `fit`, `evaluate`, `predict`, `trainStep`, `save` and `load`.
 *
 * It never needs to know what the layers are: any `Layer`, built-in or third-party, fits.
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
export class Sequential extends Chain {
  /**
   * Rebuilds a model from {@linkcode Sequential.config}, each layer through the registry.
   *
   * @throws {TypeError} when `config.layers` is not an array of `{ kind, config }`.
   * @throws {RangeError} for a layer kind that is not registered.
   */
  static fromConfig(config: JsonObject): Sequential {
    return new Sequential(chainFromConfig(config, createLayer).layers);
  }

  #steps = 0; // trainStep calls that updated the weights, to name a failing one

  /**
   * One optimization step on one batch: forward, loss, backward, update.
   *
   * @returns the batch's mean data loss (before the update).
   * @throws {TypeError} for data of the wrong kind or sample counts that differ.
   * @throws {RangeError} for an empty `x` or a non-finite value in `x` or `y`.
   * @throws {NonFiniteLossError} when the loss or the penalty is NaN or ±Infinity, before
   * backward runs: the parameters and the optimizer's state are left as they were (a
   * BatchNorm's running statistics have seen the batch, as at every training forward).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import {
   *   Dense,
   *   NonFiniteLossError,
   *   Sequential,
   *   SGD,
   *   SoftmaxCrossEntropy,
   * } from "@chainrule/nn";
   *
   * // A step size of 1e30 sends the weights to infinity after one update; the next step
   * // sees a NaN loss and refuses to update them.
   * const model = new Sequential([new Dense(1, 2, { seed: 1 })]);
   * const step = { loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ learningRate: 1e30 }) };
   * model.trainStep([[1e19], [1e19]], [0, 1], step);
   * const before = [...model.params()[0].value.data];
   * assert.throws(() => model.trainStep([[1e19], [1e19]], [0, 1], step), NonFiniteLossError);
   * assert.deepEqual([...model.params()[0].value.data], before);
   * ```
   */
  trainStep(x: TensorLike, y: TargetsLike, options: TrainStepOptions): number {
    const where = "Sequential.trainStep";
    const data = checkedData(x, y, this.dtype, where);
    const step = this.#steps;
    const loss = this.trainBatch(data.inputs, data.y, options, (loss, penalty) => {
      if (Number.isFinite(loss) && Number.isFinite(penalty)) return;
      const [what, value] = Number.isFinite(loss)
        ? ["regularization loss", penalty]
        : ["loss", loss];
      throw new NonFiniteLossError(
        0,
        step,
        what,
        value,
        new History(),
        `${where}: the ${what} is ${describe(value)} at step ${step} (this model's ` +
          `trainStep calls, from 0); the weights were not updated${this.#divergedParam()} ` +
          "(a lower learning rate or scaled inputs usually cure this)",
      );
    }).loss;
    this.#steps = step + 1;
    return loss;
  }

  // ", but layer 0 (Dense(in=2, out=3)) already holds Infinity in its weights: an earlier
  // step diverged", or "" when every parameter is finite.
  #divergedParam(): string {
    for (let i = 0; i < this.layers.length; i++) {
      for (const param of this.layers[i].params()) {
        const bad = param.value.data.find((v) => v - v !== 0);
        if (bad === undefined) continue;
        return `, but layer ${i} (${this.layers[i]}) already holds ${bad} in its ${param.name}: ` +
          "an earlier step diverged";
      }
    }
    return "";
  }

  /**
   * Outputs for `x` at inference (no dropout), optionally a batch at a time.
   *
   * @throws {TypeError} when `x` is neither a tensor nor nested arrays of numbers.
   * @throws {RangeError} when `batchSize` is not a positive integer.
   */
  predict(x: TensorLike, options: PredictOptions = {}): Tensor {
    return predict(this, x, options);
  }

  /**
   * Mean loss and metrics on `x`, `y` at inference, optionally a batch at a time; see
   * {@linkcode EvaluateOptions}.
   */
  evaluate(x: TensorLike, y: TargetsLike, options: EvaluateOptions): EvaluateLogs {
    return evaluate(this, x, y, options);
  }

  /** Trains for `epochs` passes over the data; see {@linkcode FitOptions}. */
  fit(x: TensorLike, y: TargetsLike, options: FitOptions): History {
    return fit(this, x, y, options);
  }

  /**
   * Trains like `fit`, asynchronously, on the CPU (the default: `fit`'s results bit for bit,
   * yielding to the event loop between batches) or on the GPU with `device: "webgpu"`; see
   * {@linkcode FitAsyncOptions}. When it resolves, the params, buffers and optimizer state
   * hold the trained values, so `predict`, `save` and `fit` work as before.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Adam, Dense, ReLU, Sequential, SoftmaxCrossEntropy, spiralData, webgpuStatus } from "@chainrule/nn";
   *
   * const { x, y } = spiralData(50, 3);
   * const model = new Sequential([new Dense(2, 32, { seed: 1 }), new ReLU(), new Dense(32, 3, { seed: 2 })]);
   * const device = (await webgpuStatus()).available ? "webgpu" : "cpu";
   * const history = await model.fitAsync(x, y, {
   *   loss: new SoftmaxCrossEntropy(),
   *   optimizer: new Adam({ learningRate: 0.02 }),
   *   epochs: 50,
   *   batchSize: 50,
   *   device,
   * });
   * assert.ok(history.loss.at(-1)! < history.loss[0]);
   * ```
   */
  fitAsync(x: TensorLike, y: TargetsLike, options: FitAsyncOptions): Promise<History> {
    return fitAsync(this, x, y, options);
  }

  /** `evaluate`, asynchronously, on the CPU or (with `device: "webgpu"`) the GPU. */
  evaluateAsync(
    x: TensorLike,
    y: TargetsLike,
    options: EvaluateAsyncOptions,
  ): Promise<EvaluateLogs> {
    return evaluateAsync(this, x, y, options);
  }

  /** `predict`, asynchronously, on the CPU or (with `device: "webgpu"`) the GPU. */
  predictAsync(x: TensorLike, options: PredictAsyncOptions = {}): Promise<Tensor> {
    return predictAsync(this, x, options);
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
  static async load(path: string, options: LoadModelOptions = {}): Promise<Sequential> {
    return new Sequential((await readModelFile(path, options)).model.layers);
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
  static fromBytes(bytes: Uint8Array, options: LoadModelOptions = {}): Sequential {
    return new Sequential(decodeModel(bytes, "modelFromBytes", options).model.layers);
  }

  /** A table of the layers and their parameter counts, one line each. */
  summary(): string {
    const names = this.layers.map((layer) => layer.toString());
    const width = Math.max(40, ...names.map((name) => name.length));
    const lines = this.layers.map((layer, i) => {
      const count = layer.params().reduce((sum, p) => sum + p.value.size, 0);
      return `${String(i).padStart(3)}  ${names[i].padEnd(width)} ${count} params`;
    });
    const total = this.params().reduce((sum, p) => sum + p.value.size, 0);
    return [...lines, `total: ${total} params (${this.dtype})`].join("\n");
  }
}
