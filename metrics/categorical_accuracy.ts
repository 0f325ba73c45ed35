import type { Targets } from "../core/loss.ts";
import type { Metric } from "../core/metric.ts";
import { accuracy } from "../core/targets.ts";
import type { Tensor } from "../core/tensor.ts";

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
