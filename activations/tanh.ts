import { expectLike, expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { allocate, Tensor } from "../core/tensor.ts";

/**
 * Hyperbolic tangent, element-wise: `outputs = tanh(inputs)`, in (−1, 1).
 *
 * Shapes: any → the same shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Tanh, Tensor } from "@chainrule/nn";
 *
 * const tanh = new Tanh();
 * assert.deepEqual(tanh.forward(Tensor.from([[0, 1000]], { dtype: "float64" })).toArray(), [[0, 1]]);
 * // tanh′(0) = 1 − tanh(0)² = 1
 * assert.deepEqual(tanh.backward(Tensor.from([[2, 2]], { dtype: "float64" })).toArray(), [[2, 0]]);
 * ```
 */
export class Tanh implements Layer {
  /** Registry name. */
  readonly kind = "Tanh";
  #outputs?: Tensor; // same shape as inputs, cached by forward for backward

  /** Rebuilds the layer from its (empty) config. */
  static fromConfig(_config: JsonObject): Tanh {
    return new Tanh();
  }

  /** `inputs` [...] → outputs [...] in (−1, 1) */
  forward(inputs: Tensor): Tensor {
    expectTensor(inputs, "Tanh.forward");
    const x = inputs.data;
    const outputs = allocate(inputs.dtype, x.length);
    for (let i = 0; i < x.length; i++) outputs[i] = Math.tanh(x[i]);
    this.#outputs = new Tensor(outputs, inputs.shape);
    return this.#outputs;
  }

  // dinputs = dvalues · (1 − tanh(x)²)
  /** `dvalues` [...] → dinputs [...] */
  backward(dvalues: Tensor): Tensor {
    const outputs = expectLike(dvalues, this.#outputs, "Tanh.backward", "outputs");
    const t = outputs.data;
    const dv = dvalues.data;
    const dinputs = allocate(outputs.dtype, t.length);
    for (let i = 0; i < t.length; i++) dinputs[i] = dv[i] * (1 - t[i] * t[i]);
    return new Tensor(dinputs, outputs.shape);
  }

  /** None: tanh has no parameters. */
  params(): Param[] {
    return [];
  }

  /** `{}` */
  config(): JsonObject {
    return {};
  }

  /** `Tanh()` */
  toString(): string {
    return "Tanh()";
  }
}
