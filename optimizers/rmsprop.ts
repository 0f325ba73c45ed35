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

/** Options of {@linkcode RMSprop}, with the book's defaults. */
export interface RMSpropOptions extends ScheduleOptions, ClipOptions {
  /** Initial step size; 0.001 when omitted. */
  learningRate?: number;
  /** Decay of the cache's moving average, in [0, 1]; 0.9. */
  rho?: number;
  /** Added to the square root of the cache; 1e-7. */
  epsilon?: number;
}

// cache = ρ·cache + (1 − ρ)·g²; value −= lr·g / (√cache + ε)
const UPDATE: GpuUpdate = {
  label: "RMSprop.update",
  slots: ["cache"],
  scalars: ["lr", "rho", "oneMinusRho", "epsilon"],
  body: `cache = p.rho * cache + p.oneMinusRho * (g * g);
  value += (-p.lr * g) / (sqrt(cache) + p.epsilon);`,
};

/**
 * RMSprop, as the book's `Optimizer_RMSprop`: every parameter keeps a moving average of its
 * squared gradients, `cache = ρ·cache + (1 − ρ)·g²`, and steps by
 * `p −= lr_t · g / (√cache + ε)`. `lr_t = lr · schedule.factor(t)` (with `decay`,
 * `lr / (1 + decay·t)`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Param, RMSprop, Tensor } from "@chainrule/nn";
 *
 * const p = new Param("w", Tensor.from([1], { dtype: "float64" }));
 * p.grad.data[0] = 2;
 * new RMSprop({ learningRate: 0.1, rho: 0.75, epsilon: 0 }).step([p]);
 * // cache = 0.25·4 = 1, so the step is 0.1·2 / √1 = 0.2.
 * assert.ok(Math.abs(p.value.data[0] - 0.8) < 1e-15);
 * ```
 */
export class RMSprop implements Optimizer, GpuOptimizer {
  /** Registry name. */
  readonly kind = "RMSprop";
  /** Initial step size. */
  readonly learningRate: number;
  /** The book's inverse-time decay of the step size (0: none). */
  readonly decay: number;
  /** The schedule given instead of `decay`, if any. */
  readonly schedule?: LearningRateSchedule;
  /** Decay of the cache's moving average. */
  readonly rho: number;
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
  constructor(options: RMSpropOptions = {}) {
    this.learningRate = checkHyper("new RMSprop", "learningRate", options.learningRate ?? 0.001);
    this.rho = checkHyper("new RMSprop", "rho", options.rho ?? 0.9, 0, 1);
    this.epsilon = checkHyper("new RMSprop", "epsilon", options.epsilon ?? 1e-7);
    this.decay = options.decay ?? 0;
    this.schedule = options.schedule;
    this.#rate = resolveSchedule("new RMSprop", options);
    const clipping = resolveClipping("new RMSprop", options);
    this.globalClipNorm = clipping.globalClipNorm;
    this.clipValue = clipping.clipValue;
  }

  /** Rebuilds the optimizer from {@linkcode RMSprop.config} (`createOptimizer` rebuilds its schedule). */
  static fromConfig(config: JsonObject): RMSprop {
    return new RMSprop(config as RMSpropOptions);
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
    clipGradients(params, this, "RMSprop.step");
    const lr = this.currentLearningRate;
    const { rho, epsilon } = this;
    for (const param of params) {
      const { cache } = this.#slots.of(param);
      const value = param.value.data;
      const grad = param.grad.data;
      for (let i = 0; i < value.length; i++) {
        const g = grad[i];
        cache[i] = rho * cache[i] + (1 - rho) * (g * g);
        value[i] += (-lr * g) / (Math.sqrt(cache[i]) + epsilon);
      }
    }
    this.iterations++;
  }

  /**
   * {@linkcode RMSprop.step} on the device: clips and updates every param there, skipped
   * when `ctx.status` says stop; the update count and step size advance here, as in `step`.
   */
  gpuStep(ctx: GpuContext, params: readonly Param[]): void {
    const clipped = gpuClipGradients(ctx, this, params, this);
    const scalars = [this.currentLearningRate, this.rho, 1 - this.rho, this.epsilon];
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
   * Restores state taken with {@linkcode RMSprop.getState}.
   *
   * @throws {TypeError} when a slot is missing or does not match its param's shape.
   */
  setState(params: readonly Param[], state: OptimizerState): void {
    this.iterations = this.#slots.restore(params, state, "RMSprop.setState");
  }

  /** The hyper-parameters as JSON. */
  config(): JsonObject {
    const { learningRate, decay, rho, epsilon } = this;
    return {
      learningRate,
      decay,
      rho,
      epsilon,
      ...scheduleConfig(this.schedule),
      ...clipConfig(this),
    };
  }

  /** `RMSprop(learningRate=0.02, decay=0.00001)` */
  toString(): string {
    return `RMSprop(learningRate=${this.learningRate}${
      describeSchedule(this.decay, this.schedule)
    }${describeClipping(this)})`;
  }
}
