import { type DType, Tensor } from "./tensor.ts";

/**
 * A named trainable parameter: its value and, beside it, the gradient that `backward`
 * accumulates into (same shape, same dtype).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Param, Tensor } from "@chainrule/nn";
 *
 * const p = new Param("weights", Tensor.from([[1, 2]]));
 * p.grad.data[0] = 5;
 * p.zeroGrad();
 * assert.deepEqual(p.grad.toArray(), [[0, 0]]);
 * ```
 */
export class Param {
  /** The parameter's name inside its layer, e.g. `"weights"`. */
  readonly name: string;
  /** Current values. */
  readonly value: Tensor;
  /** d(loss)/d(value), accumulated by `backward`, cleared by {@linkcode Param.zeroGrad}. */
  readonly grad: Tensor;

  /** Wraps `value` and allocates a zeroed gradient beside it. */
  constructor(name: string, value: Tensor) {
    this.name = name;
    this.value = value;
    this.grad = Tensor.zeros(value.shape, { dtype: value.dtype });
  }

  /** Element type of value and gradient. */
  get dtype(): DType {
    return this.value.dtype;
  }

  /** Sets the gradient to zero. */
  zeroGrad(): void {
    this.grad.data.fill(0);
  }
}
