import type { JsonObject } from "../core/json.ts";
import type { Loss, Targets } from "../core/loss.ts";
import { valueTargets } from "../core/targets.ts";
import { allocate, expectMatrix, Tensor } from "../core/tensor.ts";

/**
 * Mean squared error (the book's `Loss_MeanSquaredError`, L2 loss): the mean over every
 * output of `(prediction − target)²`, for regression with {@linkcode Linear} outputs.
 *
 * Shapes: outputs `[batch, outputs]`; targets shaped like the outputs, or `[batch]` (a
 * tensor or an array of numbers) for a single output.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MeanSquaredError, Tensor } from "@chainrule/nn";
 *
 * const loss = new MeanSquaredError();
 * // Errors 1 and −3: (1 + 9) / 2 = 5.
 * assert.equal(loss.forward(Tensor.from([[2], [0]], { dtype: "float64" }), [1, 3]), 5);
 * // 2·error / 2 samples
 * assert.deepEqual(loss.backward().toArray(), [[1], [-3]]);
 * ```
 */
export class MeanSquaredError implements Loss {
  /** Registry name. */
  readonly kind = "MeanSquaredError";
  #outputs?: Tensor; // [batch, outputs], cached by forward for backward
  #targets?: ArrayLike<number>; // [batch·outputs]

  /** Rebuilds the loss from its (empty) config. */
  static fromConfig(_config: JsonObject): MeanSquaredError {
    return new MeanSquaredError();
  }

  /** `outputs` [batch, outputs], `targets` [batch, outputs] or [batch] → mean loss */
  forward(outputs: Tensor, targets: Targets): number {
    const where = "MeanSquaredError.forward";
    const [batch, width] = expectMatrix(outputs, where, "outputs");
    const y = valueTargets(targets, batch, width, where);
    const p = outputs.data;
    let total = 0;
    for (let i = 0; i < p.length; i++) {
      const error = p[i] - y[i];
      total += error * error;
    }
    this.#outputs = outputs;
    this.#targets = y;
    return total / p.length;
  }

  // dinputs = 2·(prediction − target) / outputs / batch
  /** → dinputs [batch, outputs] */
  backward(): Tensor {
    const outputs = this.#outputs;
    const y = this.#targets;
    if (!outputs || !y) throw new Error("MeanSquaredError.backward: call forward first");
    const [batch, width] = outputs.shape;
    const p = outputs.data;
    const dinputs = allocate(outputs.dtype, p.length);
    for (let i = 0; i < p.length; i++) dinputs[i] = 2 * (p[i] - y[i]) / width / batch;
    return new Tensor(dinputs, outputs.shape);
  }

  /** `{}` */
  config(): JsonObject {
    return {};
  }

  /** `MeanSquaredError()` */
  toString(): string {
    return "MeanSquaredError()";
  }
}
