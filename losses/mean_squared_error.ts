import type { JsonObject } from "../core/json.ts";
import type { Loss, Targets } from "../core/loss.ts";
import { allocate, Tensor } from "../core/tensor.ts";
import {
  gpuPerOutputBackward,
  type GpuPerOutputBatch,
  gpuPerOutputForward,
  lastBatch,
  type PerOutputBatch,
  perOutputBatch,
} from "./_per_output.ts";
import type { GpuContext, GpuLoss, GpuSink, GpuTensor } from "../core/gpu.ts";

/**
 * Mean squared error (the book's `Loss_MeanSquaredError`, L2 loss): the mean over every
 * output of `(prediction − target)²`, for regression with {@linkcode Linear} outputs.
 *
 * Shapes: outputs `[batch, outputs]`; targets shaped like the outputs, or `[batch]` (a
 * tensor or an array of numbers) for a single output. Outputs of any rank `[batch, …]`
 * (images) take targets of their shape.
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
export class MeanSquaredError implements Loss, GpuLoss {
  /** Registry name. */
  readonly kind = "MeanSquaredError";
  #last?: PerOutputBatch; // outputs [batch, outputs] and targets, cached by forward for backward
  #gpuLast?: GpuPerOutputBatch; // outputs [batch, outputs] and targets, cached by gpuForward

  /** Rebuilds the loss from its (empty) config. */
  static fromConfig(_config: JsonObject): MeanSquaredError {
    return new MeanSquaredError();
  }

  /** `outputs` [batch, outputs], `targets` [batch, outputs] or [batch] → mean loss */
  forward(outputs: Tensor, targets: Targets): number {
    const where = "MeanSquaredError.forward";
    const last = perOutputBatch(outputs, targets, where);
    const { y } = last;
    const p = outputs.data;
    let total = 0;
    for (let i = 0; i < p.length; i++) {
      const error = p[i] - y[i];
      total += error * error;
    }
    this.#last = last;
    return total / p.length;
  }

  // dinputs = 2·(prediction − target) / outputs / batch
  /** → dinputs [batch, outputs] */
  backward(): Tensor {
    const { outputs, y, batch, width } = lastBatch(this.#last, "MeanSquaredError.backward");
    const p = outputs.data;
    const dinputs = allocate(outputs.dtype, p.length);
    for (let i = 0; i < p.length; i++) dinputs[i] = 2 * (p[i] - y[i]) / width / batch;
    return new Tensor(dinputs, outputs.shape);
  }

  /**
   * {@linkcode MeanSquaredError.forward} on the device: adds the batch's mean loss to `sink`.
   * `targets` (float32) are shaped like the outputs, or `[batch]` for a single output.
   *
   * @throws {TypeError} when the targets' shape does not fit the outputs.
   */
  gpuForward(ctx: GpuContext, outputs: GpuTensor, targets: GpuTensor, sink: GpuSink): void {
    const where = "MeanSquaredError.gpuForward";
    const term = "(x0 - x1) * (x0 - x1)";
    this.#gpuLast = gpuPerOutputForward(ctx, this, where, term, outputs, targets, sink);
  }

  // dinputs = 2·(prediction − target) / outputs / batch
  /** {@linkcode MeanSquaredError.backward} on the device: → dinputs [batch, outputs] */
  gpuBackward(ctx: GpuContext): GpuTensor {
    const where = "MeanSquaredError.gpuBackward";
    const last = this.#gpuLast;
    const scalars = [last?.width ?? 1, last?.batch ?? 1];
    const gradient = "2.0 * (x0 - x1) / s0 / s1";
    return gpuPerOutputBackward(ctx, this, last, where, gradient, scalars);
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
