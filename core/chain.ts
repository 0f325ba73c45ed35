import { describe, describeKind } from "./_describe.ts";
import type { JsonObject } from "./json.ts";
import type { BackwardOptions, ForwardOptions, Layer, StateTensor } from "./layer.ts";
import type { Loss, Targets } from "./loss.ts";
import type { Optimizer } from "./optimizer.ts";
import type { Param } from "./param.ts";
import { rowGroupsOf } from "./row_groups.ts";
import type { DType, Tensor } from "./tensor.ts";
import type {
  GpuBackwardOptions,
  GpuContext,
  GpuForwardOptions,
  GpuLayer,
  GpuSink,
  GpuTensor,
} from "./gpu.ts";

// The layer's GPU side, or a TypeError naming its kind and index.
function gpuSide(layer: Layer, index: number, where: string): Layer & GpuLayer {
  const gpu = layer as Layer & Partial<GpuLayer>;
  if (typeof gpu.gpuForward !== "function" || typeof gpu.gpuBackward !== "function") {
    throw new TypeError(
      `${where}: layer ${index} (${layer.kind}) has no GPU side (gpuForward and gpuBackward); ` +
        `train this model with device "cpu"`,
    );
  }
  return gpu as Layer & GpuLayer;
}

// The options of a layer's backward inside the chain, by [groupSums][reuseDvalues].
const INNER_OPTIONS: readonly (readonly BackwardOptions[])[] = [false, true].map((groupSums) =>
  [false, true].map((reuseDvalues) => Object.freeze({ groupSums, reuseDvalues }))
);

const TRAIN_BACKWARD: BackwardOptions = Object.freeze({
  inputGradient: false,
  reuseDvalues: true,
});

// Whether two tensors share bytes (a layer returned a view of its dvalues: Flatten).
function overlap(a: Tensor, b: Tensor): boolean {
  const x = a.data, y = b.data;
  return x.buffer === y.buffer && x.byteOffset < y.byteOffset + y.byteLength &&
    y.byteOffset < x.byteOffset + x.byteLength;
}

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
  /** Outputs of the training forward pass `[batch, …]`, valid until the next step. */
  outputs: Tensor;
}

/**
 * The runner: forward through the layers in order, backward from the loss through them in
 * reverse, one optimizer step. It never needs to know what the layers are.
 *
 * `Sequential` extends it with what users call (`fit`, `evaluate`, `predict`, `save`); the
 * training loop and the file formats take a `Chain`, so they sit above the core without the
 * core knowing them. A nested model rebuilt from a file is a `Chain`: it runs exactly as the
 * `Sequential` that was saved.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Chain, Dense, ReLU, SGD, SoftmaxCrossEntropy, Tensor } from "@chainrule/nn";
 *
 * const chain = new Chain([new Dense(2, 4, { seed: 1 }), new ReLU(), new Dense(4, 2, { seed: 2 })]);
 * const x = Tensor.from([[0, 1], [1, 0]]);
 * const step = { loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ learningRate: 0.5 }) };
 * const first = chain.trainBatch(x, [0, 1], step).loss;
 * for (let i = 0; i < 20; i++) chain.trainBatch(x, [0, 1], step);
 * assert.ok(chain.trainBatch(x, [0, 1], step).loss < first);
 * ```
 */
export class Chain implements Layer, GpuLayer {
  /** Registry name: a chain saves and loads as the `Sequential` users build. */
  readonly kind: string = "Sequential";
  /** True: a chain passes `reuseInputs` and `reuseDvalues` on only where they hold. */
  readonly writesInPlace: boolean = true;
  /** The layers, in forward order. */
  readonly layers: Layer[];

  /**
   * Chains `layers` in order.
   *
   * @throws {TypeError} when `layers` is not an array of layers.
   */
  constructor(layers: Layer[]) {
    const where = `new ${new.target.name}`;
    if (!Array.isArray(layers)) {
      throw new TypeError(
        `${where}: layers must be an array of layers, got ${describeKind(layers)}`,
      );
    }
    layers.forEach((layer, i) => {
      if (!layer || typeof layer.forward !== "function" || typeof layer.backward !== "function") {
        throw new TypeError(
          `${where}: layers[${i}] does not implement Layer (forward and backward), got ${
            describe(layer)
          }`,
        );
      }
    });
    this.layers = [...layers];
  }

  /** Element type of the parameters (float32 for a model without any). */
  get dtype(): DType {
    return this.params()[0]?.dtype ?? "float32";
  }

  // Per layer index: whether the last forward gave it inputs that the layer before made and
  // tagged with row groups, so that its backward may hand that layer group sums.
  #groupedInputs: boolean[] = [];

  /** Runs every layer's forward in order. */
  forward(inputs: Tensor, options: ForwardOptions = {}): Tensor {
    const layers = this.layers, grouped = this.#groupedInputs;
    const training = options.training === true, given = options.reuseInputs === true;
    let outputs = inputs;
    let reusable = training && given;
    for (let i = 0; i < layers.length; i++) {
      const before = outputs;
      // Offered only to a layer that knows the option (not to one that would pass it on).
      const offer = reusable && layers[i].writesInPlace === true;
      const inner = offer === given ? options : { ...options, reuseInputs: offer };
      outputs = layers[i].forward(outputs, inner);
      grouped[i + 1] = outputs !== before && rowGroupsOf(outputs) !== undefined;
      // The next layer may write over outputs this layer never reads back, when they are its
      // own (not a view of its inputs, unless those could be written over too).
      reusable = training && layers[i].outputsFree === true &&
        (reusable || !overlap(outputs, before));
    }
    return outputs;
  }

