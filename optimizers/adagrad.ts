import type { JsonObject } from "../core/json.ts";
import type { ClipOptions, Optimizer, OptimizerState } from "../core/optimizer.ts";
import type { Param } from "../core/param.ts";
import type { LearningRateSchedule, ScheduleOptions } from "../core/schedule.ts";
import { resolveSchedule, scheduleConfig, scheduledRate } from "./_schedule.ts";
import {
  clipConfig,
  clipGradients,
  describeClipping,
  describeSchedule,
  resolveClipping,
  Slots,
} from "./_common.ts";
import type { GpuContext, GpuOptimizer } from "../core/gpu.ts";
import { gpuClipGradients, type GpuUpdate, gpuUpdate } from "./_gpu.ts";
import { checkHyper } from "../core/_checks.ts";

/** Options of {@linkcode AdaGrad}, with the book's defaults. */
export interface AdaGradOptions extends ScheduleOptions, ClipOptions {
  /** Initial step size; 1.0 when omitted. */
  learningRate?: number;
  /** Added to the square root of the cache; 1e-7. */
  epsilon?: number;
}

// cache += g²; value −= lr·g / (√cache + ε)
const UPDATE: GpuUpdate = {
  label: "AdaGrad.update",
  slots: ["cache"],
  scalars: ["lr", "epsilon"],
  body: `cache += g * g;
  value += (-p.lr * g) / (sqrt(cache) + p.epsilon);`,
};

/**
 * AdaGrad, as the book's `Optimizer_Adagrad`: every parameter keeps the sum of its squared
 * gradients, `cache += g²`, and steps by `p −= lr_t · g / (√cache + ε)`, so often-updated
 * parameters slow down. `lr_t = lr · schedule.factor(t)` (with `decay`, `lr / (1 + decay·t)`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AdaGrad, Param, Tensor } from "@chainrule/nn";
 *
 * const p = new Param("w", Tensor.from([1, 1], { dtype: "float64" }));
 * p.grad.data.set([3, -4]);
 * new AdaGrad({ learningRate: 0.5, epsilon: 0 }).step([p]);
 * // Each first step moves by exactly the learning rate: g / √(g²) = ±1.
 * assert.deepEqual(Array.from(p.value.data), [0.5, 1.5]);
 * ```
 */
export class AdaGrad implements Optimizer, GpuOptimizer {
  /** Registry name. */
  readonly kind = "AdaGrad";
  /** Initial step size. */
  readonly learningRate: number;
  /** The book's inverse-time decay of the step size (0: none). */
  readonly decay: number;
  /** The schedule given instead of `decay`, if any. */
  readonly schedule?: LearningRateSchedule;
  /** Denominator guard. */
  readonly epsilon: number;
  /** The largest global L2 norm of the gradients of one step, if any. */
  readonly globalClipNorm?: number;
  /** The largest magnitude of a gradient element, if any. */
  readonly clipValue?: number;
  /** Updates done so far (t). */
  iterations = 0;
  #rate?: LearningRateSchedule;
  #slots = new Slots(["cache"] as const);

  /**
   * Creates the optimizer.
   *
   * @throws {RangeError} when a hyper-parameter is out of range, or a clipping bound is
   * not a positive finite number.
   */
  constructor(options: AdaGradOptions = {}) {
    this.learningRate = checkHyper("new AdaGrad", "learningRate", options.learningRate ?? 1);
    this.epsilon = checkHyper("new AdaGrad", "epsilon", options.epsilon ?? 1e-7);
    this.decay = options.decay ?? 0;
    this.schedule = options.schedule;
    this.#rate = resolveSchedule("new AdaGrad", options);
    const clipping = resolveClipping("new AdaGrad", options);
    this.globalClipNorm = clipping.globalClipNorm;
    this.clipValue = clipping.clipValue;
  }

  /** Rebuilds the optimizer from {@linkcode AdaGrad.config} (`createOptimizer` rebuilds its schedule). */
  static fromConfig(config: JsonObject): AdaGrad {
    return new AdaGrad(config as AdaGradOptions);
  }

  /** The step size of the next update. */
  get currentLearningRate(): number {
    return scheduledRate(this.learningRate, this.#rate, this.iterations);
  }

  /**
   * One update of every parameter, after clipping the gradients (in place) if asked.
   *
   * @throws {RangeError} when clipping to `globalClipNorm` meets a non-finite norm.
   */
  step(params: readonly Param[]): void {
    clipGradients(params, this, "AdaGrad.step");
    const lr = this.currentLearningRate;
    const epsilon = this.epsilon;
    for (const param of params) {
      const { cache } = this.#slots.of(param);
      const value = param.value.data;
      const grad = param.grad.data;
      for (let i = 0; i < value.length; i++) {
        const g = grad[i];
        cache[i] += g * g;
        value[i] += (-lr * g) / (Math.sqrt(cache[i]) + epsilon);
      }
    }
    this.iterations++;
  }

  /**
   * {@linkcode AdaGrad.step} on the device: clips and updates every param there, skipped
   * when `ctx.status` says stop; the update count and step size advance here, as in `step`.
   */
  gpuStep(ctx: GpuContext, params: readonly Param[]): void {
    const clipped = gpuClipGradients(ctx, this, params, this);
    const scalars = [this.currentLearningRate, this.epsilon];
    params.forEach((param, i) => {
      const slots = [this.#slots.of(param).cache];
      gpuUpdate(ctx, this, `update ${i}`, UPDATE, param, slots, scalars, clipped);
    });
    this.iterations++;
  }

  /** Copies of the update count and of every param's cache. */
  getState(params: readonly Param[]): OptimizerState {
    return this.#slots.state(params, this.iterations);
  }

  /**
   * Restores state taken with {@linkcode AdaGrad.getState}.
   *
   * @throws {TypeError} when a slot is missing or does not match its param's shape.
   */
  setState(params: readonly Param[], state: OptimizerState): void {
    this.iterations = this.#slots.restore(params, state, "AdaGrad.setState");
  }

  /** The hyper-parameters as JSON. */
  config(): JsonObject {
    const { learningRate, decay, epsilon } = this;
    return {
      learningRate,
      decay,
      epsilon,
      ...scheduleConfig(this.schedule),
      ...clipConfig(this),
    };
  }

  /** `AdaGrad(learningRate=1, decay=0.0001)` */
  toString(): string {
    return `AdaGrad(learningRate=${this.learningRate}${
      describeSchedule(this.decay, this.schedule)
    }${describeClipping(this)})`;
  }
}
