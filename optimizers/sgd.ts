import { checkHyper } from "../core/_checks.ts";
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

/** Options of {@linkcode SGD}, with the book's defaults. */
export interface SGDOptions extends ScheduleOptions, ClipOptions {
  /** Step size; 1.0 when omitted, the book's default. */
  learningRate?: number;
  /** Fraction of the previous update carried into the next, in [0, 1]; 0 (none). */
  momentum?: number;
  /** Nesterov's look-ahead form of momentum (needs `momentum` > 0); false. */
  nesterov?: boolean;
}

// value −= lr·g
const PLAIN: GpuUpdate = {
  label: "SGD.update",
  slots: [],
  scalars: ["lr", "momentumFactor"],
  body: "value -= p.lr * g;",
};

// update = μ·momentum − lr·g; momentum = update; value += update
const MOMENTUM: GpuUpdate = {
  label: "SGD.update (momentum)",
  slots: ["momentum"],
  scalars: ["lr", "momentumFactor"],
  body: `let update = p.momentumFactor * momentum - p.lr * g;
  momentum = update;
  value += update;`,
};

// update = μ·momentum − lr·g; momentum = update; value += μ·update − lr·g
const NESTEROV: GpuUpdate = {
  label: "SGD.update (nesterov)",
  slots: ["momentum"],
  scalars: ["lr", "momentumFactor"],
  body: `let update = p.momentumFactor * momentum - p.lr * g;
  momentum = update;
  value += p.momentumFactor * update - p.lr * g;`,
};

/**
 * Stochastic gradient descent, as the book's `Optimizer_SGD` grows it: plain
 * `value −= lr·grad`; with momentum, `update = momentum·update − lr·grad` and
 * `value += update`; with Nesterov, `value += momentum·update − lr·grad` after that (the
 * gradient taken at the look-ahead point, as Keras writes it). The step size of update t is
 * `learningRate · schedule.factor(t)`; `decay` is the book's `1 / (1 + decay·t)`. With
 * `clipValue` and `globalClipNorm` (see {@linkcode ClipOptions}) the gradients are clipped
 * in place first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Param, SGD, Tensor } from "@chainrule/nn";
 *
 * const p = new Param("w", Tensor.from([1], { dtype: "float64" }));
 * p.grad.data[0] = 4;
 * new SGD({ learningRate: 0.5 }).step([p]);
 * assert.equal(p.value.data[0], -1);
 *
 * // With momentum the second step also carries 0.9 of the first one (−2).
 * const optimizer = new SGD({ learningRate: 0.5, momentum: 0.9 });
 * optimizer.step([p]); // update −2: value −3
 * optimizer.step([p]); // update 0.9·(−2) − 2 = −3.8: value −6.8
 * assert.ok(Math.abs(p.value.data[0] - -6.8) < 1e-12);
 *
 * // Clipped to a global norm of 1, the gradient [3, 4] (norm 5) steps by [0.6, 0.8]·lr.
 * const q = new Param("q", Tensor.from([0, 0], { dtype: "float64" }));
 * q.grad.data.set([3, 4]);
 * new SGD({ learningRate: 0.5, globalClipNorm: 1 }).step([q]);
 * assert.ok(Math.abs(q.value.data[1] - -0.4) < 1e-6);
 * ```
 */
export class SGD implements Optimizer, GpuOptimizer {
  /** Registry name. */
  readonly kind = "SGD";
  /** Initial step size. */
  learningRate: number;
  /** Fraction of the previous update carried into the next. */
  readonly momentum: number;
  /** Whether momentum takes Nesterov's look-ahead form. */
  readonly nesterov: boolean;
  /** The book's inverse-time decay of the step size (0: none). */
  readonly decay: number;
  /** The schedule given instead of `decay`, if any. */
  readonly schedule?: LearningRateSchedule;
  /** The largest global L2 norm of the gradients of one step, if any. */
  readonly globalClipNorm?: number;
  /** The largest magnitude of a gradient element, if any. */
  readonly clipValue?: number;
  /** Updates done so far (t). */
  iterations = 0;
  #rate?: LearningRateSchedule;
  #slots: Slots<"momentum">;

