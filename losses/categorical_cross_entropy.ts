import type { JsonObject } from "../core/json.ts";
import type { Loss, Targets } from "../core/loss.ts";
import { type ClassTargets, classTargets } from "./_targets.ts";
import { allocate, expectMatrix, Tensor } from "../core/tensor.ts";
import { clip, unclipped } from "./_clip.ts";

/**
 * Categorical cross-entropy on probabilities (the book's `Loss_CategoricalCrossentropy`),
 * for a model that ends in {@linkcode Softmax}.
 *
 * Shapes: outputs (probabilities) `[batch, classes]`; targets class indices `[batch]` or
 * one-hot rows `[batch, classes]`. The value is the mean over the batch of
 * `−Σ_j y_j·log(clip(p_j))`, with `clip` to [1e-7, 1 − 1e-7] as the book does, so a
 * probability of 0 costs about 16.1 instead of infinity.
 *
 * The backward is the derivative of that clipped value: `−y_j / p_j / batch` where `p_j`
 * lies inside the clipping range, and 0 where it was clipped (as TensorFlow's clip does),
 * so it never divides by zero. For training a classifier, {@linkcode SoftmaxCrossEntropy}
 * on logits is faster and never saturates.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CategoricalCrossEntropy, Tensor } from "@chainrule/nn";
 *
 * // The book's example: mean of −log 0.7, −log 0.5, −log 0.9.
 * const p = Tensor.from([[0.7, 0.1, 0.2], [0.1, 0.5, 0.4], [0.02, 0.9, 0.08]], { dtype: "float64" });
 * const loss = new CategoricalCrossEntropy();
 * assert.ok(Math.abs(loss.forward(p, [0, 1, 1]) - 0.38506088005216804) < 1e-15);
 * // d/dp of −log 0.7, over a batch of 3.
 * assert.ok(Math.abs(loss.backward().get(0, 0) - -1 / 0.7 / 3) < 1e-15);
 * ```
 */
export class CategoricalCrossEntropy implements Loss {
  /** Registry name. */
  readonly kind = "CategoricalCrossEntropy";
  #outputs?: Tensor; // [batch, classes], cached by forward for backward
  #targets?: ClassTargets; // [batch] or [batch, classes]

  /** Rebuilds the loss from its (empty) config. */
  static fromConfig(_config: JsonObject): CategoricalCrossEntropy {
    return new CategoricalCrossEntropy();
  }

  /** `outputs` [batch, classes] probabilities, `targets` [batch] or [batch, classes] → mean loss */
  forward(outputs: Tensor, targets: Targets): number {
    const where = "CategoricalCrossEntropy.forward";
    const [batch, classes] = expectMatrix(outputs, where, "outputs");
    const normalized = classTargets(targets, batch, classes, where);
    const p = outputs.data;
    let total = 0;
    if (normalized.kind === "indices") {
      const y = normalized.indices;
      for (let i = 0; i < batch; i++) total -= Math.log(clip(p[i * classes + y[i]]));
    } else {
      const y = normalized.rows.data;
      for (let i = 0; i < p.length; i++) if (y[i] !== 0) total -= y[i] * Math.log(clip(p[i]));
    }
    this.#outputs = outputs;
    this.#targets = normalized;
    return total / batch;
  }

  // dinputs = −y / p / batch inside the clipping range, 0 where p was clipped
  /** → dinputs [batch, classes] */
  backward(): Tensor {
    const outputs = this.#outputs;
    const targets = this.#targets;
    if (!outputs || !targets) {
      throw new Error("CategoricalCrossEntropy.backward: call forward first");
    }
    const [batch, classes] = outputs.shape;
    const p = outputs.data;
    const dinputs = allocate(outputs.dtype, p.length);
    if (targets.kind === "indices") {
      const y = targets.indices;
      for (let i = 0; i < batch; i++) {
        const k = i * classes + y[i];
        if (unclipped(p[k])) dinputs[k] = -1 / p[k] / batch;
      }
    } else {
      const y = targets.rows.data;
      for (let i = 0; i < p.length; i++) if (unclipped(p[i])) dinputs[i] = -y[i] / p[i] / batch;
    }
    return new Tensor(dinputs, outputs.shape);
  }

  /** `{}` */
  config(): JsonObject {
    return {};
  }

  /** `CategoricalCrossEntropy()` */
  toString(): string {
    return "CategoricalCrossEntropy()";
  }
}
