import { expectLike, expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { allocate, Tensor } from "../core/tensor.ts";

/**
 * Rectified linear unit: `outputs = max(0, inputs)`, element-wise.
 *
 * Shapes: any → the same shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ReLU, Tensor } from "@chainrule/nn";
 *
 * const relu = new ReLU();
 * assert.deepEqual(relu.forward(Tensor.from([[-1, 2]])).toArray(), [[0, 2]]);
 * assert.deepEqual(relu.backward(Tensor.from([[5, 5]])).toArray(), [[0, 5]]);
 * ```
 */
export class ReLU implements Layer {
  /** Registry name. */
  readonly kind = "ReLU";
  #inputs?: Tensor; // same shape as outputs, cached by forward for backward

  /** Rebuilds the layer from its (empty) config. */
  static fromConfig(_config: JsonObject): ReLU {
    return new ReLU();
  }

  /** `inputs` [...] → outputs [...] */
  forward(inputs: Tensor): Tensor {
    expectTensor(inputs, "ReLU.forward");
    this.#inputs = inputs;
    const x = inputs.data;
    const outputs = allocate(inputs.dtype, x.length);
    for (let i = 0; i < x.length; i++) outputs[i] = x[i] > 0 ? x[i] : 0;
    return new Tensor(outputs, inputs.shape);
  }

  // dinputs = dvalues where inputs > 0, else 0 (the book's choice at the kink)
  /** `dvalues` [...] → dinputs [...] */
  backward(dvalues: Tensor): Tensor {
    const inputs = expectLike(dvalues, this.#inputs, "ReLU.backward");
    const x = inputs.data;
    const dv = dvalues.data;
    const dinputs = allocate(inputs.dtype, x.length);
    for (let i = 0; i < x.length; i++) dinputs[i] = x[i] > 0 ? dv[i] : 0;
    return new Tensor(dinputs, inputs.shape);
  }

  /** None: ReLU has no parameters. */
  params(): Param[] {
    return [];
  }

  /** `{}` */
  config(): JsonObject {
    return {};
  }

  /** `ReLU()` */
  toString(): string {
    return "ReLU()";
  }
}
