import { adamLoop } from "../backends/js.ts";
import type { AdamHyper } from "../core/backend.ts";
import { getBackend } from "../backends/selection.ts";
import type { JsonObject } from "../core/json.ts";
import type { ClipOptions, Optimizer, OptimizerState } from "../core/optimizer.ts";
import type { Param } from "../core/param.ts";
import type { LearningRateSchedule, ScheduleOptions } from "../core/schedule.ts";
import { resolveSchedule, scheduleConfig, scheduledRate } from "./_schedule.ts";
import type { FloatArray } from "../core/tensor.ts";
import {
  clipConfig,
  clipGradients,
  describeClipping,
  describeSchedule,
  resolveClipping,
  Slots,
} from "./_common.ts";
import { checkHyper } from "../core/_checks.ts";
import type { GpuContext, GpuOptimizer } from "../core/gpu.ts";
import { gpuClipGradients, type GpuUpdate, gpuUpdate } from "./_gpu.ts";

/** Options of {@linkcode Adam}, with the book's defaults. */
export interface AdamOptions extends ScheduleOptions, ClipOptions {
  /** Initial step size; 0.001 when omitted. */
  learningRate?: number;
  /** Decay of the first-moment (momentum) average; 0.9. */
  beta1?: number;
  /** Decay of the second-moment (cache) average; 0.999. */
  beta2?: number;
  /** Added to the square root of the corrected cache; 1e-7. */
  epsilon?: number;
}

/** The per-parameter state of {@linkcode Adam}. */
export interface AdamMoments {
  /** First moment, shaped like the param. */
  momentum: FloatArray;
  /** Second moment, shaped like the param. */
  cache: FloatArray;
}

// value ·= shrink (AdamW's decay; 1 in Adam); m = β₁m + (1−β₁)g; v = β₂v + (1−β₂)g²;
// value −= lr · (m / c₁) / (√(v / c₂) + ε)
const UPDATE: GpuUpdate = {
  label: "Adam.update",
  slots: ["momentum", "cache"],
  scalars: [
    "lr",
    "beta1",
    "oneMinusBeta1",
    "beta2",
    "oneMinusBeta2",
    "correction1",
    "correction2",
    "epsilon",
    "shrink",
  ],
  body: `value *= p.shrink;
  momentum = p.beta1 * momentum + p.oneMinusBeta1 * g;
  cache = p.beta2 * cache + p.oneMinusBeta2 * (g * g);
  value += (-p.lr * (momentum / p.correction1)) / (sqrt(cache / p.correction2) + p.epsilon);`,
};

/**
 * Adam, exactly as the book writes it (and as `torch.optim.Adam` computes it).
 *
 * For update t = 0, 1, …: `lr_t = lr · schedule.factor(t)` (with `decay`, the book's
 * `lr / (1 + decay·t)`), `m = β₁m + (1−β₁)g`, `v = β₂v + (1−β₂)g²`,
 * `p −= lr_t · (m / (1−β₁^(t+1))) / (√(v / (1−β₂^(t+1))) + ε)`. With `clipValue` and
 * `globalClipNorm` (see {@linkcode ClipOptions}) the gradients are clipped in place first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Adam, Param, Tensor } from "@chainrule/nn";
 *
 * const p = new Param("w", Tensor.from([1], { dtype: "float64" }));
 * p.grad.data[0] = 3;
 * new Adam({ learningRate: 0.1 }).step([p]);
 * // The first Adam step moves by about the learning rate, whatever the gradient's size.
 * assert.ok(Math.abs(p.value.data[0] - 0.9) < 1e-6);
 * ```
 */
