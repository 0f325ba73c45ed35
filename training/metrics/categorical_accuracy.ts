import type { Targets } from "../../core/loss.ts";
import type { Metric } from "../metric.ts";
import { classTargets } from "../../losses/_targets.ts";
import type { Tensor } from "../../core/tensor.ts";

/** Options shared by the accuracy metrics. */
export interface MetricOptions {
  /** Key in logs and history; `"accuracy"` when omitted (the book calls them all accuracy). */
  name?: string;
}

/**
 * Categorical accuracy, the book's `Accuracy_Categorical`: the fraction of samples whose
 * largest output is the target class.
 *
 * Shapes: outputs `[batch, classes]`; targets class indices `[batch]` or one-hot rows
 * `[batch, classes]`. `fit` picks this metric by itself when the shapes look like that and
 * no `metrics` are given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CategoricalAccuracy, Tensor } from "@chainrule/nn";
 *
 * const metric = new CategoricalAccuracy();
 * assert.equal(metric.measure(Tensor.from([[0.1, 0.9], [0.8, 0.2]]), [1, 1]), 0.5);
 * ```
 */
export class CategoricalAccuracy implements Metric {
  /** Key in logs and history. */
  readonly name: string;

  /** Creates the metric. */
  constructor(options: MetricOptions = {}) {
    this.name = options.name ?? "accuracy";
  }

  /** Fraction of rows of `outputs` whose argmax is the target class. */
  measure(outputs: Tensor, targets: Targets): number {
    return accuracy(outputs, targets, `${this}.measure`);
  }

  /** `CategoricalAccuracy()` */
  toString(): string {
    return "CategoricalAccuracy()";
  }
}

/** Index of the largest value in each row of `outputs` [batch, classes]. */
export function argmaxRows(outputs: Tensor): Int32Array {
  const [batch, classes] = outputs.shape;
  const x = outputs.data;
  const out = new Int32Array(batch);
  for (let i = 0; i < batch; i++) {
    const row = i * classes;
    let best = 0;
    for (let j = 1; j < classes; j++) if (x[row + j] > x[row + best]) best = j;
    out[i] = best;
  }
  return out;
}

/**
 * Fraction of samples whose largest output is the target class (the book's accuracy).
 *
 * Targets are class indices or one-hot rows, as the classification losses take them; `where`
 * names the caller in error messages.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { accuracy, Tensor } from "@chainrule/nn";
 *
 * assert.equal(accuracy(Tensor.from([[0.1, 0.9], [0.8, 0.2]]), [1, 1]), 0.5);
 * ```
 */
export function accuracy(outputs: Tensor, targets: Targets, where = "accuracy"): number {
  const [batch, classes] = outputs.shape;
  const normalized = classTargets(targets, batch, classes, where);
  const predicted = argmaxRows(outputs);
  const truth = normalized.kind === "indices" ? normalized.indices : argmaxRows(normalized.rows);
  let correct = 0;
  for (let i = 0; i < batch; i++) if (predicted[i] === truth[i]) correct++;
  return correct / batch;
}
