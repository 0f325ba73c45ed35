import { expectLike, expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { formatShape, Tensor } from "../core/tensor.ts";

/**
 * Flattens every sample into a row, in row-major (C, H, W) order, as PyTorch's `Flatten`:
 * a `Dense` after it maps to PyTorch's `Linear` after `nn.Flatten()` (with the weights
 * transposed, as for every `Dense`). The outputs share the inputs' storage; nothing is
 * copied either way.
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
export class Flatten implements Layer {
  /** Registry name. */
  readonly kind = "Flatten";
  #inputs?: Tensor; // kept for its shape
  #outputs?: Tensor; // kept to check dvalues, and reused while the inputs are the same tensor
  #dvalues?: Tensor; // the last dvalues and inputs, and
  #dvaluesInputs?: Tensor;
  #dinputs?: Tensor; // the view backward returned for them

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
