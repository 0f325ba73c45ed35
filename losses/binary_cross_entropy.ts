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
import { clip, logClipComplementWgsl, logClipWgsl, unclipped, unclippedWgsl } from "./_clip.ts";

/**
 * Binary cross-entropy on probabilities (the book's `Loss_BinaryCrossentropy`), one
 * independent yes/no question per output, for a model that ends in {@linkcode Sigmoid}.
 *
 * Shapes: outputs (probabilities) `[batch, outputs]`; targets in [0, 1] shaped like the
 * outputs, or `[batch]` (a tensor or an array of 0s and 1s) for a single output; outputs of
 * any rank `[batch, …]` (masks) take targets of their shape. The value
 * is the mean over every output of `−(y·log(clip(p)) + (1 − y)·log(1 − clip(p)))`, with
 * `clip` to [1e-7, 1 − 1e-7] as the book does.
 *
 * The backward is the derivative of that clipped value:
 * `−(y / p − (1 − y) / (1 − p)) / outputs / batch` where `p` lies inside the clipping
 * range, 0 where it was clipped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BinaryCrossEntropy, Tensor } from "@chainrule/nn";
 *
 * const loss = new BinaryCrossEntropy();
 * const p = Tensor.from([[0.8], [0.4]], { dtype: "float64" });
 * // Sample 0 is a 1 predicted 0.8, sample 1 a 0 predicted 0.4.
 * const value = loss.forward(p, [1, 0]);
 * assert.ok(Math.abs(value - -(Math.log(0.8) + Math.log(0.6)) / 2) < 1e-15);
 * assert.ok(Math.abs(loss.backward().get(0, 0) - -1 / 0.8 / 2) < 1e-15);
 * ```
 */
export class BinaryCrossEntropy implements Loss, GpuLoss {
  /** Registry name. */
  readonly kind = "BinaryCrossEntropy";
  #last?: PerOutputBatch; // outputs [batch, outputs] and targets, cached by forward for backward
  #gpuLast?: GpuPerOutputBatch; // outputs [batch, outputs] and targets, cached by gpuForward

  /** Rebuilds the loss from its (empty) config. */
  static fromConfig(_config: JsonObject): BinaryCrossEntropy {
    return new BinaryCrossEntropy();
  }

  /**
   * `outputs` [batch, outputs] probabilities, `targets` [batch, outputs] or [batch] → mean loss
   *
   * @throws {TypeError} when the targets' shape does not fit the outputs.
   * @throws {RangeError} when a target lies outside [0, 1].
   */
  forward(outputs: Tensor, targets: Targets): number {
    const where = "BinaryCrossEntropy.forward";
    const last = perOutputBatch(outputs, targets, where);
    const { y, width } = last;
    const p = outputs.data;
    let total = 0;
    for (let i = 0; i < p.length; i++) {
      const target = y[i];
      if (!(target >= 0 && target <= 1)) {
        throw new RangeError(
          `${where}: target ${target} at sample ${Math.floor(i / width)}, output ${
            i % width
          } must be in [0, 1]`,
        );
      }
      const q = clip(p[i]);
      total -= target * Math.log(q) + (1 - target) * Math.log(1 - q);
    }
    this.#last = last;
    return total / p.length;
  }

  // dinputs = −(y / p − (1 − y) / (1 − p)) / outputs / batch inside the clipping range, else 0
  /** → dinputs [batch, outputs] */
  backward(): Tensor {
    const { outputs, y, batch, width } = lastBatch(this.#last, "BinaryCrossEntropy.backward");
    const p = outputs.data;
    const dinputs = allocate(outputs.dtype, p.length);
    for (let i = 0; i < p.length; i++) {
      const q = p[i];
      if (unclipped(q)) dinputs[i] = -(y[i] / q - (1 - y[i]) / (1 - q)) / width / batch;
    }
    return new Tensor(dinputs, outputs.shape);
  }

  /**
   * {@linkcode BinaryCrossEntropy.forward} on the device: adds the batch's mean loss to `sink`.
   * `targets` (float32) are shaped like the outputs, or `[batch]` for a single output.
   *
   * @throws {TypeError} when the targets' shape does not fit the outputs.
   */
  gpuForward(ctx: GpuContext, outputs: GpuTensor, targets: GpuTensor, sink: GpuSink): void {
    const where = "BinaryCrossEntropy.gpuForward";
    const term = `-(x1 * ${logClipWgsl("x0")} + (1.0 - x1) * ${logClipComplementWgsl("x0")})`;
    this.#gpuLast = gpuPerOutputForward(ctx, this, where, term, outputs, targets, sink);
  }

  // dinputs = −(y / p − (1 − y) / (1 − p)) / outputs / batch inside the clipping range, else 0
  /** {@linkcode BinaryCrossEntropy.backward} on the device: → dinputs [batch, outputs] */
  gpuBackward(ctx: GpuContext): GpuTensor {
    const where = "BinaryCrossEntropy.gpuBackward";
    const last = this.#gpuLast;
    const scalars = [last?.width ?? 1, last?.batch ?? 1];
    const slope = "-(x1 / x0 - (1.0 - x1) / (1.0 - x0)) / s0 / s1";
    const gradient = `select(0.0, ${slope}, ${unclippedWgsl("x0")})`;
    return gpuPerOutputBackward(ctx, this, last, where, gradient, scalars);
  }

  /** `{}` */
  config(): JsonObject {
    return {};
  }

  /** `BinaryCrossEntropy()` */
  toString(): string {
    return "BinaryCrossEntropy()";
  }
}
