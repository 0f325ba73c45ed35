// The batch a per-output loss (binary cross-entropy, MSE, MAE, Huber) works on: outputs
// [batch, outputs] and targets shaped like them, flattened. Private to the losses.
import type { Targets } from "../core/loss.ts";
import { valueTargets } from "../core/targets.ts";
import { expectMatrix, type Tensor } from "../core/tensor.ts";

/** What a per-output loss's forward saw, kept for its backward. */
export interface PerOutputBatch {
  /** `[batch, outputs]` */
  outputs: Tensor;
  /** `[batch·outputs]`, row-major like the outputs. */
  y: ArrayLike<number>;
  /** Samples in the batch. */
  batch: number;
  /** Outputs per sample. */
  width: number;
}

/**
 * Checks `outputs` and `targets` for `where` and returns them as a batch.
 *
 * @throws {TypeError} when the targets' shape does not fit the outputs.
 */
export function perOutputBatch(outputs: Tensor, targets: Targets, where: string): PerOutputBatch {
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
