import type { Targets } from "../core/loss.ts";
import { targetCount } from "../losses/_targets.ts";
import { formatShape, Tensor } from "../core/tensor.ts";

/**
 * The contract every metric implements: a named score of a batch of outputs against their
 * targets, averaged over the batch.
 *
 * `fit` and `evaluate` weight each batch's score by its sample count, so the epoch's figure
 * is the mean over all samples, whatever the batch size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Metric, type Targets, Tensor } from "@chainrule/nn";
 *
 * // A third-party metric: the mean of the first output.
 * const meanOutput: Metric = {
 *   name: "meanOutput",
 *   measure(outputs: Tensor, _targets: Targets): number {
 *     let sum = 0;
 *     for (let i = 0; i < outputs.shape[0]; i++) sum += outputs.data[i * outputs.shape[1]];
 *     return sum / outputs.shape[0];
 *   },
 * };
 * assert.equal(meanOutput.measure(Tensor.from([[1, 9], [3, 9]]), [0, 0]), 2);
 * ```
 */
export interface Metric {
  /** The key of the metric in logs and history, e.g. `"accuracy"` (`"valAccuracy"` on validation). */
  readonly name: string;
  /**
   * Called with the full targets of a `fit` or `evaluate` call before its first batch, for
   * metrics that derive a setting from the data (the regression tolerance).
   */
  prepare?(targets: Targets): void;
  /** The mean score over the batch. */
  measure(outputs: Tensor, targets: Targets): number;
}

/**
 * The targets of a batch as one value per output element, checked against the outputs.
 *
 * Accepts a tensor shaped like the outputs, or (for a single output per sample) a
 * `[batch]` tensor or array.
 *
 * @throws {TypeError} naming `where` and both shapes when they disagree.
 */
export function elementTargets(
  outputs: Tensor,
  targets: Targets,
  where: string,
): ArrayLike<number> {
  const batch = outputs.shape[0] ?? 1;
  const count = targetCount(targets);
  const single = outputs.size === batch;
  const size = targets instanceof Tensor ? targets.size : targets.length;
  if (
    count !== batch || size !== outputs.size || (targets instanceof Tensor && !single &&
      formatShape(targets.shape) !== formatShape(outputs.shape))
  ) {
    const shape = targets instanceof Tensor ? formatShape(targets.shape) : `[${targets.length}]`;
    throw new TypeError(
      `${where}: targets have shape ${shape}, expected ${
        formatShape(outputs.shape)
      } like the outputs${single ? ` or [${batch}]` : ""}`,
    );
  }
  return targets instanceof Tensor ? targets.data : targets;
}
