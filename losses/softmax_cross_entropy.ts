import type { JsonObject } from "../core/json.ts";
import type { Loss, Targets } from "../core/loss.ts";
import { softmaxRows } from "../activations/softmax.ts";
import { Scratch } from "../core/_scratch.ts";
import { type ClassTargets, classTargets } from "./_targets.ts";
import { expectMatrix, type Tensor } from "../core/tensor.ts";
import { clip } from "./_clip.ts";

// The book clips probabilities before the log in the value only: the fused backward
// (softmax − onehot) is the derivative of the unclipped loss.
function clippedLog(p: number): number {
  return Math.log(clip(p));
}

/**
 * Softmax followed by categorical cross-entropy, fused, on logits: the book's
 * `Activation_Softmax_Loss_CategoricalCrossentropy` (PyTorch's `CrossEntropyLoss`).
 *
 * Shapes: outputs (logits) `[batch, classes]`; targets class indices `[batch]` or one-hot
 * rows `[batch, classes]`. The value is the mean over the batch of `−Σ_j y_j·log p_j`, with
 * `p` clipped to [1e-7, 1 − 1e-7] as the book does; the softmax subtracts each row's max,
 * so large logits are safe.
 *
 * The loss reuses its buffers from one batch to the next: the tensor `backward()` returns
 * is valid until the next `backward()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SoftmaxCrossEntropy, Tensor } from "@chainrule/nn";
 *
 * const loss = new SoftmaxCrossEntropy();
 * const value = loss.forward(Tensor.from([[0, 0, 0]], { dtype: "float64" }), [2]);
 * assert.ok(Math.abs(value - Math.log(3)) < 1e-12);
 * const d = loss.backward().toArray<number[][]>();
 * assert.ok(Math.abs(d[0][2] - (1 / 3 - 1)) < 1e-12);
 * ```
 */
export class SoftmaxCrossEntropy implements Loss {
  /** Registry name. */
  readonly kind = "SoftmaxCrossEntropy";
  #probabilities?: Tensor; // [batch, classes], cached by forward for backward
  #targets?: ClassTargets; // [batch] or [batch, classes]
  #scratch = new Scratch(); // probabilities [batch, classes]
  #dinputs = new Scratch(); // [batch, classes]
  #indices?: Int32Array; // [batch], reused for class-index targets

  /** Rebuilds the loss from its (empty) config. */
  static fromConfig(_config: JsonObject): SoftmaxCrossEntropy {
    return new SoftmaxCrossEntropy();
  }

  /** `outputs` [batch, classes] logits, `targets` [batch] or [batch, classes] → mean loss */
  forward(outputs: Tensor, targets: Targets): number {
    const [batch, classes] = expectMatrix(outputs, "SoftmaxCrossEntropy.forward", "outputs");
    const normalized = classTargets(
      targets,
      batch,
      classes,
      "SoftmaxCrossEntropy.forward",
      this.#indices,
    );
    if (normalized.kind === "indices") this.#indices = normalized.indices;
    const probabilities = this.#scratch.get(outputs.dtype, outputs.shape);
    const p = probabilities.data;
    softmaxRows(outputs.data, p, batch, classes);
    let total = 0;
    if (normalized.kind === "indices") {
      const y = normalized.indices;
      for (let i = 0; i < batch; i++) total -= clippedLog(p[i * classes + y[i]]);
    } else {
      const y = normalized.rows.data;
      for (let i = 0; i < p.length; i++) if (y[i] !== 0) total -= y[i] * clippedLog(p[i]);
    }
    this.#probabilities = probabilities;
    this.#targets = normalized;
    return total / batch;
  }

  // dlogits = (softmax − onehot) / batch
  /** → dinputs [batch, classes] */
  backward(): Tensor {
    const probabilities = this.#probabilities;
    const targets = this.#targets;
    if (!probabilities || !targets) {
      throw new Error("SoftmaxCrossEntropy.backward: call forward first");
    }
    const [batch, classes] = probabilities.shape;
    const p = probabilities.data;
    const gradient = this.#dinputs.get(probabilities.dtype, probabilities.shape);
    const dinputs = gradient.data;
    if (targets.kind === "indices") {
      const y = targets.indices;
      dinputs.set(p);
      for (let i = 0; i < batch; i++) dinputs[i * classes + y[i]] -= 1;
    } else {
      const y = targets.rows.data;
      for (let i = 0; i < p.length; i++) dinputs[i] = p[i] - y[i];
    }
    // Divides rather than multiplying by 1/batch, as the book does, so float64 runs match it bit for bit.
    for (let i = 0; i < dinputs.length; i++) dinputs[i] /= batch;
    return gradient;
  }

  /** `{}` */
  config(): JsonObject {
    return {};
  }

  /** `SoftmaxCrossEntropy()` */
  toString(): string {
    return "SoftmaxCrossEntropy()";
  }
}