  /**
   * Creates the optimizer.
   *
   * @throws {RangeError} when a hyper-parameter is out of range, or `nesterov` is set
   * without momentum, or a clipping bound is not a positive finite number.
   */
  constructor(options: SGDOptions = {}) {
    this.learningRate = checkHyper("new SGD", "learningRate", options.learningRate ?? 1);
    this.momentum = checkHyper("new SGD", "momentum", options.momentum ?? 0, 0, 1);
    this.nesterov = options.nesterov ?? false;
    if (this.nesterov && this.momentum === 0) {
      throw new RangeError("new SGD: nesterov needs momentum > 0, got momentum 0");
    }
    this.decay = options.decay ?? 0;
    this.schedule = options.schedule;
    this.#rate = resolveSchedule("new SGD", options);
    const clipping = resolveClipping("new SGD", options);
    this.globalClipNorm = clipping.globalClipNorm;
    this.clipValue = clipping.clipValue;
    this.#slots = new Slots(this.momentum ? ["momentum"] : []);
  }

  /** Rebuilds the optimizer from {@linkcode SGD.config} (`createOptimizer` rebuilds its schedule). */
  static fromConfig(config: JsonObject): SGD {
    return new SGD(config as SGDOptions);
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
    clipGradients(params, this, "SGD.step");
    const lr = this.currentLearningRate;
    const { momentum, nesterov } = this;
    for (const param of params) {
      const value = param.value.data;
      const grad = param.grad.data;
      if (momentum === 0) {
        for (let i = 0; i < value.length; i++) value[i] -= lr * grad[i];
        continue;
      }
      const velocity = this.#slots.of(param).momentum;
      for (let i = 0; i < value.length; i++) {
        const update = momentum * velocity[i] - lr * grad[i];
        velocity[i] = update;
        value[i] += nesterov ? momentum * update - lr * grad[i] : update;
      }
    }
    this.iterations++;
  }

  /**
   * {@linkcode SGD.step} on the device: clips and updates every param there, skipped when
   * `ctx.status` says stop; the update count and step size advance here, as in `step`.
   */
  gpuStep(ctx: GpuContext, params: readonly Param[]): void {
    const clipped = gpuClipGradients(ctx, this, params, this);
    const lr = this.currentLearningRate;
    const { momentum } = this;
    const update = momentum === 0 ? PLAIN : this.nesterov ? NESTEROV : MOMENTUM;
    params.forEach((param, i) => {
      const slots = momentum === 0 ? [] : [this.#slots.of(param).momentum];
      gpuUpdate(ctx, this, `update ${i}`, update, param, slots, [lr, momentum], clipped);
    });
    this.iterations++;
  }

  /** The update count and, with momentum, copies of every param's last update. */
  getState(params: readonly Param[]): OptimizerState {
    return this.#slots.state(params, this.iterations);
  }

  /**
   * Restores state taken with {@linkcode SGD.getState}.
   *
   * @throws {TypeError} when a slot is missing or does not match its param's shape.
   */
  setState(params: readonly Param[], state: OptimizerState): void {
    this.iterations = this.#slots.restore(params, state, "SGD.setState");
  }

  /** The hyper-parameters as JSON. */
  config(): JsonObject {
    const { learningRate, momentum, nesterov, decay } = this;
    return {
      learningRate,
      momentum,
      nesterov,
      decay,
      ...scheduleConfig(this.schedule),
      ...clipConfig(this),
    };
  }

  /** `SGD(learningRate=1, momentum=0.9, decay=0.001, globalClipNorm=1)` */
  toString(): string {
    const parts = [`learningRate=${this.learningRate}`];
    if (this.momentum) parts.push(`momentum=${this.momentum}`);
    if (this.nesterov) parts.push("nesterov");
    return `SGD(${parts.join(", ")}${describeSchedule(this.decay, this.schedule)}${
      describeClipping(this)
    })`;
  }
}
