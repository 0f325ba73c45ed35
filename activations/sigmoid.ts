import { expectLike, expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { allocate, Tensor } from "../core/tensor.ts";

/**
 * The logistic sigmoid, element-wise: `outputs = 1 / (1 + exp(−inputs))` (the book's
 * `Activation_Sigmoid`), the output of a binary classifier with
 * {@linkcode BinaryCrossEntropy}.
 *
 * Negative inputs are computed as `exp(x) / (1 + exp(x))`, so no `exp` ever overflows:
 * `−1000` gives exactly 0 and `1000` exactly 1, never NaN.
 *
 * Shapes: any → the same shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Sigmoid, Tensor } from "@chainrule/nn";
 *
 * const sigmoid = new Sigmoid();
 * const out = sigmoid.forward(Tensor.from([[0, -1000, 1000]], { dtype: "float64" }));
 * assert.deepEqual(out.toArray(), [[0.5, 0, 1]]);
 * // σ′(0) = σ(0)·(1 − σ(0)) = 0.25
 * assert.equal(sigmoid.backward(Tensor.from([[1, 1, 1]], { dtype: "float64" })).get(0, 0), 0.25);
 * ```
 */
export class Sigmoid implements Layer {
  /** Registry name. */
  readonly kind = "Sigmoid";
  #outputs?: Tensor; // same shape as inputs, cached by forward for backward

  /** Rebuilds the layer from its (empty) config. */
  static fromConfig(_config: JsonObject): Sigmoid {
    return new Sigmoid();
  }

  /** `inputs` [...] → outputs [...] in (0, 1) */
  forward(inputs: Tensor): Tensor {
    expectTensor(inputs, "Sigmoid.forward");
    const x = inputs.data;
    const outputs = allocate(inputs.dtype, x.length);
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (v >= 0) {
        outputs[i] = 1 / (1 + Math.exp(-v));
      } else {
        const e = Math.exp(v);
        outputs[i] = e / (1 + e);
      }
    }
    this.#outputs = new Tensor(outputs, inputs.shape);
    return this.#outputs;
  }

  // dinputs = dvalues · σ(x)·(1 − σ(x))
  /** `dvalues` [...] → dinputs [...] */
  backward(dvalues: Tensor): Tensor {
    const outputs = expectLike(dvalues, this.#outputs, "Sigmoid.backward", "outputs");
    const s = outputs.data;
    const dv = dvalues.data;
    const dinputs = allocate(outputs.dtype, s.length);
    for (let i = 0; i < s.length; i++) dinputs[i] = dv[i] * (1 - s[i]) * s[i];
    return new Tensor(dinputs, outputs.shape);
  }

  /** None: sigmoid has no parameters. */
  params(): Param[] {
    return [];
  }

  /** `{}` */
  config(): JsonObject {
    return {};
  }

  /** `Sigmoid()` */
  toString(): string {
    return "Sigmoid()";
  }
}
