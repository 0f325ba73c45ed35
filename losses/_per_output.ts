// The batch a per-output loss (binary cross-entropy, MSE, MAE, Huber) works on: outputs
// [batch, outputs] (or [batch, …] of any rank: images for an autoencoder) and targets shaped
// like them, flattened. Private to the losses.
import type { Targets } from "../core/loss.ts";
import { valueTargets } from "./_targets.ts";
import { expectMatrix, formatShape, Tensor } from "../core/tensor.ts";

/** What a per-output loss's forward saw, kept for its backward. */
export interface PerOutputBatch {
  /** `[batch, outputs]`, or `[batch, …]` */
  outputs: Tensor;
  /** `[batch·outputs]`, row-major like the outputs. */
  y: ArrayLike<number>;
  /** Samples in the batch. */
  batch: number;
  /** Outputs per sample (all of a sample's elements). */
  width: number;
}

/**
 * Checks `outputs` and `targets` for `where` and returns them as a batch. Outputs of rank
 * above 2 (`[batch, …]`) need targets of the same shape.
 *
 * @throws {TypeError} when the targets' shape does not fit the outputs.
 */
export function perOutputBatch(outputs: Tensor, targets: Targets, where: string): PerOutputBatch {
  if (outputs instanceof Tensor && outputs.rank > 2) {
    const shape = formatShape(outputs.shape);
    const batch = outputs.shape[0];
    if (outputs.size === 0) {
      throw new RangeError(`${where}: outputs is an empty batch (shape ${shape})`);
    }
    if (!(targets instanceof Tensor) || formatShape(targets.shape) !== shape) {
      const got = targets instanceof Tensor ? formatShape(targets.shape) : `[${targets.length}]`;
      throw new TypeError(
        `${where}: targets have shape ${got}, expected ${shape} like the outputs (outputs shape ${shape})`,
      );
    }
    return { outputs, y: targets.data, batch, width: outputs.size / batch };
  }
  const [batch, width] = expectMatrix(outputs, where, "outputs");
  return { outputs, y: valueTargets(targets, batch, width, where), batch, width };
}

/**
 * The batch the last forward saw.
 *
 * @throws {Error} naming `where` when forward has not run.
 */
export function lastBatch(last: PerOutputBatch | undefined, where: string): PerOutputBatch {
  if (!last) throw new Error(`${where}: call forward first`);
  return last;
}
