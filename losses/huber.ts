import { describe } from "../core/_describe.ts";
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

/** Options of {@linkcode Huber}. */
export interface HuberOptions {
  /** Where the loss turns from quadratic to linear; 1 when omitted (as PyTorch and Keras). */
  delta?: number;
}

/**
 * Huber loss: quadratic for small errors, linear for large ones. For each output, with
 * `r = prediction − target`: `½r²` when `|r| ≤ delta`, else `delta·(|r| − ½delta)`; the
 * value is the mean over every output (PyTorch's `HuberLoss`, Keras's `Huber`).
 *
 * Shapes: outputs `[batch, outputs]`; targets shaped like the outputs, or `[batch]` (a
 * tensor or an array of numbers) for a single output. Outputs of any rank `[batch, …]`
 * (images) take targets of their shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Huber, Tensor } from "@chainrule/nn";
 *
 * const loss = new Huber({ delta: 1 });
 * // r = 0.5 → 0.125 (quadratic); r = −3 → 1·(3 − 0.5) = 2.5 (linear); mean 1.3125.
 * assert.equal(loss.forward(Tensor.from([[1.5], [0]], { dtype: "float64" }), [1, 3]), 1.3125);
 * // r / 2 samples, then delta·sign(r) / 2 samples
 * assert.deepEqual(loss.backward().toArray(), [[0.25], [-0.5]]);
 * ```
 */
export class Huber implements Loss, GpuLoss {
  /** Registry name. */
  readonly kind = "Huber";
  /** Where the loss turns from quadratic to linear. */
  readonly delta: number;
  #last?: PerOutputBatch; // outputs [batch, outputs] and targets, cached by forward for backward
  #gpuLast?: GpuPerOutputBatch; // outputs [batch, outputs] and targets, cached by gpuForward

  /**
   * Creates the loss.
   *
   * @throws {RangeError} when `delta` is not a finite number > 0.
   */
  constructor(options: HuberOptions = {}) {
    const delta = options.delta ?? 1;
    if (typeof delta !== "number" || !Number.isFinite(delta) || delta <= 0) {
      throw new RangeError(`new Huber: delta must be a finite number > 0, got ${describe(delta)}`);
    }
    this.delta = delta;
  }

  /** Rebuilds the loss from {@linkcode Huber.config}. */
  static fromConfig(config: JsonObject): Huber {
    return new Huber(config as HuberOptions);
  }

  /** `outputs` [batch, outputs], `targets` [batch, outputs] or [batch] → mean loss */
  forward(outputs: Tensor, targets: Targets): number {
    const where = "Huber.forward";
    const last = perOutputBatch(outputs, targets, where);
    const { y } = last;
    const delta = this.delta;
    const p = outputs.data;
    let total = 0;
    for (let i = 0; i < p.length; i++) {
      const r = Math.abs(p[i] - y[i]);
      total += r <= delta ? 0.5 * r * r : delta * (r - 0.5 * delta);
    }
    this.#last = last;
    return total / p.length;
  }

  // dinputs = r / outputs / batch where |r| ≤ delta, else delta·sign(r) / outputs / batch
  /** → dinputs [batch, outputs] */
  backward(): Tensor {
    const { outputs, y, batch, width } = lastBatch(this.#last, "Huber.backward");
    const delta = this.delta;
    const p = outputs.data;
    const dinputs = allocate(outputs.dtype, p.length);
    for (let i = 0; i < p.length; i++) {
      const r = p[i] - y[i];
      const slope = r > delta ? delta : r < -delta ? -delta : r;
      dinputs[i] = slope / width / batch;
    }
    return new Tensor(dinputs, outputs.shape);
  }

  /**
   * {@linkcode Huber.forward} on the device: adds the batch's mean loss to `sink`.
   * `targets` (float32) are shaped like the outputs, or `[batch]` for a single output.
   *
   * @throws {TypeError} when the targets' shape does not fit the outputs.
   */
  gpuForward(ctx: GpuContext, outputs: GpuTensor, targets: GpuTensor, sink: GpuSink): void {
    const where = "Huber.gpuForward";
    // s0 = delta; |r| = abs(x0 − x1)
    const term =
      "select(s0 * (abs(x0 - x1) - 0.5 * s0), 0.5 * (x0 - x1) * (x0 - x1), abs(x0 - x1) <= s0)";
    const scalars = [this.delta];
    this.#gpuLast = gpuPerOutputForward(ctx, this, where, term, outputs, targets, sink, scalars);
  }

  // dinputs = r / outputs / batch where |r| ≤ delta, else delta·sign(r) / outputs / batch
  /** {@linkcode Huber.backward} on the device: → dinputs [batch, outputs] */
  gpuBackward(ctx: GpuContext): GpuTensor {
    const where = "Huber.gpuBackward";
    const last = this.#gpuLast;
    const scalars = [this.delta, last?.width ?? 1, last?.batch ?? 1];
    const gradient = "clamp(x0 - x1, -s0, s0) / s1 / s2";
    return gpuPerOutputBackward(ctx, this, last, where, gradient, scalars);
  }

  /** `{ delta }` */
  config(): JsonObject {
    return { delta: this.delta };
  }

  /** `Huber(delta=1)` */
  toString(): string {
    return `Huber(delta=${this.delta})`;
  }
}
