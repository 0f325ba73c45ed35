import { expectLike, expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import type { Tensor } from "../core/tensor.ts";
import type { GpuContext, GpuLayer, GpuTensor } from "../core/gpu.ts";

/**
 * The identity, `outputs = inputs`: the book's `Activation_Linear`, the output of a
 * regression model, kept as a layer so that a model reads as the book draws it.
 *
 * Forward and backward return their argument itself, without copying, on the CPU and on the
 * GPU alike.
 *
 * Shapes: any → the same shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Linear, Tensor } from "@chainrule/nn";
 *
 * const linear = new Linear();
 * assert.deepEqual(linear.forward(Tensor.from([[-2, 3]])).toArray(), [[-2, 3]]);
 * assert.deepEqual(linear.backward(Tensor.from([[4, 5]])).toArray(), [[4, 5]]);
 * ```
 */
export class Linear implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "Linear";
  #inputs?: Tensor; // kept only to check the shape of dvalues

  /** Rebuilds the layer from its (empty) config. */
  static fromConfig(_config: JsonObject): Linear {
    return new Linear();
  }

  /** `inputs` [...] → the same tensor */
  forward(inputs: Tensor): Tensor {
    expectTensor(inputs, "Linear.forward");
    this.#inputs = inputs;
    return inputs;
  }

  // dinputs = dvalues (the derivative of the identity is 1)
  /** `dvalues` [...] → the same tensor */
  backward(dvalues: Tensor): Tensor {
    expectLike(dvalues, this.#inputs, "Linear.backward");
    return dvalues;
  }

  /** {@linkcode Linear.forward} on the device: `inputs` itself. */
  gpuForward(_ctx: GpuContext, inputs: GpuTensor): GpuTensor {
    return inputs;
  }

  // dinputs = dvalues
  /** {@linkcode Linear.backward} on the device: `dvalues` itself. */
  gpuBackward(_ctx: GpuContext, dvalues: GpuTensor): GpuTensor {
    return dvalues;
  }

  /** None: the identity has no parameters. */
  params(): Param[] {
    return [];
  }

  /** `{}` */
  config(): JsonObject {
    return {};
  }

  /** `Linear()` */
  toString(): string {
    return "Linear()";
  }
}
