import type { JsonObject } from "./json.ts";
import type { Param } from "./param.ts";
import type { Tensor } from "./tensor.ts";

/**
 * Options of a forward pass.
 *
 * In training, layers may reuse their buffers from one step to the next: a tensor returned
 * by a training forward, or by `backward`, is valid until that layer's next training
 * forward or backward. Its data may be a view of the backend's shared memory (the wasm
 * backend's, for large buffers): `data.slice()` copies it out. Inference (training false or
 * absent) always returns fresh tensors of their own.
 */
export interface ForwardOptions {
  /** True while training (dropout drops, buffers are reused); false or absent at inference. */
  training?: boolean;
  /**
   * True in training when nothing but this layer reads `inputs` after the call: `Chain`
   * passes it, to a layer that says it knows it (`Layer.writesInPlace`), for outputs that
   * the layer before returned and does not read back (`Layer.outputsFree`), never for its
   * caller's inputs unless the caller passed it. An elementwise layer may then write its
   * outputs over its inputs and return that tensor (`ReLU`). A layer that passes these
   * options to inner layers and reads its inputs after them (`Residual`) clears it. False
   * when omitted.
   */
  reuseInputs?: boolean;
}

/** Options of a backward pass. */
export interface BackwardOptions {
  /**
   * False when the caller discards d(loss)/d(inputs), as a model does for its first layer
   * in training: a layer may then skip computing it and return a tensor of the inputs'
   * shape whose values are unspecified. True when omitted.
   */
  inputGradient?: boolean;
  /**
   * True when the caller takes d(loss)/d(inputs) summed over each group of equal input rows,
   * where the inputs carried a `RowGroups` tag: a layer may then return those sums,
   * `[count, features]`, tagged by `markGroupSums`, in place of d(inputs). `Chain` asks it of
   * a layer whose inputs the layer before tagged, which then takes the sums (an `Embedding`
   * adds them to its rows without a d(inputs) of every position). A layer that passes these
   * options to inner layers and then uses their d(inputs) itself (`Residual`) clears it.
   */
  groupSums?: boolean;
  /**
   * True when nothing reads `dvalues` after this call: a container passes it, to a layer
   * that says it knows it (`Layer.writesInPlace`), for a gradient that one of its own layers
   * returned (or that its caller gave up the same way), so that an elementwise layer may
   * write d(loss)/d(inputs) over dvalues and return a tensor of it instead of filling a
   * buffer of its own (`ReLU`). A layer that passes these options to inner layers and then
   * reads dvalues itself (`Residual`) clears it. False when omitted.
   */
  reuseDvalues?: boolean;
}

/** A named tensor of model state that is not trained: saved, loaded and restored with the params. */
export interface StateTensor {
  /** Its name inside the layer, e.g. `"runningMean"`. */
  readonly name: string;
  /** Its values, updated in place by the layer (never by an optimizer). */
  readonly value: Tensor;
}

/**
 * How a PyTorch state dict names and lays out one of a layer's params or buffers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dense } from "@chainrule/nn";
 *
 * const names = new Dense(2, 3).torchNames();
 * assert.deepEqual(names.weights, { torch: "weight", transpose: true });
 * ```
 */
export interface TorchName {
  /** PyTorch's name under the layer's prefix: `"weight"`, `"out_proj.bias"`. */
  readonly torch: string;
  /** True for a 2-D tensor kept `[in, out]` here and `[out, in]` by PyTorch. */
  readonly transpose?: boolean;
}

/**
 * The contract every layer implements; the runner needs nothing else.
 *
 * `forward` caches what `backward` needs. `backward(dvalues)` takes d(loss)/d(outputs),
 * returns d(loss)/d(inputs) and adds (`+=`) d(loss)/d(param) into each param's `grad`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Layer, type Param, Sequential, Tensor } from "@chainrule/nn";
 *
 * // A third-party layer: doubles its inputs.
 * class Double implements Layer {
 *   readonly kind = "Double";
 *   forward(inputs: Tensor): Tensor {
 *     return new Tensor(inputs.data.map((v) => 2 * v), inputs.shape);
 *   }
 *   backward(dvalues: Tensor): Tensor {
 *     return new Tensor(dvalues.data.map((v) => 2 * v), dvalues.shape);
 *   }
 *   params(): Param[] {
 *     return [];
 *   }
 *   config(): Record<string, never> {
 *     return {};
 *   }
 *   toString(): string {
 *     return "Double()";
 *   }
 * }
 * const model = new Sequential([new Double()]);
 * assert.deepEqual(model.predict([[1, 2]]).toArray(), [[2, 4]]);
 * ```
 */
export interface Layer {
  /** The registry name of this plugin, e.g. `"Dense"`. */
  readonly kind: string;
  /** Computes outputs from inputs, caching what `backward` needs. */
  forward(inputs: Tensor, options?: ForwardOptions): Tensor;
  /** Takes d(loss)/d(outputs); returns d(loss)/d(inputs); accumulates param gradients. */
  backward(dvalues: Tensor, options?: BackwardOptions): Tensor;
  /** The trainable parameters (empty for activations). */
  params(): Param[];
  /** The constructor arguments as JSON, enough to rebuild the layer through the registry. */
  config(): JsonObject;
  /** A one-line summary, e.g. `Dense(in=2, out=64)`. */
  toString(): string;
  /** The penalty this layer adds to the loss (L1/L2 regularization); 0 when absent. */
  regularizationLoss?(): number;
  /**
   * State that is not trained but belongs to the model (BatchNorm's running statistics):
   * saved and loaded with the params, restored by `EarlyStopping`, never seen by optimizers.
   */
  buffers?(): StateTensor[];
  /**
   * PyTorch's names for this layer's params and buffers, keyed by their names here
   * (`{ weights: { torch: "weight", transpose: true }, biases: { torch: "bias" } }`), so
   * that `toTorchStateDict` and `loadTorchStateDict` can move its weights to and from the
   * PyTorch module of the same function. Absent: the layer has no PyTorch counterpart.
   */
  torchNames?(): Readonly<Record<string, TorchName>>;
  /**
   * The fewest samples a training batch must hold (BatchNorm: 2, to compute a variance); 1
   * when absent. `fit` reads it, through nested models too, to merge an epoch's last batch
   * into the one before when it would be smaller (see `FitOptions.dropRemainder`).
   */
  readonly minTrainingBatch?: number;
  /**
   * True when `backward` never reads the outputs of the last training forward (nor its
   * inputs, where the outputs are a view of them): the layer after it may then write over
   * them (`ForwardOptions.reuseInputs`). Absent: they may be read back.
   */
  readonly outputsFree?: boolean;
  /**
   * True when the layer knows `ForwardOptions.reuseInputs` and `BackwardOptions.reuseDvalues`:
   * it may write its results over its inputs or dvalues, and passes the options to inner
   * layers only where they hold. A container offers them only to such a layer, so that one
   * written without them, which hands its options to inner layers and reads its inputs
   * after them, never has them. Absent: never offered.
   */
  readonly writesInPlace?: boolean;
}