  /**
   * Runs every layer's backward in reverse order, starting from d(loss)/d(outputs);
   * `options` reach the first layer (the one that computes d(loss)/d(inputs)). A layer
   * whose inputs the layer before made with row groups is asked for group sums
   * (`BackwardOptions.groupSums`). A gradient that a layer returned reaches the layer
   * before with `reuseDvalues` (nothing else reads it), the caller's dvalues only when the
   * caller says so.
   */
  backward(dvalues: Tensor, options?: BackwardOptions): Tensor {
    const layers = this.layers, grouped = this.#groupedInputs;
    let d = dvalues;
    // A layer's own buffer may be reused; a view of its dvalues, only as far as they may be.
    let reusable = options?.reuseDvalues === true;
    for (let i = layers.length - 1; i > 0; i--) {
      const offer = reusable && layers[i].writesInPlace === true;
      const next = layers[i].backward(d, INNER_OPTIONS[grouped[i] ? 1 : 0][offer ? 1 : 0]);
      reusable ||= !overlap(next, d);
      d = next;
    }
    if (layers.length === 0) return d;
    const offer = reusable && layers[0].writesInPlace === true;
    const granted = offer === (options?.reuseDvalues === true);
    return layers[0].backward(d, granted ? options : { ...options, reuseDvalues: offer });
  }

  /**
   * Throws a TypeError naming the first layer (by kind and index, nested models included)
   * that has no GPU side, so that a GPU fit is refused before it starts.
   */
  checkGpu(where: string): void {
    this.layers.forEach((layer, i) => {
      gpuSide(layer, i, where);
      const inner = layer as Partial<Chain>;
      if (typeof inner.checkGpu === "function") inner.checkGpu(`${where}: in layer ${i}`);
    });
  }

  /** {@linkcode Chain.forward} on the device: every layer's `gpuForward` in order. */
  gpuForward(ctx: GpuContext, inputs: GpuTensor, options?: GpuForwardOptions): GpuTensor {
    let outputs = inputs;
    this.layers.forEach((layer, i) => {
      outputs = gpuSide(layer, i, `${this.kind}.gpuForward`).gpuForward(ctx, outputs, options);
    });
    return outputs;
  }

  /** {@linkcode Chain.backward} on the device: every layer's `gpuBackward` in reverse. */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor, options?: GpuBackwardOptions): GpuTensor {
    let d = dvalues;
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const layer = gpuSide(this.layers[i], i, `${this.kind}.gpuBackward`);
      d = layer.gpuBackward(ctx, d, i === 0 ? options : undefined);
    }
    return d;
  }

  /** Its first layer's CPU check of the inputs of a GPU run (see `GpuLayer.gpuCheckInputs`). */
  gpuCheckInputs(inputs: Tensor, where: string): void {
    (this.layers[0] as Partial<GpuLayer> | undefined)?.gpuCheckInputs?.(inputs, where);
  }

  /** Every layer's penalty on the device, added to `sink`. */
  gpuRegularization(ctx: GpuContext, sink: GpuSink): void {
    for (const layer of this.layers) (layer as Partial<GpuLayer>).gpuRegularization?.(ctx, sink);
  }

  /** Every layer's parameters, in layer order. */
  params(): Param[] {
    return this.layers.flatMap((layer) => layer.params());
  }

  /** Every layer's state tensors (see `Layer.buffers`), in layer order. */
  buffers(): StateTensor[] {
    return this.layers.flatMap((layer) => layer.buffers?.() ?? []);
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
   * One optimization step on one batch, for tensors already checked: forward, loss,
   * backward, update.
   *
   * `beforeUpdate`, when given, sees the loss and the penalty first; what it throws stops
   * the step before backward and the optimizer run (`trainStep` refuses a non-finite loss
   * this way).
   *
   * @returns the mean data loss, the regularization penalty (both before the update) and
   * the outputs of the forward pass.
   */
  trainBatch(
    inputs: Tensor,
    y: Targets,
    options: TrainStepOptions,
    beforeUpdate?: (loss: number, regularizationLoss: number) => void,
  ): BatchResult {
    const params = this.params();
    for (const param of params) param.zeroGrad();
    const outputs = this.forward(inputs, { training: true });
    const loss = options.loss.forward(outputs, y);
    const regularizationLoss = this.regularizationLoss();
    beforeUpdate?.(loss, regularizationLoss);
    // Nobody reads d(loss)/d(inputs) of the data, so the first layer may skip it; nor the
    // loss's gradient once the last layer has it.
    this.backward(options.loss.backward(), TRAIN_BACKWARD);
    options.optimizer.step(params);
    return { loss, regularizationLoss, outputs };
  }

  /** `{ layers: [{ kind, config }, …] }` */
  config(): JsonObject {
    return { layers: this.layers.map((layer) => ({ kind: layer.kind, config: layer.config() })) };
  }

  /** `Sequential(Dense(in=2, out=64) → ReLU() → Dense(in=64, out=3))` */
  toString(): string {
    return `${this.kind}(${this.layers.map((layer) => layer.toString()).join(" → ")})`;
  }
}
