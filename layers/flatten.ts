import { expectLike, expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { formatShape, Tensor } from "../core/tensor.ts";
import type { GpuContext, GpuLayer, GpuTensor } from "../core/gpu.ts";

/**
 * Flattens every sample into a row, in row-major (C, H, W) order, as PyTorch's `Flatten`:
 * a `Dense` after it maps to PyTorch's `Linear` after `nn.Flatten()` (with the weights
 * transposed, as for every `Dense`). The outputs share the inputs' storage; nothing is
 * copied either way, on the GPU (the same buffer, reshaped) as on the CPU.
 *
 * Shapes: inputs `[batch, d1, d2, …]` → outputs `[batch, d1·d2·…]`; dvalues back to the
 * inputs' shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Flatten, Tensor } from "@chainrule/nn";
 *
 * const flatten = new Flatten();
 * const images = Tensor.from([[[[1, 2], [3, 4]], [[5, 6], [7, 8]]]]); // [1, 2, 2, 2]
 * assert.deepEqual(flatten.forward(images).toArray(), [[1, 2, 3, 4, 5, 6, 7, 8]]);
 * assert.deepEqual(flatten.backward(Tensor.zeros([1, 8])).shape, [1, 2, 2, 2]);
 * ```
 */
export class Flatten implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "Flatten";
  /**
   * True: the next layer may write over the outputs of a training forward (backward reads no
   * values: its outputs are a view of the inputs).
   */
  readonly outputsFree: boolean = true;
  #inputs?: Tensor; // kept for its shape
  #outputs?: Tensor; // kept to check dvalues, and reused while the inputs are the same tensor
  #dvalues?: Tensor; // the last dvalues and inputs, and
  #dvaluesInputs?: Tensor;
  #dinputs?: Tensor; // the view backward returned for them
  #gpuShape?: readonly number[]; // [N, …], the inputs' shape, cached by gpuForward

  /** Rebuilds the layer from its (empty) config. */
  static fromConfig(_config: JsonObject): Flatten {
    return new Flatten();
  }

  /**
   * `inputs` [N, …] → outputs [N, features], a view of the same storage.
   *
   * @throws {TypeError} for inputs with fewer than two dimensions.
   */
  forward(inputs: Tensor): Tensor {
    expectTensor(inputs, "Flatten.forward");
    if (inputs.rank < 2) {
      throw new TypeError(
        `Flatten.forward: inputs must have a batch axis and at least one more, [batch, …], got shape ${
          formatShape(inputs.shape)
        }`,
      );
    }
    if (inputs === this.#inputs) return this.#outputs!; // a training loop's reused buffer
    const batch = inputs.shape[0];
    const outputs = inputs.rank === 2
      ? inputs
      : new Tensor(inputs.data, [batch, batch === 0 ? 0 : inputs.size / batch]);
    this.#inputs = inputs;
    this.#outputs = outputs;
    return outputs;
  }

  /** `dvalues` [N, features] → dinputs [N, …], a view of the same storage. */
  backward(dvalues: Tensor): Tensor {
    expectLike(dvalues, this.#outputs, "Flatten.backward", "outputs");
    const inputs = this.#inputs!;
    if (inputs.rank === 2) return dvalues;
    if (dvalues !== this.#dvalues || inputs !== this.#dvaluesInputs) {
      this.#dvalues = dvalues;
      this.#dvaluesInputs = inputs;
      this.#dinputs = new Tensor(dvalues.data, inputs.shape);
    }
    return this.#dinputs!;
  }

  /**
   * {@linkcode Flatten.forward} on the device: the same buffer, shaped [N, features].
   *
   * @throws {TypeError} for inputs with fewer than two dimensions.
   */
  gpuForward(_ctx: GpuContext, inputs: GpuTensor): GpuTensor {
    const shape = inputs.shape;
    if (shape.length < 2) {
      throw new TypeError(
        `Flatten.gpuForward: inputs must have a batch axis and at least one more, [batch, …], got shape ${
          formatShape(shape)
        }`,
      );
    }
    this.#gpuShape = shape;
    if (shape.length === 2) return inputs;
    const batch = shape[0], { buffer, size, dtype } = inputs;
    return { buffer, shape: [batch, batch === 0 ? 0 : size / batch], size, dtype };
  }

  // dinputs = dvalues, shaped as the inputs
  /**
   * {@linkcode Flatten.backward} on the device: the same buffer, shaped as the inputs.
   *
   * @throws {TypeError} when `dvalues` does not hold as many elements as the inputs.
   */
  gpuBackward(_ctx: GpuContext, dvalues: GpuTensor): GpuTensor {
    const shape = this.#gpuShape;
    if (!shape) throw new Error("Flatten.gpuBackward: call gpuForward first");
    const { buffer, size, dtype } = dvalues;
    if (size !== shape.reduce((product, d) => product * d, 1)) {
      throw new TypeError(
        `Flatten.gpuBackward: dvalues of shape ${formatShape(dvalues.shape)} do not hold the ${
          formatShape(shape)
        } inputs' elements`,
      );
    }
    return shape.length === 2 ? dvalues : { buffer, shape, size, dtype };
  }

  /** None: flattening has no parameters. */
  params(): Param[] {
    return [];
  }

  /** `{}` */
  config(): JsonObject {
    return {};
  }

  /** `Flatten()` */
  toString(): string {
    return "Flatten()";
  }
}
