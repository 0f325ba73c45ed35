import type { JsonObject } from "../core/json.ts";
import type { Loss, Targets } from "../core/loss.ts";
import { checkIgnoreIndex, type ClassTargets, classTargetsFor } from "./_targets.ts";
import { allocate, Tensor } from "../core/tensor.ts";
import { clip, unclipped } from "./_clip.ts";
import type { ClassLossOptions } from "./softmax_cross_entropy.ts";

/**
 * Categorical cross-entropy on probabilities (the book's `Loss_CategoricalCrossentropy`),
 * for a model that ends in {@linkcode Softmax}.
 *
 * Shapes: outputs (probabilities) `[batch, classes]`, or `[batch, T, classes]` (any rank
 * ≥ 2: the classes are the last axis); targets class indices shaped like the outputs
 * without their last axis (`[batch]`, `[batch, T]`: a tensor of integer values, or a flat
 * array of all positions), or one-hot rows shaped like the outputs. The value is the mean
 * over every position of `−Σ_j y_j·log(clip(p_j))`, with `clip` to [1e-7, 1 − 1e-7] as the
 * book does, so a probability of 0 costs about 16.1 instead of infinity. With
 * `ignoreIndex`, positions whose target is it are left out of the mean and get a zero
 * gradient; when every position is ignored the value is 0 with a zero gradient.
 *
 * The backward is the derivative of that clipped value: `−y_j / p_j / count` where `p_j`
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
 *
 * // The same rows as one sequence [1, 3, 3], the last position ignored.
 * const sequence = new CategoricalCrossEntropy({ ignoreIndex: -100 });
 * const value = sequence.forward(p.reshape([1, 3, 3]), Tensor.from([[0, 1, -100]]));
 * assert.ok(Math.abs(value - -(Math.log(0.7) + Math.log(0.5)) / 2) < 1e-15);
 * ```
 */
export class CategoricalCrossEntropy implements Loss {
  /** Registry name. */
  readonly kind = "CategoricalCrossEntropy";
  /** The class-index target left out of the loss, if any. */
  readonly ignoreIndex?: number;
  #outputs?: Tensor; // [batch, …, classes], cached by forward for backward
  #targets?: ClassTargets; // [positions] or [positions, classes]
  #count = 0; // positions counted in the mean

  /**
   * Creates the loss.
   *
   * @throws {RangeError} when `ignoreIndex` is not an integer.
   */
  constructor(options: ClassLossOptions = {}) {
    this.ignoreIndex = checkIgnoreIndex("new CategoricalCrossEntropy", options?.ignoreIndex);
  }

  /** Rebuilds the loss from {@linkcode CategoricalCrossEntropy.config}. */
  static fromConfig(config: JsonObject): CategoricalCrossEntropy {
    return new CategoricalCrossEntropy(config as ClassLossOptions);
  }

  /**
   * `outputs` [batch, …, classes] probabilities, `targets` [batch, …] indices or
   * [batch, …, classes] rows → mean loss over the counted positions
   *
   * @throws {TypeError} when the targets' shape does not fit the outputs.
   * @throws {RangeError} when a class index is out of range or not an integer.
   */
  forward(outputs: Tensor, targets: Targets): number {
    const where = "CategoricalCrossEntropy.forward";
    const ignore = this.ignoreIndex;
    const normalized = classTargetsFor(outputs, targets, where, { ignoreIndex: ignore });
    const classes = outputs.shape[outputs.rank - 1];
    const positions = outputs.size / classes;
    const p = outputs.data;
    let total = 0;
    let count = positions;
    if (normalized.kind === "indices") {
      const y = normalized.indices;
      for (let i = 0; i < positions; i++) {
        if (y[i] === ignore) count--;
        else total -= Math.log(clip(p[i * classes + y[i]]));
      }
    } else {
      const y = normalized.rows.data;
      for (let i = 0; i < p.length; i++) if (y[i] !== 0) total -= y[i] * Math.log(clip(p[i]));
    }
    this.#outputs = outputs;
    this.#targets = normalized;
    this.#count = count;
    return count === 0 ? 0 : total / count;
  }

  // dinputs = −y / p / count inside the clipping range, 0 where p was clipped or ignored
  /** → dinputs [batch, …, classes] */
  backward(): Tensor {
    const outputs = this.#outputs;
    const targets = this.#targets;
    if (!outputs || !targets) {
      throw new Error("CategoricalCrossEntropy.backward: call forward first");
    }
    const classes = outputs.shape[outputs.rank - 1];
    const positions = outputs.size / classes;
    const count = this.#count;
    const ignore = this.ignoreIndex;
    const p = outputs.data;
    const dinputs = allocate(outputs.dtype, p.length);
    if (targets.kind === "indices") {
      const y = targets.indices;
      for (let i = 0; i < positions; i++) {
        if (y[i] === ignore) continue;
        const k = i * classes + y[i];
        if (unclipped(p[k])) dinputs[k] = -1 / p[k] / count;
      }
    } else {
      const y = targets.rows.data;
      for (let i = 0; i < p.length; i++) if (unclipped(p[i])) dinputs[i] = -y[i] / p[i] / count;
    }
    return new Tensor(dinputs, outputs.shape);
  }

  /** `{}`, or `{ ignoreIndex }` */
  config(): JsonObject {
    return this.ignoreIndex === undefined ? {} : { ignoreIndex: this.ignoreIndex };
  }

  /** `CategoricalCrossEntropy()`, `CategoricalCrossEntropy(ignoreIndex=0)` */
  toString(): string {
    const ignore = this.ignoreIndex === undefined ? "" : `ignoreIndex=${this.ignoreIndex}`;
    return `CategoricalCrossEntropy(${ignore})`;
  }
}