export class Adam implements Optimizer, GpuOptimizer {
  /** Registry name. */
  readonly kind: string = "Adam";
  /** Initial step size. */
  learningRate: number;
  /** The book's inverse-time decay of the step size (0: none). */
  readonly decay: number;
  /** The schedule given instead of `decay`, if any. */
  readonly schedule?: LearningRateSchedule;
  /** First-moment decay. */
  readonly beta1: number;
  /** Second-moment decay. */
  readonly beta2: number;
  /** Denominator guard. */
  readonly epsilon: number;
  /** The largest global L2 norm of the gradients of one step, if any. */
  readonly globalClipNorm?: number;
  /** The largest magnitude of a gradient element, if any. */
  readonly clipValue?: number;
  /** Updates done so far (t). */
  iterations = 0;
  #rate?: LearningRateSchedule;
  #slots = new Slots(["momentum", "cache"] as const);
  #hyper: AdamHyper = {
    beta1: 0,
    beta2: 0,
    learningRate: 0,
    correction1: 1,
    correction2: 1,
    epsilon: 0,
  };

  /**
   * Creates the optimizer.
   *
   * @throws {RangeError} when a hyper-parameter is out of range, or a clipping bound is
   * not a positive finite number.
   */
  constructor(options: AdamOptions = {}) {
    const where = `new ${new.target.name}`;
    this.learningRate = checkHyper(where, "learningRate", options.learningRate ?? 0.001);
    this.beta1 = checkHyper(where, "beta1", options.beta1 ?? 0.9, 0, 1);
    this.beta2 = checkHyper(where, "beta2", options.beta2 ?? 0.999, 0, 1);
    this.epsilon = checkHyper(where, "epsilon", options.epsilon ?? 1e-7);
    this.decay = options.decay ?? 0;
    this.schedule = options.schedule;
    this.#rate = resolveSchedule(where, options);
    const clipping = resolveClipping(where, options);
    this.globalClipNorm = clipping.globalClipNorm;
    this.clipValue = clipping.clipValue;
  }

  /** Rebuilds the optimizer from {@linkcode Adam.config} (`createOptimizer` rebuilds its schedule). */
  static fromConfig(config: JsonObject): Adam {
    return new Adam(config as AdamOptions);
  }

  /** The step size of the next update: `learningRate · schedule.factor(t)`. */
  get currentLearningRate(): number {
    return scheduledRate(this.learningRate, this.#rate, this.iterations);
  }

  /** The moment buffers of `param` (created zeroed on first use). */
  moments(param: Param): AdamMoments {
    return this.#slots.of(param);
  }

  /**
   * One update of every parameter, after clipping the gradients (in place) if asked.
   *
   * @throws {RangeError} when clipping to `globalClipNorm` meets a non-finite norm.
   */
  step(params: readonly Param[]): void {
    clipGradients(params, this, `${this.kind}.step`);
    const { beta1, beta2, epsilon } = this;
    const hyper = this.#hyper;
    hyper.learningRate = this.currentLearningRate;
    this.beforeUpdate(params, hyper.learningRate);
    hyper.beta1 = beta1;
    hyper.beta2 = beta2;
    hyper.epsilon = epsilon;
    hyper.correction1 = 1 - beta1 ** (this.iterations + 1);
    hyper.correction2 = 1 - beta2 ** (this.iterations + 1);
    // The backend may run the loop in SIMD (wasm: float32 params four at a time in float32
    // arithmetic, float64 ones two at a time): the divisions and the square root make the
    // scalar float64 loop cost ~5 ns per element (0.5 ms of a 1 ms W2 step with blas).
    const backend = getBackend();
    for (const param of params) {
      const { momentum, cache } = this.#slots.of(param, backend);
      const value = param.value.data, grad = param.grad.data;
      if (backend.adam) backend.adam(value, grad, momentum, cache, hyper);
      else adamLoop(value, grad, momentum, cache, hyper);
    }
    this.iterations++;
  }

  /**
   * {@linkcode Adam.step} on the device: clips and updates every param there (with the
   * factor of {@linkcode Adam.weightShrink} first), skipped when `ctx.status` says stop; the
   * update count, step size and bias corrections advance here, as in `step`.
   */
  gpuStep(ctx: GpuContext, params: readonly Param[]): void {
    const clipped = gpuClipGradients(ctx, this, params, this);
    const { beta1, beta2, epsilon } = this;
    const lr = this.currentLearningRate;
    const t = this.iterations + 1;
    const scalars = [
      lr,
      beta1,
      1 - beta1,
      beta2,
      1 - beta2,
      1 - beta1 ** t,
      1 - beta2 ** t,
      epsilon,
      this.weightShrink(lr),
    ];
    const backend = getBackend();
    params.forEach((param, i) => {
      const { momentum, cache } = this.#slots.of(param, backend);
      gpuUpdate(ctx, this, `update ${i}`, UPDATE, param, [momentum, cache], scalars, clipped);
    });
    this.iterations++;
  }

  /**
   * The factor every param is multiplied by before the update of step size `learningRate`
   * ({@linkcode AdamW}'s decoupled weight decay): 1 in Adam.
   */
  protected weightShrink(_learningRate: number): number {
    return 1;
  }

  /**
   * Called by `step` after clipping, before Adam's update, with the step size of the
   * update: a subclass's hook ({@linkcode AdamW}'s weight decay). Does nothing in Adam.
   */
  protected beforeUpdate(_params: readonly Param[], _learningRate: number): void {}

  /** Copies of the update count and of every param's moments. */
  getState(params: readonly Param[]): OptimizerState {
    return this.#slots.state(params, this.iterations);
  }

  /**
   * Restores state taken with {@linkcode Adam.getState}.
   *
   * @throws {TypeError} when a slot is missing or does not match its param's shape.
   */
  setState(params: readonly Param[], state: OptimizerState): void {
    const where = `${this.kind}.setState`;
    this.iterations = this.#slots.restore(params, state, where, getBackend());
  }

  /** The hyper-parameters as JSON. */
  config(): JsonObject {
    const { learningRate, decay, beta1, beta2, epsilon } = this;
    return {
      learningRate,
      decay,
      beta1,
      beta2,
      epsilon,
      ...scheduleConfig(this.schedule),
      ...clipConfig(this),
    };
  }

  /** `Adam(learningRate=0.05, decay=5e-7)` */
  toString(): string {
    return `Adam(learningRate=${this.learningRate}${describeSchedule(this.decay, this.schedule)}${
      describeClipping(this)
    })`;
  }
}
